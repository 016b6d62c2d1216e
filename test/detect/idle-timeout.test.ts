import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { idleTimeout } from '../../src/detect/detectors/idle-timeout.js';
import { idleBracket } from '../../src/detect/idle-gaps.js';
import { MIDDLEBOX_IDLE_TIMEOUTS } from '../../src/detect/knowledge.js';
import { endpoint, ofDetector, skipUnlessCaptures } from '../helpers/lab.js';
import { capture, CORPUS_DIR, corpusRows, facts } from '../helpers/paths.js';
import { SyntheticCapture, type SyntheticFlow, analyzeAtSnaplen, SNAPLEN_VARIANTS, snaplenLabel } from '../helpers/synthetic.js';

/**
 * idle-timeout against the lab captures (idle-timeout-storm fails after the 5 s conntrack timeout;
 * idle-keepalive-ok survives it), negative controls, the corpus, and hand-built edge cases whose
 * expected numbers are read off the script.
 */

const ID = 'idle-timeout';
const EPS = 1e-5;

interface StormFacts {
  first_frame_epoch: number;
  lab_config: { conntrack_tcp_timeout_established_s: number };
  storm: {
    client: string;
    server: string;
    original: { frame: number; epoch: number };
    idle_gap_before: number;
    retransmission_count: number;
    retransmissions: { frame: number; epoch: number }[];
    survived_idle_gaps: { gap: number; request_frame: number; answer_frame: number }[];
  };
}

for (const snaplen of SNAPLEN_VARIANTS) test(`idle-timeout-storm: a bracket around the 5 s conntrack timeout, from tshark's gaps${snaplenLabel(snaplen)}`, skipUnlessCaptures('idle-timeout-storm.pcap'), async () => {
  const f = facts<StormFacts>('idle-timeout-storm');
  const { result, errors } = await analyzeAtSnaplen(capture('idle-timeout-storm.pcap'), snaplen);
  assert.deepEqual(errors, []);
  const findings = ofDetector(result.findings, ID);
  assert.equal(findings.length, 1);
  const it = findings[0];
  const s = f.storm;
  assert.equal(it.severity, 'warning');
  assert.deepEqual(it.client, endpoint(s.client));
  assert.deepEqual(it.server, endpoint(s.server));
  assert.equal(it.evidence.serverIp, endpoint(s.server).ip);
  // Upper bound: the gap before the lost request. The failure is its retransmissions, all counted.
  assert.ok(Math.abs((it.evidence.upperBoundSeconds as number) - s.idle_gap_before) < EPS);
  const failure = it.evidence.shortestFailure as Record<string, unknown>;
  assert.equal(failure.frame, s.original.frame);
  assert.equal(failure.outcome, 'retransmissions');
  assert.equal(failure.retries, s.retransmission_count);
  assert.ok(Math.abs((it.end) - s.retransmissions[s.retransmissions.length - 1].epoch) < EPS);
  // Lower bound: the longest gap (of 1 s or more, as the facts list them) that was answered.
  const longest = s.survived_idle_gaps.reduce((a, b) => (b.gap > a.gap ? b : a));
  assert.ok(Math.abs((it.evidence.lowerBoundSeconds as number) - longest.gap) < EPS);
  const survival = it.evidence.longestSurvival as Record<string, unknown>;
  assert.equal(survival.frame, longest.request_frame);
  assert.equal(survival.resolvedFrame, longest.answer_frame);
  assert.equal(it.evidence.bracketOpenBelow, false);
  // The lab's setting lies inside the inferred bracket.
  const configured = f.lab_config.conntrack_tcp_timeout_established_s;
  assert.ok(configured > longest.gap && configured <= s.idle_gap_before);
  // Every known default is a minute or more: none lies in a bracket of a few seconds.
  assert.deepEqual(it.evidence.matchingDefaults, []);
});

test('idle-keepalive-ok: keep-alives break the idle period, nothing fails (negative control)', skipUnlessCaptures('idle-keepalive-ok.pcap'), async () => {
  const { result } = await analyzeFiles([capture('idle-keepalive-ok.pcap')]);
  assert.deepEqual(ofDetector(result.findings, ID), []);
});

