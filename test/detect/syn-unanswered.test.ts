import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { synRetryPattern, synUnanswered } from '../../src/detect/detectors/syn-unanswered.js';
import type { Finding } from '../../src/detect/finding.js';
import { endpoint, ofDetector, skipUnlessCaptures } from '../helpers/lab.js';
import { capture, CORPUS_DIR, corpusRows, facts } from '../helpers/paths.js';
import { SyntheticCapture, type SyntheticFlow, analyzeAtSnaplen, SNAPLEN_VARIANTS, snaplenLabel } from '../helpers/synthetic.js';

/**
 * syn-unanswered on hand-built connection attempts; expected counts, frames and intervals are read
 * off each script.
 */

/** SYNs at the given times; returns their frames. */
function syns(cap: SyntheticCapture, c: SyntheticFlow, times: number[]): number[] {
  return times.map((t) => {
    const frame = cap.nextFrame;
    c.syn(t);
    return frame;
  });
}

const near = (a: unknown, b: number) => typeof a === 'number' && Math.abs(a - b) < 1e-6;
const EPS = 1e-5;

interface Attempt {
  client: string;
  server: string;
  syns: { frame: number; time: number }[];
  syn_retransmissions: number;
  connect_latency_s?: number;
  syn_retransmission_intervals_s?: number[];
}
interface SynFacts {
  filtered: Attempt & { intervals_s: number[]; packets_from_server: number };
  slow_accept: { queue_filler: Attempt; delayed_connect: Attempt };
  refused: { client: string; server: string };
}

for (const snaplen of SNAPLEN_VARIANTS) test(`syn-unanswered capture: filtered port, full accept queue, refused port (tshark facts)${snaplenLabel(snaplen)}`, skipUnlessCaptures('syn-unanswered.pcap'), async () => {
  const f = facts<SynFacts>('syn-unanswered');
  const { result, errors } = await analyzeAtSnaplen(capture('syn-unanswered.pcap'), snaplen);
  assert.deepEqual(errors, []);
  const findings = ofDetector(result.findings, 'syn-unanswered');
  const byServer = (server: string) => findings.filter((x) => x.evidence.server === server);

  // Filtered port: nothing ever answers it, so critical.
  const filtered = byServer(f.filtered.server);
  assert.equal(filtered.length, 1);
  const a = filtered[0];
  assert.equal(f.filtered.packets_from_server, 0);
  assert.equal(a.severity, 'critical');
  assert.deepEqual(a.client, endpoint(f.filtered.client));
  assert.deepEqual(a.server, endpoint(f.filtered.server));
  assert.equal(a.evidence.attempts, 1);
  assert.equal(a.evidence.unanswered, 1);
  assert.equal(a.evidence.synRetransmissions, f.filtered.syn_retransmissions);
  const worst = a.evidence.worstAttempt as Record<string, unknown>;
  assert.deepEqual(worst.synFrames, f.filtered.syns.map((x) => x.frame));
  (a.evidence.retryIntervalsSeconds as number[]).forEach((x, i) => assert.ok(Math.abs(x - f.filtered.intervals_s[i]) < EPS, `interval ${i}`));
  // Linux 6.5+ (tcp_syn_linear_timeouts = 4): every interval seen is ~1 s, doubling never reached.
  assert.ok(f.filtered.intervals_s.every((x) => Math.abs(x - f.filtered.intervals_s[0]) < 0.25 * f.filtered.intervals_s[0]));
  assert.equal(a.evidence.retryPattern, 'linear');

  // Full accept queue: one connect answered at once (the queue filler), one only after SYN retries.
  const { queue_filler: filler, delayed_connect: delayed } = f.slow_accept;
  assert.equal(filler.server, delayed.server);
  const slow = byServer(delayed.server);
  assert.equal(slow.length, 1);
  const b = slow[0];
  assert.equal(b.severity, 'warning', 'the server answers: not critical');
  assert.equal(b.evidence.attempts, 2);
  assert.equal(filler.syn_retransmissions, 0);
  assert.equal(b.evidence.answeredFirstTry, 1);
  assert.equal(b.evidence.succeededAfterRetries, 1);
  assert.equal(b.evidence.unanswered, 0);
  assert.equal(b.evidence.synRetransmissions, delayed.syn_retransmissions);
  const latencies = b.evidence.connectLatencySeconds as number[];
  assert.equal(latencies.length, 1);
  assert.ok(Math.abs(latencies[0] - (delayed.connect_latency_s as number)) < EPS);
  assert.deepEqual((b.evidence.worstAttempt as Record<string, unknown>).synFrames, delayed.syns.map((x) => x.frame));
  (b.evidence.retryIntervalsSeconds as number[]).forEach((x, i) => assert.ok(Math.abs(x - (delayed.syn_retransmission_intervals_s as number[])[i]) < EPS));
  assert.deepEqual(b.client, endpoint(delayed.client), 'one client address tried');

  // Refused without retries: reset-ratio's business, no finding here.
  assert.deepEqual(byServer(f.refused.server), []);
  assert.equal(findings.length, 2);
});

