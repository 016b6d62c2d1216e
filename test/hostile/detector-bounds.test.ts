/**
 * Detector state that grows with the traffic stays within its bounds under a flood, and what a bound
 * turned away is counted and warned about. The flood gives every one of SERVERS server addresses the
 * story each per-server detector keeps a group for: an idle gap survived by a keep-alive probe, a
 * tuple reused inside TIME_WAIT, a TIME_WAIT collision, a SYN retried without answer, one-request
 * connections. Sizes are read from the detectors' bounded structures, and from the scratch state of
 * a live conversation, never from timing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TcpFlag } from '../../src/decode/packet.js';
import { blackhole } from '../../src/detect/detectors/blackhole.js';
import { type Policy, emptyPolicy } from '../../src/detect/policy.js';
import { DETECTORS } from '../../src/detect/registry.js';
import { SyntheticCapture } from '../helpers/synthetic.js';

const SERVERS = 300;
const SMALL_CAP = 50;

/** Every detector that groups by server, with its `maxServers` set to `limit`. */
function policyWithMaxServers(limit: number): Policy {
  const policy = emptyPolicy();
  for (const spec of DETECTORS) if ('maxServers' in spec.thresholds) policy.thresholds[spec.id] = { maxServers: limit };
  return policy;
}

function serverAddress(i: number): string {
  return `10.1.${i >> 8}.${i & 255}`;
}

/** The flood: per server, the five stories above, each server's 100 s after the previous one's. */
function flood(capture: SyntheticCapture): void {
  for (let i = 0; i < SERVERS; i++) {
    const t = i * 100;
    const server = `${serverAddress(i)}:80`;
    // An idle keep-alive connection the client closes first (it holds TIME_WAIT)...
    const pooled = capture.flow('10.0.0.1:40000', server, 1_000_000, 2_000_000);
    pooled.handshake(t);
    pooled.dataAcked(t + 0.01, 'client', 100);
    pooled.dataAcked(t + 0.02, 'server', 500);
    pooled.probe(t + 3, 'client');
    pooled.ack(t + 3.001, 'server');
    pooled.close(t + 4, 'client');
    // ...whose tuple is reused 1 s later with a higher ISN, and accepted.
    const reuse = capture.flow('10.0.0.1:40000', server, 1_500_000, 3_000_000);
    reuse.handshake(t + 5);
    reuse.dataAcked(t + 5.01, 'client', 100);
    reuse.dataAcked(t + 5.02, 'server', 500);
    reuse.close(t + 5.1, 'client');
    // A connection the server closes first, then a SYN below its sequence space: the stale ACK.
    const old = capture.flow('10.0.0.1:40001', server, 3_000_000_000, 7_000_000);
    old.handshake(t + 10);
    old.dataAcked(t + 10.01, 'client', 100);
    old.dataAcked(t + 10.02, 'server', 500);
    old.close(t + 11, 'server');
    const collided = capture.flow('10.0.0.1:40001', server, 2_000_000_000, 9_000_000);
    collided.syn(t + 16);
    collided.raw(t + 16.0005, 'server', TcpFlag.ACK, old.nextSeqOf('server'), old.nextSeqOf('client'));
    collided.raw(t + 16.001, 'client', TcpFlag.RST, old.nextSeqOf('client'), 0);
    collided.syn(t + 17);
    // A SYN retried twice without an answer.
    const unanswered = capture.flow('10.0.0.1:40002', server);
    unanswered.syn(t + 20);
    unanswered.syn(t + 21);
    unanswered.syn(t + 23);
  }
}

interface Limit {
  detector: string;
  kept: string;
  limit: number;
  inUse: number;
  dropped: number;
}

function serverTables(capture: SyntheticCapture): Limit[] {
  // The tables keyed by server: their limit is the maxServers threshold.
  return capture.engine.limits().filter((l) => /^(servers|server addresses)/.test(l.kept));
}