test('both lab captures as one (same router, same server): the bracket stands', skipUnlessCaptures('idle-timeout-storm.pcap', 'idle-keepalive-ok.pcap'), async () => {
  const names = ['idle-timeout-storm', 'idle-keepalive-ok'];
  // Merged in capture-time order, as tcpdump would have rotated them.
  names.sort((a, b) => facts<StormFacts>(a).first_frame_epoch - facts<StormFacts>(b).first_frame_epoch);
  const { result } = await analyzeFiles(names.map((n) => capture(`${n}.pcap`)), { merge: true });
  const f = facts<StormFacts>('idle-timeout-storm');
  const findings = ofDetector(result.findings, ID);
  assert.equal(findings.length, 1);
  // The keep-alive capture's gaps (about 2 s) are shorter than the storm capture's 3 s survivor.
  const longest = Math.max(...f.storm.survived_idle_gaps.map((g) => g.gap));
  assert.ok(Math.abs((findings[0].evidence.lowerBoundSeconds as number) - longest) < EPS);
  assert.ok(Math.abs((findings[0].evidence.upperBoundSeconds as number) - f.storm.idle_gap_before) < EPS);
});

for (const name of ['healthy-mix', 'zero-window-stall', 'syn-unanswered', 'timewait-collision', 'keepalive-race', 'lb-blackhole-front',
  'lb-blackhole-back', 'conn-churn', 'forged-rst-client', 'forged-rst-server', 'nat-path-client', 'nat-path-server']) {
  test(`negative control ${name}: no idle-timeout finding`, skipUnlessCaptures(`${name}.pcap`), async () => {
    const { result } = await analyzeFiles([capture(`${name}.pcap`)]);
    assert.deepEqual(ofDetector(result.findings, ID).map((x) => x.title), []);
  });
}

for (const row of corpusRows()) {
  test(`corpus ${row.path}: no idle-timeout finding`, async () => {
    // None of the public captures has an idle gap of 5 s or more followed by an unanswered packet.
    const { result } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    assert.deepEqual(ofDetector(result.findings, ID).map((x) => x.title), []);
  });
}

// ---- the pure bracket -----------------------------------------------------------------------------

test('idleBracket: bounds, open side, contradictions, matching defaults', () => {
  const b = idleBracket([30, 60, 45], [400, 500]);
  assert.equal(b.low, 60);
  assert.equal(b.high, 400);
  assert.equal(b.contradicting, 0);
  assert.deepEqual(b.matches.map((d) => d.name), MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.seconds > 60 && d.seconds <= 400).map((d) => d.name));
  const open = idleBracket([], [70]);
  assert.equal(open.low, null);
  assert.equal(open.high, 70);
  assert.deepEqual(open.matches.map((d) => d.seconds), [60]);
  const contradicted = idleBracket([10, 90], [70]);
  assert.equal(contradicted.low, 10);
  assert.equal(contradicted.contradicting, 1);
  assert.equal(idleBracket([10], []).high, null);
});

// ---- hand-built edge cases ------------------------------------------------------------------------

const SERVER = '10.0.0.2:6379';

/** A request/response exchange at t (client sends 20 bytes, server answers 10, client ACKs). */
function exchange(c: SyntheticFlow, t: number): void {
  c.data(t, 'client', 20);
  c.data(t + 0.001, 'server', 10);
  c.ack(t + 0.002, 'client');
}

test('gaps of 30 s and 60 s survive, a 400 s gap ends in an RST: bracket (60 s, 400 s]', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 1);
  exchange(c, 31.002);
  exchange(c, 91.004);
  const failFrame = cap.nextFrame;
  c.data(491.006, 'client', 20);
  // An L4 balancer that forgot the flow answers with an RST from the server's address.
  c.rst(491.007, 'server');
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings.length, 1);
  const e = findings[0].evidence;
  assert.ok(Math.abs((e.lowerBoundSeconds as number) - 60) < 1e-6);
  assert.ok(Math.abs((e.upperBoundSeconds as number) - 400) < 1e-6);
  const failure = e.shortestFailure as Record<string, unknown>;
  assert.equal(failure.frame, failFrame);
  assert.equal(failure.outcome, 'reset');
  assert.equal(failure.resetBy, 'server');
  assert.equal(e.survivedGaps, 2);
  const expected = MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.seconds > 60 && d.seconds <= 400).map((d) => d.name);
  assert.deepEqual((e.matchingDefaults as { name: string }[]).map((d) => d.name), expected);
  assert.ok(expected.length > 0);
});

