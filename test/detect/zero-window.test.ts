import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { zeroWindow } from '../../src/detect/detectors/zero-window.js';
import { endpoint, ofDetector, skipUnlessCaptures } from '../helpers/lab.js';
import { capture, CORPUS_DIR, corpusRows, facts } from '../helpers/paths.js';
import { SyntheticCapture, type SyntheticFlow, analyzeAtSnaplen, SNAPLEN_VARIANTS, snaplenLabel } from '../helpers/synthetic.js';

/**
 * zero-window on hand-built conversations. Every expected number is read off the script: the frame
 * of each packet is taken from cap.nextFrame before sending it, times are the script's own.
 * (Synthetic packets carry no captured payload, like a snaplen-truncated capture: only lengths.)
 */

const CLIENT = '10.0.0.1:40000';
const SERVER = '10.0.0.2:5000';
const EPS = 1e-5;

interface ZeroWindowFacts {
  first_frame_epoch: number;
  sender: string;
  receiver: string;
  conversations: { client: string; server: string }[];
  zero_window_count: number;
  first_zero_window: { frame: number; time: number };
  window_reopened: { frame: number; time: number };
  stall_duration: number;
  persist_probes: { frame: number; time: number }[];
  persist_probe_count: number;
  persist_probe_intervals: number[];
}

for (const snaplen of SNAPLEN_VARIANTS) test(`zero-window-stall: the receiver's stall, as tshark measured it${snaplenLabel(snaplen)}`, skipUnlessCaptures('zero-window-stall.pcap'), async () => {
  const f = facts<ZeroWindowFacts>('zero-window-stall');
  const { result, errors } = await analyzeAtSnaplen(capture('zero-window-stall.pcap'), snaplen);
  assert.deepEqual(errors, []);
  const findings = ofDetector(result.findings, 'zero-window');
  assert.equal(findings.length, 1);
  const z = findings[0];
  assert.equal(z.severity, 'warning');
  assert.deepEqual(z.client, endpoint(f.conversations[0].client));
  assert.deepEqual(z.server, endpoint(f.conversations[0].server));
  // The stalled receiver is the server (the sender of the 128 KiB is the client).
  assert.equal(f.receiver, f.conversations[0].server);
  assert.equal(z.evidence.receiver, 'server');
  assert.equal(z.evidence.firstZeroWindowFrame, f.first_zero_window.frame);
  assert.ok(Math.abs((z.evidence.firstZeroWindowTime as number) - (f.first_frame_epoch + f.first_zero_window.time)) < EPS);
  assert.ok(Math.abs((z.evidence.stallSeconds as number) - f.stall_duration) < EPS);
  assert.equal(z.evidence.reopened, true);
  assert.equal(z.evidence.reopenedFrame, f.window_reopened.frame);
  assert.ok(Math.abs((z.evidence.reopenedTime as number) - (f.first_frame_epoch + f.window_reopened.time)) < EPS);
  // Linux persist probes carry no new data: tshark calls them keep-alives; they are told apart here
  // by the zero window before them.
  assert.equal(z.evidence.probes, f.persist_probe_count);
  assert.deepEqual(z.evidence.probeFrames, f.persist_probes.map((p) => p.frame));
  (z.evidence.probeIntervalsSeconds as number[]).forEach((x, i) => assert.ok(Math.abs(x - f.persist_probe_intervals[i]) < EPS, `interval ${i}`));
  assert.equal(z.evidence.zeroWindowAdvertisements, f.zero_window_count);
  // The probes are not keep-alives.
  assert.deepEqual(result.findings.filter((x) => x.detector === 'keepalive'), []);
});

for (const name of ['healthy-mix', 'idle-keepalive-ok', 'idle-timeout-storm', 'syn-unanswered', 'timewait-collision', 'keepalive-race',
  'lb-blackhole-front', 'lb-blackhole-back', 'conn-churn', 'forged-rst-client', 'forged-rst-server', 'nat-path-client', 'nat-path-server']) {
  test(`negative control ${name}: no zero-window stall`, skipUnlessCaptures(`${name}.pcap`), async () => {
    const { result } = await analyzeFiles([capture(`${name}.pcap`)]);
    assert.deepEqual(ofDetector(result.findings, 'zero-window').map((x) => x.title), []);
  });
}