/** The detectors whose per-server tables the flood fills, and what each keeps a group of. */
const FILLED = [
  ['idle-timeout', 'server addresses with idle-gap tests'],
  ['keepalive', 'servers with keep-alive probes followed'],
  ['keepalive', 'server addresses with idle-gap tests'],
  ['port-reuse', 'servers with reused tuples followed'],
  ['timewait-collision', 'servers with TIME_WAIT collisions followed'],
  ['syn-unanswered', 'servers receiving SYNs followed'],
  ['conn-churn', 'servers receiving connections followed'],
];

describe(`detector bounds under a flood towards ${SERVERS} servers`, () => {
  it('without a tighter bound, one group per server: the tables grow with the flood', () => {
    const capture = new SyntheticCapture(DETECTORS, policyWithMaxServers(100_000));
    flood(capture);
    capture.finish();
    const tables = serverTables(capture);
    for (const [detector, kept] of FILLED) {
      const table = tables.find((l) => l.detector === detector && l.kept === kept);
      assert.ok(table, `${detector}: ${kept}`);
      assert.deepEqual({ inUse: table.inUse, dropped: table.dropped }, { inUse: SERVERS, dropped: 0 }, `${detector}: ${kept}`);
    }
    assert.deepEqual(capture.engine.limitWarnings(), []);
  });

  it(`with maxServers ${SMALL_CAP}, no table holds more, and every turned-away story is counted and warned about`, () => {
    const capture = new SyntheticCapture(DETECTORS, policyWithMaxServers(SMALL_CAP));
    let peak = 0;
    const observe = (): void => {
      for (const table of serverTables(capture)) peak = Math.max(peak, table.inUse);
    };
    flood(capture);
    observe();
    const findings = capture.finish();
    observe();
    assert.equal(peak, SMALL_CAP, 'the largest table is exactly at its bound');
    const tables = serverTables(capture);
    for (const table of tables) assert.ok(table.inUse <= SMALL_CAP, `${table.detector}: ${table.kept} holds ${table.inUse}`);
    const warnings = capture.engine.limitWarnings();
    for (const [detector, kept] of FILLED) {
      const table = tables.find((l) => l.detector === detector && l.kept === kept) as Limit;
      assert.equal(table.inUse, SMALL_CAP, `${detector}: ${kept}`);
      assert.ok(table.dropped >= SERVERS - SMALL_CAP, `${detector}: ${kept} counted ${table.dropped} turned away`);
      assert.ok(warnings.some((w) => w.startsWith(`${detector}: ${kept} limited to ${SMALL_CAP}: ${table.dropped.toLocaleString('en-US')} `)), `${detector} warns: ${warnings.join('\n')}`);
    }
    // The servers that were followed are still diagnosed.
    const synProblems = findings.filter((f) => f.detector === 'syn-unanswered');
    assert.equal(synProblems.length, SMALL_CAP);
    assert.ok(synProblems.every((f) => f.server !== null && Number(f.server.ip.split('.')[2]) * 256 + Number(f.server.ip.split('.')[3]) < SMALL_CAP), 'the first servers seen are the ones followed');
  });

  it('a client streaming into a connection that never answers: the unanswered segments followed stay bounded', () => {
    const capture = new SyntheticCapture(DETECTORS);
    const slot = DETECTORS.indexOf(blackhole);
    const flow = capture.flow('10.0.0.1:40000', '10.0.0.2:80');
    flow.handshake(0);
    flow.dataAcked(0.01, 'client', 10);
    flow.dataAcked(0.02, 'server', 10);
    const SEGMENTS = 70_000;
    for (let i = 0; i < SEGMENTS; i++) flow.data(1 + i * 1e-4, 'client', 1);
    let followed = -1;
    capture.tracker.forEachLive((conv) => {
      const state = conv.scratch[slot] as { ends: number[]; endsHead: number };
      followed = state.ends.length - state.endsHead;
    });
    const limit = capture.engine.limits().find((l) => l.detector === 'blackhole') as Limit;
    assert.equal(followed, limit.limit, 'the queue of unanswered segments stops at its bound');
    assert.equal(limit.dropped, SEGMENTS - limit.limit, 'and counts every segment past it');
    capture.finish();
  });
});
