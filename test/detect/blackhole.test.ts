import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blackhole } from '../../src/detect/detectors/blackhole.js';
import type { Finding } from '../../src/detect/finding.js';
import { emptyPolicy } from '../../src/detect/policy.js';
import { SyntheticCapture, type SyntheticFlow } from '../helpers/synthetic.js';

const CLIENT = '10.0.0.1:40000';
const SERVER = '10.0.0.2:8080';

/** `count` requests of `size` bytes, one per `every` seconds from `t`, each answered after `rtt`. */
function exchanges(c: SyntheticFlow, t: number, count: number, every: number, rtt: number, size = 50): number {
  for (let i = 0; i < count; i++) {
    c.data(t, 'client', size);
    c.data(t + rtt, 'server', 200);
    c.ack(t + rtt + 0.0002, 'client');
    t += every;
  }
  return t;
}

function ours(findings: Finding[]): Finding[] {
  return findings.filter((f) => f.detector === 'blackhole');
}

test('blackhole: ACKed requests with no answer after a fast rhythm, ended by the client', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 5, 1, 0.01);
  const sinceFrame = cap.nextFrame;
  const since = t;
  // 20 requests, each ACKed 1 ms later, none answered; the client gives up 10 s after the last.
  for (let i = 0; i < 20; i++) {
    c.data(t, 'client', 50);
    c.ack(t + 0.001, 'server');
    t += 1;
  }
  const finFrame = cap.nextFrame;
  c.fin(t + 9, 'client');
  const findings = ours(cap.finish());
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.severity, 'critical');
  assert.deepEqual(f.client, { ip: '10.0.0.1', port: 40000 });
  assert.deepEqual(f.server, { ip: '10.0.0.2', port: 8080 });
  assert.equal(f.evidence.earlierExchanges, 5);
  assert.equal(f.evidence.unansweredSegments, 20);
  assert.equal(f.evidence.ackedSegments, 20);
  assert.equal(f.evidence.ackedBytes, 20 * 50);
  assert.equal(f.evidence.sinceFrame, sinceFrame);
  assert.ok(Math.abs((f.evidence.sinceTime as number) - since) < 1e-6);
  assert.ok(Math.abs((f.evidence.medianResponseSeconds as number) - 0.01) < 1e-6);
  assert.equal(f.evidence.ending, 'client-fin');
  assert.equal(f.evidence.endFrame, finFrame);
  // First unanswered request at `since`, client FIN at since + 20 + 9.
  assert.ok(Math.abs((f.evidence.unansweredSeconds as number) - 29) < 1e-6);
});

test('blackhole: a client RST ends it too, and the finding says so', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 3, 0.5, 0.002);
  for (let i = 0; i < 4; i++) {
    c.data(t, 'client', 80);
    c.ack(t + 0.001, 'server');
    t += 2;
  }
  c.rst(t + 4, 'client');
  const [f, ...rest] = ours(cap.finish());
  assert.equal(rest.length, 0);
  assert.equal(f.evidence.ending, 'client-rst');
  assert.equal(f.evidence.ackedSegments, 4);
  assert.equal(f.evidence.ackedBytes, 320);
});

test('blackhole: open at the end of the capture still counts', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 4, 1, 0.005);
  for (let i = 0; i < 10; i++) {
    c.data(t, 'client', 40);
    c.ack(t + 0.001, 'server');
    t += 1;
  }
  const [f] = ours(cap.finish());
  assert.equal(f.evidence.ending, 'open');
  assert.equal(f.evidence.endFrame, null);
  assert.equal(f.severity, 'critical');
});

test('blackhole: silent on healthy request/response, however long the conversation', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  const t = exchanges(c, 1, 200, 0.5, 0.02);
  c.close(t + 1, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: silent on a one-way upload without an earlier response rhythm', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = 1;
  for (let i = 0; i < 3000; i++) {
    c.data(t, 'client', 1448);
    if (i % 2 === 1) c.ack(t + 0.001, 'server');
    t += 0.01;
  }
  c.close(t, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: silent when the data is not ACKed (that is a retransmission storm)', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  const t = exchanges(c, 1, 5, 1, 0.01);
  c.data(t, 'client', 50);
  for (const d of [0.2, 0.6, 1.4, 3, 6.2, 12.6, 25.4]) c.data(t + d, 'client', 50, { seq: 250 });
  c.rst(t + 40, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: silent when the server closes its window (a receiver stall, not a blackhole)', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 5, 1, 0.01);
  for (let i = 0; i < 10; i++) {
    c.data(t, 'client', 1000);
    c.ack(t + 0.001, 'server', { window: i >= 5 ? 0 : 4000 });
    t += 1;
  }
  c.fin(t + 5, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: fewer ACKed segments than minUnansweredSegments, or a short silence, is not enough', () => {
  const cap = new SyntheticCapture([blackhole]);
  // Two unanswered segments over 20 s: below the default of 3.
  const a = cap.flow(CLIENT, SERVER);
  a.handshake(0);
  let t = exchanges(a, 1, 5, 1, 0.01);
  a.data(t, 'client', 50).ack(t + 0.001, 'server');
  a.data(t + 10, 'client', 50).ack(t + 10.001, 'server');
  a.fin(t + 20, 'client');
  // Ten segments, but answered 3 s later: under the 5 s floor.
  const b = cap.flow('10.0.0.1:40001', SERVER);
  b.handshake(0);
  t = exchanges(b, 1, 5, 1, 0.01);
  for (let i = 0; i < 10; i++) b.data(t + i * 0.3, 'client', 50).ack(t + i * 0.3 + 0.001, 'server');
  b.data(t + 3, 'server', 100);
  b.close(t + 4, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: the threshold scales with the earlier response time', () => {
  // Earlier responses took 2 s: 10 x 2 s = 20 s is needed, a 12 s silence is not a blackhole.
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 4, 3, 2);
  for (let i = 0; i < 6; i++) {
    c.data(t, 'client', 50).ack(t + 0.001, 'server');
    t += 2;
  }
  c.fin(t, 'client');
  assert.deepEqual(ours(cap.finish()), []);

  const policy = emptyPolicy();
  policy.thresholds.blackhole = { responseFactor: 5 };
  const cap2 = new SyntheticCapture([blackhole], policy);
  const d = cap2.flow(CLIENT, SERVER);
  d.handshake(0);
  t = exchanges(d, 1, 4, 3, 2);
  for (let i = 0; i < 6; i++) {
    d.data(t, 'client', 50).ack(t + 0.001, 'server');
    t += 2;
  }
  d.fin(t, 'client');
  const [f] = ours(cap2.finish());
  assert.equal(f.evidence.thresholdSeconds, 10);
});

test('blackhole: an answer that finally comes turns the finding into info', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 5, 1, 0.01);
  for (let i = 0; i < 10; i++) {
    c.data(t, 'client', 50).ack(t + 0.001, 'server');
    t += 1;
  }
  c.data(t + 5, 'server', 500);
  c.close(t + 6, 'client');
  const [f, ...rest] = ours(cap.finish());
  assert.equal(rest.length, 0);
  assert.equal(f.severity, 'info');
  assert.equal(f.evidence.ending, 'answered');
});