test('a failure with no surviving gap leaves the bracket open below, and is reported live', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 0.5);
  c.data(70.502, 'client', 20);
  c.data(70.702, 'client', 20, { seq: 20 });
  c.data(71.102, 'client', 20, { seq: 20 });
  const live = ofDetector(cap.engine.results(), ID);
  assert.equal(live.length, 1, 'reported as soon as the second retransmission went unanswered');
  c.data(71.902, 'client', 20, { seq: 20 });
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings[0].id, live[0].id);
  assert.equal(findings[0].evidence.bracketOpenBelow, true);
  assert.equal(findings[0].evidence.lowerBoundSeconds, null);
  assert.equal((findings[0].evidence.shortestFailure as Record<string, unknown>).retries, 3);
  assert.match(findings[0].explanation, /open below/);
});

test('a failure after a gap shorter than minGapSeconds is ordinary loss, not an idle timeout', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 0.5);
  c.data(3.502, 'client', 20);
  for (const t of [3.702, 4.102, 4.902]) c.data(t, 'client', 20, { seq: 20 });
  assert.deepEqual(ofDetector(cap.finish(), ID), []);
});

test('a connection the server had closed (FIN) before the gap is not an idle-timeout victim', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 0.5);
  c.fin(5, 'server');
  c.ack(5.001, 'client');
  c.data(65, 'client', 20);
  c.rst(65.001, 'server');
  assert.deepEqual(ofDetector(cap.finish(), ID), []);
});

test('unanswered keep-alive probes after a long gap are a failure too', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 0.5);
  const probeFrame = cap.nextFrame;
  c.probe(400.502, 'client');
  c.probe(475.502, 'client');
  c.probe(550.502, 'client');
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings.length, 1);
  const failure = findings[0].evidence.shortestFailure as Record<string, unknown>;
  assert.equal(failure.frame, probeFrame);
  assert.equal(failure.probe, true);
  assert.equal(failure.outcome, 'unanswered-probes');
});

test('a capture ending right after the first retransmission decides nothing', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 0.5);
  c.data(100.502, 'client', 20);
  c.data(100.702, 'client', 20, { seq: 20 });
  assert.deepEqual(ofDetector(cap.finish(), ID), []);
});

test('sequence wrap and a capture that starts mid-stream', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  // No handshake, and the client's stream crosses 2^32 in the request after the gap.
  const c = cap.flow('10.0.0.1:40000', SERVER, 0xffffffff - 30, 7000);
  exchange(c, 0);
  exchange(c, 20.002);
  c.data(120.004, 'client', 20);
  for (const t of [120.204, 120.604]) c.data(t, 'client', 20, { seq: 40 });
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings.length, 1);
  assert.ok(Math.abs((findings[0].evidence.lowerBoundSeconds as number) - 20) < 1e-6);
  assert.ok(Math.abs((findings[0].evidence.upperBoundSeconds as number) - 100) < 1e-6);
});

test('connections to different servers are bracketed separately', () => {
  const cap = new SyntheticCapture([idleTimeout]);
  const a = cap.flow('10.0.0.1:40000', '10.0.0.2:80');
  const b = cap.flow('10.0.0.1:40001', '10.0.0.3:80');
  a.handshake(0);
  b.handshake(0);
  exchange(a, 0.5);
  exchange(b, 0.5);
  // 10.0.0.2 fails after 100 s; 10.0.0.3 survives 200 s: no contradiction, different paths.
  a.data(100.502, 'client', 20);
  a.rst(100.503, 'server');
  exchange(b, 200.502);
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings.length, 1);
  assert.equal(findings[0].evidence.serverIp, '10.0.0.2');
  assert.equal(findings[0].evidence.lowerBoundSeconds, null);
});
