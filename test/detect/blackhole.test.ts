import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { blackhole } from '../../src/detect/detectors/blackhole.js';
import type { Finding } from '../../src/detect/finding.js';
import { emptyPolicy } from '../../src/detect/policy.js';
import { CAPTURES_DIR, CORPUS_DIR, capture, corpusRows, facts } from '../helpers/paths.js';
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

test('blackhole: a proxy that times out and closes the client connection ends it as server-fin', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 6, 1, 0.003);
  for (let i = 0; i < 5; i++) {
    c.data(t, 'client', 60).ack(t + 0.001, 'server');
    t += 0.5;
  }
  const finFrame = cap.nextFrame;
  c.close(t + 30, 'server');
  const [f] = ours(cap.finish());
  assert.equal(f.severity, 'critical');
  assert.equal(f.evidence.ending, 'server-fin');
  assert.equal(f.evidence.endFrame, finFrame);
  assert.equal(f.evidence.earlierExchanges, 6);
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
  // Ten ACKed segments, but the client closes 1.8 s after the first: under the 2 s floor.
  const b = cap.flow('10.0.0.1:40001', SERVER);
  b.handshake(0);
  t = exchanges(b, 1, 5, 1, 0.01);
  for (let i = 0; i < 10; i++) b.data(t + i * 0.15, 'client', 50).ack(t + i * 0.15 + 0.001, 'server');
  b.fin(t + 1.8, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: two exchanges (a TLS handshake) are not yet a rhythm', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 2, 0.01, 0.001);
  for (let i = 0; i < 30; i++) {
    c.data(t, 'client', 300).ack(t + 0.001, 'server');
    t += 1;
  }
  c.close(t, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: the server stops ACKing (the back leg of a dead backend) is not a blackhole', () => {
  const cap = new SyntheticCapture([blackhole]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  let t = exchanges(c, 1, 4, 0.75, 0.0005);
  // Three segments ACKed, then the peer vanishes: later data is never acknowledged.
  for (let i = 0; i < 3; i++) {
    c.data(t, 'client', 20).ack(t + 0.001, 'server');
    t += 0.25;
  }
  for (let i = 0; i < 3; i++) {
    c.data(t, 'client', 23);
    t += 0.2;
  }
  c.rst(t + 5, 'client');
  assert.deepEqual(ours(cap.finish()), []);
});

test('blackhole: the threshold scales with the earlier response time', () => {
  // Earlier responses took 2 s: 20 x 2 s = 40 s is needed, a 12 s silence is not a blackhole.
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

  // With responseFactor 5: max(5 x 2 s, 2 x 2 s, 2 s) = 10 s.
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
  assert.ok(Math.abs((f.evidence.thresholdSeconds as number) - 10) < 1e-6);
});

test('blackhole: an answer that finally comes makes it a slow response, not a blackhole', () => {
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
  assert.deepEqual(ours(cap.finish()), []);
});

// ---- the lab captures ---------------------------------------------------------------------------

interface Heartbeat {
  frame: number;
  time: number;
  answer_frame: number | null;
  response_time: number | null;
}
interface ClientData {
  frame: number;
  time: number;
  acked_by_frame: number;
}
interface FrontFacts {
  first_frame_epoch: number;
  client: string;
  proxy: string;
  heartbeats: Heartbeat[];
  response_times_before_break: number[];
  last_response_from_proxy: { frame: number; time: number };
  client_data_after_break: ClientData[];
  client_bytes_after_break_acked_by_proxy: number;
  unanswered_heartbeat: { frame: number; time: number };
  client_close: { frame: number; time: number; flags: string[] };
  conversations: { payload_bytes_client_to_server: number }[];
}

const FRONT = 'lb-blackhole-front';
const hasFront = existsSync(capture(`${FRONT}.pcap`));

/** `ip:port` of an EndpointRef, as the facts write it. */
function text(endpoint: { ip: string; port: number } | null): string {
  return endpoint === null ? 'null' : `${endpoint.ip}:${endpoint.port}`;
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

test('blackhole: fires on the front leg of the lab load-balancer black hole', { skip: hasFront ? false : 'capture not generated' }, async () => {
  const fx = facts<FrontFacts>(FRONT);
  const { result, errors } = await analyzeFiles([capture(`${FRONT}.pcap`)]);
  assert.deepEqual(errors, []);
  const findings = ours(result.findings);
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.severity, 'critical');
  assert.equal(text(f.client), fx.client);
  assert.equal(text(f.server), fx.proxy);
  const e = f.evidence as Record<string, number | string | null>;
  // The rhythm before the break: every answered heartbeat is one exchange, with tshark's response times.
  const answered = fx.heartbeats.filter((h) => h.answer_frame !== null);
  assert.equal(e.earlierExchanges, answered.length);
  assert.ok(Math.abs((e.medianResponseSeconds as number) - medianOf(fx.response_times_before_break)) < 2e-6);
  assert.ok(Math.abs((e.maxResponseSeconds as number) - Math.max(...fx.response_times_before_break)) < 2e-6);
  assert.equal(e.lastResponseFrame, fx.last_response_from_proxy.frame);
  // The silence starts with the first client segment after the last response: the one-way messages
  // sent before the break are unanswered by design, so it lies between the last response and the
  // first message after the break.
  assert.ok((e.sinceFrame as number) > fx.last_response_from_proxy.frame);
  assert.ok((e.sinceFrame as number) <= fx.client_data_after_break[0].frame);
  // Everything the client sent after the break, up to the unanswered heartbeat, was ACKed.
  const afterBreak = fx.client_data_after_break;
  assert.equal(e.lastClientFrame, fx.unanswered_heartbeat.frame);
  assert.equal(e.lastAckFrame, afterBreak[afterBreak.length - 1].acked_by_frame);
  assert.ok((e.ackedSegments as number) >= afterBreak.length);
  assert.ok((e.ackedBytes as number) >= fx.client_bytes_after_break_acked_by_proxy);
  assert.ok((e.ackedBytes as number) <= fx.conversations[0].payload_bytes_client_to_server);
  assert.equal(e.ackedBytes, e.unansweredBytes);
  // Ended by the client's FIN, 3 s after the unanswered heartbeat.
  assert.ok(fx.client_close.flags.includes('FIN'));
  assert.equal(e.ending, 'client-fin');
  assert.equal(e.endFrame, fx.client_close.frame);
  const silence = e.unansweredSeconds as number;
  assert.ok(silence >= fx.client_close.time - afterBreak[0].time - 1e-6);
  assert.ok(silence <= fx.client_close.time - fx.last_response_from_proxy.time + 1e-6);
  assert.ok(Math.abs(f.end - (fx.first_frame_epoch + fx.client_close.time)) < 1e-5);
});

/**
 * Lab captures where blackhole must stay quiet (below warning). Every capture but the front leg is
 * a negative control: the back leg of the same black hole is a retransmission storm (the backend
 * never ACKs), the others are healthy traffic or other failures.
 */
const POSITIVE = new Set([`${FRONT}.pcap`]);
const labCaptures = existsSync(CAPTURES_DIR) ? readdirSync(CAPTURES_DIR).filter((n) => /\.pcap(ng)?$/.test(n) && !POSITIVE.has(n)) : [];

for (const name of labCaptures) {
  test(`blackhole: silent on lab capture ${name}`, async () => {
    const { result } = await analyzeFiles([join(CAPTURES_DIR, name)]);
    const loud = ours(result.findings).filter((f) => f.severity !== 'info');
    assert.deepEqual(loud.map((f) => f.title), []);
  });
}

test('blackhole: the negative controls the brief names are among the lab captures', { skip: labCaptures.length === 0 ? 'captures not generated' : false }, () => {
  for (const name of ['healthy-mix.pcap', 'idle-keepalive-ok.pcap', 'lb-blackhole-back.pcap']) {
    assert.ok(labCaptures.includes(name), name);
  }
});

// ---- the public corpus ---------------------------------------------------------------------------

/** Findings blackhole raises on the corpus, each justified; none so far. */
const CORPUS_EXPECTED: Record<string, string[]> = {};

const rows = corpusRows();
for (const row of rows) {
  test(`blackhole on corpus: ${row.path}`, async () => {
    const { result } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    assert.deepEqual(ours(result.findings).map((f) => f.id), CORPUS_EXPECTED[row.path] ?? []);
  });
}
