import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { idleTimeout } from '../../src/detect/detectors/idle-timeout.js';
import { keepalive } from '../../src/detect/detectors/keepalive.js';
import type { Finding } from '../../src/detect/finding.js';
import { MIDDLEBOX_IDLE_TIMEOUTS } from '../../src/detect/knowledge.js';
import { endpoint, ofDetector, skipUnlessCaptures } from '../helpers/lab.js';
import { capture, CORPUS_DIR, corpusRows, facts } from '../helpers/paths.js';
import { SyntheticCapture, type SyntheticFlow, analyzeAtSnaplen, SNAPLEN_VARIANTS, snaplenLabel } from '../helpers/synthetic.js';

/**
 * keepalive against idle-keepalive-ok (expected values from its tshark facts), its comparison with
 * the idle-timeout bracket, negative controls, the corpus, and hand-built edge cases.
 */

const ID = 'keepalive';
const EPS = 1e-5;

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

interface KeepaliveFacts {
  first_frame_epoch: number;
  keepalive: {
    client: string;
    server: string;
    probe_count: number;
    probes: { frame: number; time: number }[];
    probe_acks: { frame: number }[];
    first_probe_after_last_data: number;
    intervals: number[];
  };
}

for (const snaplen of SNAPLEN_VARIANTS) test(`idle-keepalive-ok: the client's probes, as tshark measured them${snaplenLabel(snaplen)}`, skipUnlessCaptures('idle-keepalive-ok.pcap'), async () => {
  const f = facts<KeepaliveFacts>('idle-keepalive-ok');
  const { result, errors } = await analyzeAtSnaplen(capture('idle-keepalive-ok.pcap'), snaplen);
  assert.deepEqual(errors, []);
  const findings = ofDetector(result.findings, ID);
  assert.equal(findings.length, 1);
  const k = findings[0];
  const ka = f.keepalive;
  assert.equal(k.severity, 'info');
  assert.deepEqual(k.client, endpoint(ka.client));
  assert.deepEqual(k.server, endpoint(ka.server));
  const e = k.evidence;
  assert.equal(e.sender, 'client');
  assert.equal(e.conversations, 1);
  assert.equal(e.probes, ka.probe_count);
  assert.equal(e.answeredProbes, ka.probe_acks.length);
  assert.equal(e.unansweredProbes, ka.probe_count - ka.probe_acks.length);
  assert.equal(e.firstProbeFrame, ka.probes[0].frame);
  assert.ok(Math.abs((e.firstProbeTime as number) - (f.first_frame_epoch + ka.probes[0].time)) < EPS);
  assert.ok(Math.abs((e.medianIntervalSeconds as number) - medianOf(ka.intervals)) < EPS);
  assert.ok(Math.abs((e.medianAfterDataSeconds as number) - ka.first_probe_after_last_data) < EPS);
  // Nothing failed in this capture: there is no bracket to compare with.
  assert.equal(e.intervalVsIdleTimeout, 'unknown');
  assert.deepEqual(result.findings.filter((x) => x.severity !== 'info'), []);
});

test('with the storm capture from the same lab, the probe period is compared with the bracket', skipUnlessCaptures('idle-keepalive-ok.pcap', 'idle-timeout-storm.pcap'), async () => {
  const names = ['idle-timeout-storm', 'idle-keepalive-ok'];
  names.sort((a, b) => facts<KeepaliveFacts>(a).first_frame_epoch - facts<KeepaliveFacts>(b).first_frame_epoch);
  const { result } = await analyzeFiles(names.map((n) => capture(`${n}.pcap`)), { merge: true });
  const k = ofDetector(result.findings, ID);
  assert.equal(k.length, 1);
  const bracket = k[0].evidence.idleTimeoutBracket as { low: number; high: number };
  const timeout = result.findings.find((x) => x.detector === 'idle-timeout');
  assert.ok(timeout, 'idle-timeout found the bracket');
  // The same bookkeeping gives the same bracket in both detectors.
  assert.equal(bracket.low, timeout.evidence.lowerBoundSeconds);
  assert.equal(bracket.high, timeout.evidence.upperBoundSeconds);
  // Probes every ~2 s against a survived 3 s gap: often enough (which is why that capture is fine).
  const ka = facts<KeepaliveFacts>('idle-keepalive-ok').keepalive;
  assert.ok(Math.max(...ka.intervals) <= bracket.low);
  assert.equal(k[0].evidence.intervalVsIdleTimeout, 'shorter');
});