/**
 * The public corpus raises no zero-window finding: 206_example_b has 57 zero-window segments
 * (tshark), in two stalls of 61 ms and 14 ms (flow control, below minStallSeconds) and one at the
 * capture's very last frame (no duration).
 */
for (const row of corpusRows()) {
  test(`corpus ${row.path}: no zero-window finding`, async () => {
    const { result } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    assert.deepEqual(ofDetector(result.findings, 'zero-window').map((x) => x.title), []);
  });
}

interface Stall {
  firstFrame: number;
  probeFrames: number[];
  advertisements: number;
  reopenFrame: number;
}

/**
 * The server sends 1000 bytes at t0; the client ACKs them with a zero window at t0+0.01; the server
 * sends persist probes at the given offsets after that, each answered by the client with another
 * zero-window ACK; the client reopens at t0+0.01+reopenAfter (unless null).
 */
function stall(cap: SyntheticCapture, c: SyntheticFlow, t0: number, probeOffsets: number[], reopenAfter: number | null): Stall {
  c.data(t0, 'server', 1000);
  const zeroAt = t0 + 0.01;
  const firstFrame = cap.nextFrame;
  c.ack(zeroAt, 'client', { window: 0 });
  const probeFrames: number[] = [];
  for (const offset of probeOffsets) {
    probeFrames.push(cap.nextFrame);
    c.probe(zeroAt + offset, 'server');
    c.ack(zeroAt + offset + 0.0005, 'client', { window: 0 });
  }
  let reopenFrame = 0;
  if (reopenAfter !== null) {
    reopenFrame = cap.nextFrame;
    c.ack(zeroAt + reopenAfter, 'client', { window: 65535 });
  }
  return { firstFrame, probeFrames, advertisements: 1 + probeOffsets.length, reopenFrame };
}

test('a 4 s stall with persist probes that reopens is one warning with its numbers', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  const s = stall(cap, c, 0.1, [0.2, 0.6, 1.4, 3.0], 4.0);
  c.dataAcked(4.2, 'server', 1000);
  c.close(5, 'client');
  const findings = ofDetector(cap.finish(), 'zero-window');
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.severity, 'warning');
  assert.deepEqual(f.client, { ip: '10.0.0.1', port: 40000 });
  assert.deepEqual(f.server, { ip: '10.0.0.2', port: 5000 });
  assert.equal(f.evidence.receiver, 'client');
  assert.equal(f.evidence.firstZeroWindowFrame, s.firstFrame);
  assert.ok(Math.abs((f.evidence.firstZeroWindowTime as number) - 0.11) < 1e-6);
  assert.ok(Math.abs((f.evidence.stallSeconds as number) - 4.0) < 1e-6);
  assert.equal(f.evidence.probes, 4);
  assert.deepEqual(f.evidence.probeFrames, s.probeFrames);
  // Persist backoff as scripted: 0.4, 0.8, 1.6 s between probes.
  const intervals = f.evidence.probeIntervalsSeconds as number[];
  [0.4, 0.8, 1.6].forEach((want, i) => assert.ok(Math.abs(intervals[i] - want) < 1e-6, `interval ${i}`));
  assert.equal(f.evidence.zeroWindowAdvertisements, s.advertisements);
  assert.equal(f.evidence.reopened, true);
  assert.equal(f.evidence.reopenedFrame, s.reopenFrame);
  assert.equal(f.evidence.stalls, 1);
});

test('the stall is reported while it lasts (live), then updated under the same id', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  stall(cap, c, 0.1, [0.2, 0.6, 1.4], null);
  const early = ofDetector(cap.engine.results(), 'zero-window');
  assert.equal(early.length, 1, 'reported before the window reopened');
  assert.equal(early[0].evidence.reopened, false);
  assert.ok(Math.abs((early[0].evidence.stallSeconds as number) - 1.4005) < 1e-6, 'up to the last zero-window ACK');
  c.ack(0.11 + 2.5, 'client', { window: 65535 });
  const final = ofDetector(cap.finish(), 'zero-window');
  assert.equal(final.length, 1);
  assert.equal(final[0].id, early[0].id);
  assert.equal(final[0].evidence.reopened, true);
  assert.ok(Math.abs((final[0].evidence.stallSeconds as number) - 2.5) < 1e-6);
});