for (const name of ['healthy-mix', 'idle-keepalive-ok', 'idle-timeout-storm', 'zero-window-stall', 'timewait-collision', 'keepalive-race',
  'lb-blackhole-front', 'lb-blackhole-back', 'conn-churn', 'forged-rst-client', 'forged-rst-server', 'nat-path-client', 'nat-path-server']) {
  test(`negative control ${name}: no unanswered SYNs`, skipUnlessCaptures(`${name}.pcap`), async () => {
    const { result } = await analyzeFiles([capture(`${name}.pcap`)]);
    assert.deepEqual(ofDetector(result.findings, 'syn-unanswered').map((x) => x.title), []);
  });
}

/**
 * The public corpus. One capture has real SYN loss: echo-connections opens 500 connections to a
 * localhost echo server at once; its accept queue overflows and the kernel drops SYNs, which the
 * clients retransmit after 1 s and 3 s (doubling: a kernel before 6.5). tshark's count of SYNs
 * without ACK minus its stream count is exactly the number of SYN retransmissions.
 * Captures that contain every SYN twice or three times (vlan-collisions: three VLANs 50 ms apart;
 * nflog-http: three NFLOG copies at the same instant) raise nothing: copies are not retries.
 */
const CORPUS_EXPECTED: Record<string, (findings: Finding[], row: { syn: number; tcp_streams: number }) => void> = {
  'zeek/testing/btest/Traces/echo-connections.pcap.gz': (findings, row) => {
    assert.equal(findings.length, 1);
    assert.equal(findings[0].severity, 'warning', 'most connects were answered at once');
    assert.equal(findings[0].evidence.synRetransmissions, row.syn - row.tcp_streams);
    assert.equal(findings[0].evidence.attempts, row.tcp_streams);
    assert.equal(findings[0].evidence.unanswered, 0, 'every connection was made in the end');
    assert.equal(findings[0].evidence.retryPattern, 'doubling');
  },
};

for (const row of corpusRows()) {
  test(`corpus ${row.path}: syn-unanswered findings are justified`, async () => {
    const { result } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    const check = CORPUS_EXPECTED[row.path];
    if (check) check(ofDetector(result.findings, 'syn-unanswered'), row);
    else assert.deepEqual(ofDetector(result.findings, 'syn-unanswered').map((x) => x.title), []);
  });
}