test('zero-window-stall: persist probes are not keep-alives', skipUnlessCaptures('zero-window-stall.pcap'), async () => {
  const { result } = await analyzeFiles([capture('zero-window-stall.pcap')]);
  assert.deepEqual(ofDetector(result.findings, ID), []);
});

for (const name of ['healthy-mix', 'idle-timeout-storm', 'syn-unanswered', 'timewait-collision', 'keepalive-race', 'lb-blackhole-front',
  'lb-blackhole-back', 'conn-churn', 'forged-rst-client', 'forged-rst-server', 'nat-path-client', 'nat-path-server']) {
  test(`negative control ${name}: no keep-alive finding`, skipUnlessCaptures(`${name}.pcap`), async () => {
    const { result } = await analyzeFiles([capture(`${name}.pcap`)]);
    assert.deepEqual(ofDetector(result.findings, ID).map((x) => x.title), []);
  });
}

/**
 * The public corpus. docker-http-upgrade has real keep-alives: the Docker daemon and the Docker CLI
 * are Go programs, and Go's net.Dialer/Listener enable TCP keep-alive every 15 s; both sides probe,
 * the probe count equals tshark's. tshark also counts 4 "keep-alives" in vlan-collisions: copies of
 * ordinary ACKs from a capture that holds every packet three times (one per VLAN), right after data;
 * and 23 in echo-connections: one-byte echo payloads. Neither is a keep-alive.
 */
const CORPUS_EXPECTED: Record<string, (findings: Finding[], row: { keep_alive: number }) => void> = {
  'zeek/testing/btest/Traces/http/docker-http-upgrade.pcap': (findings, row) => {
    assert.deepEqual(findings.map((x) => x.evidence.sender).sort(), ['client', 'server']);
    assert.equal(findings.reduce((n, x) => n + (x.evidence.probes as number), 0), row.keep_alive);
    for (const x of findings) {
      assert.equal(x.severity, 'info');
      // Go's default keep-alive period (15 s), within a second.
      assert.ok(Math.abs((x.evidence.periodSeconds as number) - 15) < 1, `${x.evidence.sender} period`);
    }
  },
};

for (const row of corpusRows()) {
  test(`corpus ${row.path}: keep-alive findings are justified`, async () => {
    const { result } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    const check = CORPUS_EXPECTED[row.path];
    if (check) check(ofDetector(result.findings, ID), row);
    else assert.deepEqual(ofDetector(result.findings, ID).map((x) => x.title), []);
  });
}

// ---- hand-built edge cases ------------------------------------------------------------------------

const SERVER = '10.0.0.2:6379';

function exchange(c: SyntheticFlow, t: number): void {
  c.data(t, 'client', 20);
  c.data(t + 0.001, 'server', 10);
  c.ack(t + 0.002, 'client');
}

test('answered and unanswered probes, interval and time after data', () => {
  const cap = new SyntheticCapture([keepalive]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 1);
  // Answered probes every 60 s of silence, then the peer goes away: probes every 10 s unanswered.
  for (const t of [61.002, 121.003]) {
    c.probe(t, 'client');
    c.ack(t + 0.001, 'server');
  }
  for (const t of [181.004, 191.004, 201.004]) c.probe(t, 'client');
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings.length, 1);
  const e = findings[0].evidence;
  assert.equal(e.probes, 5);
  assert.equal(e.answeredProbes, 2);
  assert.equal(e.unansweredProbes, 3);
  // The last data is the server's answer at 1.001: the first probe comes 60.001 s later.
  assert.ok(Math.abs((e.medianAfterDataSeconds as number) - 60.001) < 1e-6);
  // Intervals 60.001, 60.001, 10, 10: median 35.0005; the period is what followed data or answered
  // probes: 60.001 three times; the retry interval what followed unanswered ones: 10, 10.
  assert.ok(Math.abs((e.medianIntervalSeconds as number) - 35.0005) < 1e-6);
  assert.ok(Math.abs((e.periodSeconds as number) - 60.001) < 1e-6);
  assert.ok(Math.abs((e.retryIntervalSeconds as number) - 10) < 1e-6);
});

