import { defineDetector, type DetectorSpec } from './detector.js';
import { retransmitStorm } from './detectors/retransmit-storm.js';
import { blackhole } from './detectors/blackhole.js';
import { keepaliveRace } from './detectors/keepalive-race.js';
import { connChurn } from './detectors/conn-churn.js';
import { zeroWindow } from './detectors/zero-window.js';
import { synUnanswered } from './detectors/syn-unanswered.js';
import { idleTimeout } from './detectors/idle-timeout.js';
import { keepalive } from './detectors/keepalive.js';
import { timewaitCollision } from './detectors/timewait-collision.js';
import { portReuse } from './detectors/port-reuse.js';
import { resetRatio } from './detectors/reset-ratio.js';
import { injectedRst } from './detectors/injected-rst.js';

/** Every detector, in the order `connscope explain` lists them. Ids are stable: see the README. */
export const DETECTORS: readonly DetectorSpec[] = [
  defineDetector(retransmitStorm),
  defineDetector(blackhole),
  defineDetector(keepaliveRace),
  defineDetector(connChurn),
  defineDetector(zeroWindow),
  defineDetector(synUnanswered),
  defineDetector(idleTimeout),
  defineDetector(keepalive),
  defineDetector(timewaitCollision),
  defineDetector(portReuse),
  defineDetector(resetRatio),
  defineDetector(injectedRst),
];