test('per server: answered at once, answered after retries (with latency), never answered', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  const a = cap.flow('10.0.0.1:40000', '10.0.0.2:80');
  a.handshake(0);
  a.close(0.5, 'client');
  const b = cap.flow('10.0.0.1:40001', '10.0.0.2:80');
  syns(cap, b, [0, 1, 2]);
  b.synAck(2.0005);
  b.ack(2.001, 'client');
  b.close(2.5, 'client');
  const c = cap.flow('10.0.0.1:40002', '10.0.0.2:80');
  // Linux 6.5+ with tcp_syn_linear_timeouts = 4: five 1 s intervals, then doubling.
  const cTimes = [10, 11, 12, 13, 14, 15, 17];
  const cFrames = syns(cap, c, cTimes);
  const findings = ofDetector(cap.finish(), 'syn-unanswered');
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.severity, 'warning', 'the server answers others: not critical');
  assert.deepEqual(f.server, { ip: '10.0.0.2', port: 80 });
  assert.equal(f.evidence.server, '10.0.0.2:80');
  assert.equal(f.evidence.attempts, 3);
  assert.equal(f.evidence.answeredFirstTry, 1);
  assert.equal(f.evidence.succeededAfterRetries, 1);
  assert.equal(f.evidence.unanswered, 1);
  assert.equal(f.evidence.refused, 0);
  assert.equal(f.evidence.synRetransmissions, 2 + 6);
  const latencies = f.evidence.connectLatencySeconds as number[];
  assert.equal(latencies.length, 1);
  assert.ok(near(latencies[0], 2.0005));
  assert.deepEqual((f.evidence.retryIntervalsSeconds as number[]).map((x) => Math.round(x * 1e6) / 1e6), [1, 1, 1, 1, 1, 2]);
  assert.equal(f.evidence.retryPattern, 'linear-then-doubling');
  const worst = f.evidence.worstAttempt as Record<string, unknown>;
  assert.deepEqual(worst.synFrames, cFrames);
  assert.equal(worst.syns, 7);
  assert.equal(worst.outcome, 'unanswered');
  assert.equal(f.conversations.length, 2, 'the retried and the unanswered attempt');
});

test('a server that never answers anything is critical; doubling retries are named', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  for (let i = 0; i < 2; i++) {
    const c = cap.flow(`10.0.0.1:${41000 + i}`, '10.0.0.3:443');
    syns(cap, c, [i * 100, i * 100 + 1, i * 100 + 3, i * 100 + 7, i * 100 + 15]);
  }
  const findings = ofDetector(cap.finish(), 'syn-unanswered');
  assert.equal(findings.length, 1);
  assert.equal(findings[0].severity, 'critical');
  assert.equal(findings[0].evidence.attempts, 2);
  assert.equal(findings[0].evidence.unanswered, 2);
  assert.equal(findings[0].evidence.retryPattern, 'doubling');
  assert.deepEqual(findings[0].client, { ip: '10.0.0.1', port: 41000 });
});

test('reported while the client still retries (live), then updated under the same id', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  const c = cap.flow('10.0.0.1:40000', '10.0.0.2:6379');
  syns(cap, c, [0, 1, 2]);
  const early = ofDetector(cap.engine.results(), 'syn-unanswered');
  assert.equal(early.length, 1);
  assert.equal(early[0].evidence.unanswered, 1);
  syns(cap, c, [3, 4]);
  const final = ofDetector(cap.finish(), 'syn-unanswered');
  assert.equal(final.length, 1);
  assert.equal(final[0].id, early[0].id);
  assert.equal((final[0].evidence.worstAttempt as Record<string, unknown>).syns, 5);
});

test('refused attempts, single unanswered SYNs and TIME_WAIT ACKs raise nothing', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  // Refused: RST answers the SYN (reset-ratio's business).
  const r = cap.flow('10.0.0.1:40000', '10.0.0.2:81');
  r.syn(0);
  r.rst(0.0005, 'server');
  // A lone SYN at the end of the capture (or a port scan probe): no retransmission, no verdict.
  const lone = cap.flow('10.0.0.1:40001', '10.0.0.2:82');
  lone.syn(1);
  // TIME_WAIT: the server answers with an ACK of the old connection, the client resets it and
  // retransmits its SYN a second later, which is answered.
  const tw = cap.flow('10.0.0.1:40002', '10.0.0.2:83');
  tw.syn(2);
  tw.ack(2.0005, 'server', { ack: 5000 });
  tw.rst(2.001, 'client', true);
  tw.syn(3);
  tw.synAck(3.0005);
  tw.ack(3.001, 'client');
  // The SYN-ACK never made it into the capture, but the first SYN was answered: the client went on.
  const missed = cap.flow('10.0.0.1:40003', '10.0.0.2:84');
  missed.syn(4);
  missed.ack(4.01, 'client');
  missed.data(4.02, 'client', 100);
  assert.deepEqual(ofDetector(cap.finish(), 'syn-unanswered'), []);
});