test('probe copies (duplicating capture) and keep-alive-shaped ACKs right after data are not probes', () => {
  const cap = new SyntheticCapture([keepalive]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 1);
  // A copy of an old ACK, shaped like a keep-alive, 1 ms after the data: not a probe.
  c.probe(1.003, 'client');
  // One real probe, captured three times.
  c.probe(61.002, 'client');
  c.probe(61.002, 'client');
  c.probe(61.05, 'client');
  c.ack(61.06, 'server');
  const findings = ofDetector(cap.finish(), ID);
  assert.equal(findings.length, 1);
  assert.equal(findings[0].evidence.probes, 1);
});

test('a probe period longer than the idle timeout seen in the same capture is called out', () => {
  const cap = new SyntheticCapture([idleTimeout, keepalive]);
  // Connection A: survives 30 s, fails after 100 s (RST from the balancer).
  const a = cap.flow('10.0.0.1:40000', SERVER);
  a.handshake(0);
  exchange(a, 0.5);
  exchange(a, 30.502);
  // Connection B to the same server address keeps alive with probes every 120 s.
  const b = cap.flow('10.0.0.1:40001', SERVER);
  b.handshake(31);
  exchange(b, 31.5);
  a.data(130.504, 'client', 20);
  a.rst(130.505, 'server');
  // B's first probe comes after 120 s of silence: the balancer has forgotten B too, no answer.
  for (const t of [151.502, 161.502, 171.502]) b.probe(t, 'client');
  const findings = cap.finish();
  const k = ofDetector(findings, ID);
  assert.equal(k.length, 1);
  assert.deepEqual(k[0].evidence.idleTimeoutBracket, { low: 30, high: 100 });
  // B's last data is the server's answer at 31.501.
  assert.ok(Math.abs((k[0].evidence.periodSeconds as number) - 120.001) < 1e-6);
  assert.ok(Math.abs((k[0].evidence.retryIntervalSeconds as number) - 10) < 1e-6);
  assert.equal(k[0].evidence.unansweredProbes, 3);
  assert.equal(k[0].evidence.intervalVsIdleTimeout, 'longer');
  assert.match(k[0].explanation, /too rarely/);
});

test('the Linux default (7200 s) is longer than every L4 default that probes refresh', () => {
  const cap = new SyntheticCapture([keepalive]);
  const c = cap.flow('10.0.0.1:40000', SERVER);
  c.handshake(0);
  exchange(c, 1);
  for (const t of [7201.002, 14401.003]) {
    c.probe(t, 'client');
    c.ack(t + 0.001, 'server');
  }
  const k = ofDetector(cap.finish(), ID)[0];
  const expected = MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.refreshedByKeepalive && d.seconds < 7200).map((d) => d.name);
  assert.deepEqual(k.evidence.longerThanKnownDefaults, expected);
  assert.ok(expected.length > 0);
});

test('server-side probes over a sequence wrap, conversation joined mid-stream', () => {
  const cap = new SyntheticCapture([keepalive]);
  const c = cap.flow('10.0.0.1:40000', SERVER, 5000, 0xffffffff - 5);
  // No handshake; the server's 10-byte answer crosses 2^32, then the server probes at snd.una-1.
  exchange(c, 0);
  c.probe(20.002, 'server');
  c.ack(20.003, 'client');
  const k = ofDetector(cap.finish(), ID);
  assert.equal(k.length, 1);
  assert.equal(k[0].evidence.sender, 'server');
  assert.equal(k[0].evidence.answeredProbes, 1);
});