test('a zero window shorter than minStallSeconds is ordinary flow control', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  stall(cap, c, 0.1, [0.2], 0.5);
  stall(cap, c, 1, [0.2], 0.9);
  c.close(3, 'client');
  assert.deepEqual(ofDetector(cap.finish(), 'zero-window'), []);
});

test('a window that never reopens lasts until the conversation ends (reset by the sender)', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  const s = stall(cap, c, 0.1, [0.2, 0.6, 1.4, 3.0, 6.2], null);
  c.rst(10, 'server');
  const findings = ofDetector(cap.finish(), 'zero-window');
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.evidence.reopened, false);
  assert.equal(f.evidence.reopenedFrame, null);
  assert.equal(f.evidence.probes, 5);
  assert.equal(f.evidence.firstZeroWindowFrame, s.firstFrame);
  assert.ok(Math.abs((f.evidence.stallSeconds as number) - (10 - 0.11)) < 1e-6, 'until the RST, the last packet');
  assert.match(f.explanation, /never reopened/);
});

test('a capture ending mid-stall reports the stall up to the last packet', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  stall(cap, c, 0.1, [0.2, 0.6, 1.4, 3.0], null);
  const f = ofDetector(cap.finish(), 'zero-window')[0];
  assert.equal(f.evidence.reopened, false);
  assert.ok(Math.abs((f.evidence.stallSeconds as number) - 3.0005) < 1e-6);
});

test('sequence numbers wrapping past 2^32 during the stall change nothing', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  // The server's stream crosses 2^32 inside the 1000 bytes it sends before the stall.
  const c = cap.flow(CLIENT, SERVER, 0xfffffe00, 0xffffff00);
  c.handshake(0);
  const s = stall(cap, c, 0.1, [0.2, 0.6, 1.4], 2.0);
  c.close(3, 'client');
  const findings = ofDetector(cap.finish(), 'zero-window');
  assert.equal(findings.length, 1);
  assert.equal(findings[0].evidence.probes, 3, 'probes recognised across the wrap');
  assert.deepEqual(findings[0].evidence.probeFrames, s.probeFrames);
  assert.equal(findings[0].evidence.reopenedFrame, s.reopenFrame);
});

test('a capture that starts mid-stream still sees the stall and its probes', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  // No handshake: the capture begins with data already flowing.
  c.dataAcked(0, 'client', 100);
  const s = stall(cap, c, 0.1, [0.2, 0.6, 1.4], 3.0);
  const findings = ofDetector(cap.finish(), 'zero-window');
  assert.equal(findings.length, 1);
  assert.equal(findings[0].evidence.receiver, 'client');
  assert.equal(findings[0].evidence.probes, 3);
  assert.equal(findings[0].evidence.firstZeroWindowFrame, s.firstFrame);
});

test('probes without a zero window seen first (stall began before the capture) do not invent a stall', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.dataAcked(0.1, 'server', 1000);
  // Keep-alive shaped probes while the window is open are keep-alives, not persist probes.
  c.probe(10, 'server');
  c.ack(10.001, 'client');
  assert.deepEqual(ofDetector(cap.finish(), 'zero-window'), []);
});

test('two stalls of one receiver: the finding describes the longest and counts both', () => {
  const cap = new SyntheticCapture([zeroWindow]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  stall(cap, c, 0.1, [0.2, 0.6], 1.5);
  const second = stall(cap, c, 3, [0.2, 0.6, 1.4], 3.0);
  c.close(8, 'client');
  const findings = ofDetector(cap.finish(), 'zero-window');
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.evidence.stalls, 2);
  assert.equal(f.evidence.firstZeroWindowFrame, second.firstFrame);
  assert.ok(Math.abs((f.evidence.totalStalledSeconds as number) - 4.5) < 1e-6);
});

test('the threshold comes from the policy', () => {
  const cap = new SyntheticCapture([zeroWindow], { thresholds: { 'zero-window': { minStallSeconds: 5 } }, severity: {}, disabled: [] });
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  stall(cap, c, 0.1, [0.2, 0.6, 1.4], 4.0);
  c.close(5, 'client');
  assert.deepEqual(ofDetector(cap.finish(), 'zero-window'), []);
});