test('a retried SYN whose SYN-ACK the capture missed counts as answered after retries', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  const missed = cap.flow('10.0.0.1:40003', '10.0.0.2:84');
  missed.syn(4);
  missed.syn(5);
  // The handshake's ACK carries no verdict the detector is shown; the data after it is the first
  // packet proving the answer, so the latency is known only up to it.
  missed.ack(5.01, 'client');
  missed.data(5.02, 'client', 100);
  const findings = ofDetector(cap.finish(), 'syn-unanswered');
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.severity, 'warning');
  assert.equal(f.evidence.unanswered, 0, 'the early report is corrected');
  assert.equal(f.evidence.succeededAfterRetries, 1);
  assert.equal(f.evidence.answerNotCaptured, 1);
  assert.ok(near((f.evidence.connectLatencySeconds as number[])[0], 1.02));
});

test('refusals are mentioned next to drops on the same server', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  const r = cap.flow('10.0.0.1:40000', '10.0.0.2:80');
  r.syn(0);
  r.rst(0.0005, 'server');
  const d = cap.flow('10.0.0.1:40001', '10.0.0.2:80');
  syns(cap, d, [1, 2, 3]);
  const f = ofDetector(cap.finish(), 'syn-unanswered')[0];
  assert.equal(f.evidence.refused, 1);
  assert.equal(f.evidence.unanswered, 1);
  assert.equal(f.severity, 'warning', 'an RST is an answer: the host is up');
  assert.match(f.explanation, /refused/);
});

test('an attempt reported live while unanswered and then refused stays reported, with its end', () => {
  const cap = new SyntheticCapture([synUnanswered]);
  const c = cap.flow('10.0.0.1:40000', '10.0.0.2:80');
  syns(cap, c, [0, 1, 2]);
  assert.equal(ofDetector(cap.engine.results(), 'syn-unanswered').length, 1);
  c.rst(2.0005, 'server');
  const f = ofDetector(cap.finish(), 'syn-unanswered')[0];
  assert.equal(f.evidence.unanswered, 0);
  assert.equal(f.evidence.refused, 1);
  assert.equal(f.evidence.refusedAfterRetries, 1);
  assert.equal(f.severity, 'warning', 'an RST is an answer: the host is up');
});

test('the threshold comes from the policy', () => {
  const cap = new SyntheticCapture([synUnanswered], { thresholds: { 'syn-unanswered': { minSynRetransmissions: 3 } }, severity: {}, disabled: [] });
  const c = cap.flow('10.0.0.1:40000', '10.0.0.2:80');
  syns(cap, c, [0, 1, 2]);
  c.synAck(2.0005);
  c.ack(2.001, 'client');
  assert.deepEqual(ofDetector(cap.finish(), 'syn-unanswered'), []);
});

test('retry pattern names', () => {
  assert.equal(synRetryPattern([1, 1, 1, 1, 1, 2, 4]).pattern, 'linear-then-doubling');
  assert.match(synRetryPattern([1, 1, 1, 1, 1, 2, 4]).text, /tcp_syn_linear_timeouts=4/);
  assert.equal(synRetryPattern([1, 2, 4, 8, 16]).pattern, 'doubling');
  assert.equal(synRetryPattern([1, 1, 1]).pattern, 'linear');
  assert.equal(synRetryPattern([3]).pattern, 'single');
  assert.equal(synRetryPattern([1, 5, 2]).pattern, 'irregular');
});
