import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { projectLinuxGiveUp, retransmitStorm } from '../../src/detect/detectors/retransmit-storm.js';
import { endpoint, ofDetector, skipUnlessCaptures } from '../helpers/lab.js';
import { capture, CORPUS_DIR, corpusRows, facts } from '../helpers/paths.js';
import { SyntheticCapture, analyzeAtSnaplen, SNAPLEN_VARIANTS, snaplenLabel } from '../helpers/synthetic.js';

/**
 * retransmit-storm against the lab capture idle-timeout-storm (expected values from its facts, i.e.
 * tshark), negative controls, the public corpus, and hand-built edge cases.
 */

const ID = 'retransmit-storm';
const EPS = 1e-5;

interface FrameRef { frame: number; time: number; epoch: number }
interface StormFacts {
  storm: {
    client: string;
    server: string;
    seq: number;
    original: FrameRef;
    idle_gap_before: number;
    retransmissions: FrameRef[];
    retransmission_count: number;
    intervals: number[];
    last_retransmission_after_original: number;
    server_heard_after_original: boolean;
  };
  reconnect: { client: string; syn: { frame: number }; after_original: number; after_last_retransmission: number };
}

for (const snaplen of SNAPLEN_VARIANTS) test(`idle-timeout-storm: the lost request's storm, as tshark measured it${snaplenLabel(snaplen)}`, skipUnlessCaptures('idle-timeout-storm.pcap'), async () => {
  const f = facts<StormFacts>('idle-timeout-storm');
  const { result, errors } = await analyzeAtSnaplen(capture('idle-timeout-storm.pcap'), snaplen);
  assert.deepEqual(errors, []);
  const findings = ofDetector(result.findings, ID);
  assert.equal(findings.length, 1, 'one storm: the reconnect is clean');
  const storm = findings[0];
  const s = f.storm;
  assert.deepEqual(storm.client, endpoint(s.client));
  assert.deepEqual(storm.server, endpoint(s.server));
  // Unrecovered, and more than criticalRetransmits (5) re-sends.
  assert.ok(s.retransmission_count >= 5);
  assert.equal(storm.severity, 'critical');
  const e = storm.evidence;
  assert.equal(e.direction, 'client');
  assert.equal(e.seq, s.seq, 'relative sequence number as tshark shows it');
  assert.equal(e.originalFrame, s.original.frame);
  assert.equal(e.retransmissions, s.retransmission_count);
  assert.deepEqual(e.frames, s.retransmissions.map((r) => r.frame));
  (e.times as number[]).forEach((t, i) => assert.ok(Math.abs(t - s.retransmissions[i].epoch) < EPS, `time ${i}`));
  (e.intervalsSeconds as number[]).forEach((t, i) => assert.ok(Math.abs(t - s.intervals[i]) < EPS, `interval ${i}`));
  assert.ok(Math.abs((e.idleBeforeSeconds as number) - s.idle_gap_before) < EPS);
  assert.ok(Math.abs((e.coveredSeconds as number) - s.last_retransmission_after_original) < EPS);
  assert.equal(e.peerHeardAfter, s.server_heard_after_original);
  assert.equal(e.recovered, false);
  // The first re-send is a tail-loss probe: its interval is about the same as the next one, where an
  // RTO backoff would double it; the RTO doubling starts at the second interval.
  const ratios = s.intervals.slice(1).map((x, i) => x / s.intervals[i]);
  assert.ok(Math.abs(ratios[0] - 1) < 0.25, 'fixture: first two intervals alike (tail-loss probe, then RTO)');
  assert.equal(e.tailLossProbe, true);
  assert.ok(Math.abs((e.initialRtoSeconds as number) - s.intervals[1]) < EPS);
  const later = ratios.slice(1).sort((a, b) => a - b);
  const mid = later.length >> 1;
  const expectedBackoff = later.length % 2 === 1 ? later[mid] : (later[mid - 1] + later[mid]) / 2;
  assert.ok(Math.abs((e.backoffFactor as number) - expectedBackoff) < 1e-3);
  // The client kernel gave up (tcp_retries2 = 5 in the lab) and the application reconnected.
  const reconnectConv = result.conversations.find((c) => `${c.client.ip}:${c.client.port}` === f.reconnect.client);
  assert.ok(reconnectConv);
  const reconnect = e.reconnect as Record<string, number>;
  assert.equal(reconnect.conversation, reconnectConv.id);
  assert.equal(reconnect.frame, f.reconnect.syn.frame);
  assert.ok(Math.abs(reconnect.afterFirstSendSeconds - f.reconnect.after_original) < EPS);
  assert.ok(Math.abs(reconnect.afterLastRetransmissionSeconds - f.reconnect.after_last_retransmission) < EPS);
  assert.equal(e.senderGaveUp, true);
  assert.doesNotMatch(storm.explanation, /that is how long the application waits/, 'no 15-minute claim: it gave up');
});

interface BlackholeBackFacts {
  proxy: string;
  backend: string;
  backend_acked_up_to_seq: number;
  backend_heard_after_break: boolean;
  unacked_originals: { frame: number; time: number; seq: number }[];
  retransmissions: { frame: number; time: number; seq: number }[];
  retransmission_intervals: number[];
  proxy_abort: { frame: number; time: number };
}

for (const snaplen of SNAPLEN_VARIANTS) test(`lb-blackhole-back: a flight's head re-sent after a tail-loss probe, until the proxy resets${snaplenLabel(snaplen)}`, skipUnlessCaptures('lb-blackhole-back.pcap'), async () => {
  const f = facts<BlackholeBackFacts>('lb-blackhole-back');
  const { result } = await analyzeAtSnaplen(capture('lb-blackhole-back.pcap'), snaplen);
  const findings = ofDetector(result.findings, ID);
  assert.equal(findings.length, 1);
  const storm = findings[0];
  assert.deepEqual(storm.client, endpoint(f.proxy));
  assert.deepEqual(storm.server, endpoint(f.backend));
  // Never heard from the backend again: critical although fewer than 5 re-sends.
  assert.equal(f.backend_heard_after_break, false);
  assert.equal(storm.evidence.peerHeardAfter, false);
  assert.equal(storm.severity, 'critical');
  // The stalled data is the first byte the backend never acknowledged; its original is the first of
  // three segments sent after the break, not the last one.
  const head = f.unacked_originals.find((o) => o.seq === f.backend_acked_up_to_seq);
  assert.ok(head);
  assert.equal(storm.evidence.seq, head.seq);
  assert.equal(storm.evidence.originalFrame, head.frame);
  const own = f.retransmissions.filter((r) => r.seq === head.seq);
  assert.deepEqual(storm.evidence.frames, own.map((r) => r.frame));
  // The first retransmission in the capture re-sends the last segment (a tail-loss probe); the RTO
  // runs from it, as tshark's interval list shows.
  const probe = f.retransmissions[0];
  assert.notEqual(probe.seq, head.seq);
  assert.equal(storm.evidence.tailLossProbe, true);
  assert.ok(Math.abs((storm.evidence.initialRtoSeconds as number) - f.retransmission_intervals[0]) < EPS);
  // HAProxy gave up with an RST: that is when the application saw the failure.
  assert.equal(storm.evidence.senderGaveUp, true);
  assert.ok(Math.abs((storm.evidence.gaveUpAfterSeconds as number) - (f.proxy_abort.time - head.time)) < EPS);
  assert.match(storm.explanation, new RegExp(`frame ${f.proxy_abort.frame}`));
});

for (const name of ['healthy-mix', 'idle-keepalive-ok', 'zero-window-stall', 'syn-unanswered', 'timewait-collision', 'conn-churn']) {
  test(`negative control ${name}: no retransmission storm`, skipUnlessCaptures(`${name}.pcap`), async () => {
    const { result } = await analyzeFiles([capture(`${name}.pcap`)]);
    assert.deepEqual(ofDetector(result.findings, ID).map((x) => x.title), []);
  });
}

/**
 * The public corpus: every finding this detector raises there is listed with the reason it is right.
 * Duplicated captures (ssh-dups, vlan-collisions) and steady re-sends (reassembly's FIN every 80 ms)
 * must raise nothing: they are not backoff.
 */
const CORPUS_EXPECTED: Record<string, { count: number; why: string }> = {};

const rows = corpusRows();
for (const row of rows) {
  test(`corpus ${row.path}: retransmit-storm findings are justified`, async () => {
    const { result } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    const expected = CORPUS_EXPECTED[row.path];
    assert.equal(ofDetector(result.findings, ID).length, expected?.count ?? 0, expected?.why ?? 'no storm in this capture');
  });
}

// ---- hand-built edge cases ------------------------------------------------------------------------

test('projected give-up: the documented 924.6 s from a 200 ms RTO, first firing past it otherwise', () => {
  // RTO 0.2 s doubling (retransmissions at 0.2, 0.6, 1.4 s): Linux's budget is exactly 0.2 * (2^10 - 1)
  // + 6 * 120 = 924.6 s, reached at the 16th firing.
  assert.ok(Math.abs(projectLinuxGiveUp(0, 1.4, 0.8) - 924.6) < 1e-6);
  // An RTO of 1 s: firings at 1, 3, 7, 15, 31, 63, 127 (then +120 each): 247, ..., 847, 967 >= 924.6.
  assert.ok(Math.abs(projectLinuxGiveUp(0, 7, 4) - 967) < 1e-6);
  assert.ok(Number.isNaN(projectLinuxGiveUp(0, 1, 0)));
});

const CLIENT = '10.0.0.1:40000';
const SERVER = '10.0.0.2:6379';

test('storms in both directions keep one finding each (the per-direction key)', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  // Both sides send at once and neither hears the other (ack: 0 acknowledges none of the peer's data).
  c.data(1, 'client', 100, { ack: 0 });
  c.data(1.001, 'server', 100, { ack: 0 });
  for (const t of [1.2, 1.6, 2.4]) c.data(t, 'client', 100, { seq: 0, ack: 0 });
  for (const t of [1.201, 1.601, 2.401]) c.data(t, 'server', 100, { seq: 0, ack: 0 });
  // The server finally receives the client's data: the client's storm is over (recovered) ...
  c.ack(3, 'server', { ack: 100 });
  // ... while the server's own storm goes on.
  for (const t of [4.001, 7.201]) c.data(t, 'server', 100, { seq: 0, ack: 0 });
  const findings = ofDetector(cap.finish(), ID);
  const byDirection = (d: string) => findings.filter((x) => x.evidence.direction === d);
  assert.equal(byDirection('client').length, 1);
  assert.equal(byDirection('client')[0].evidence.recovered, true);
  assert.equal(byDirection('server').length, 1, 'the server storm was reported early and updated, not twice');
  assert.equal(byDirection('server')[0].evidence.retransmissions, 5);
});

test('a tail-loss probe on a fast path is not taken for the initial RTO', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.data(1, 'client', 100);
  // TLP 12 ms after the send, then RTO 200 ms and doubling.
  for (const t of [1.012, 1.212, 1.612, 2.412]) c.data(t, 'client', 100, { seq: 0, ack: 0 });
  const f = ofDetector(cap.finish(), ID)[0];
  assert.equal(f.evidence.tailLossProbe, true);
  assert.ok(Math.abs((f.evidence.initialRtoSeconds as number) - 0.2) < 1e-6);
  assert.ok(Math.abs((f.evidence.backoffFactor as number) - 2) < 1e-6);
});

test('copies of a segment at the same instant (duplicating capture) are not a storm', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.data(1, 'client', 100);
  for (let i = 0; i < 3; i++) c.data(1, 'client', 100, { seq: 0, ack: 0 });
  c.ack(1.0005, 'server');
  assert.deepEqual(ofDetector(cap.finish(), ID), []);
});

test('steady re-sends without backoff are not a storm', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.fin(1, 'server');
  for (const t of [1.08, 1.17, 1.25, 1.33]) c.fin(t, 'server');
  c.close(1.4, 'client');
  assert.deepEqual(ofDetector(cap.finish(), ID), []);
});

test('sequence numbers wrapping past 2^32 inside the stalled segment', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER, 0xffffff00, 5000);
  c.handshake(0);
  c.dataAcked(0.5, 'client', 200);
  // The next segment starts at ISN+201 = 0x1_0000_0009: past the wrap.
  c.data(1, 'client', 100);
  for (const t of [1.2, 1.6, 2.4, 4.0]) c.data(t, 'client', 100, { seq: 200, ack: 0 });
  const f = ofDetector(cap.finish(), ID);
  assert.equal(f.length, 1);
  assert.equal(f[0].evidence.seq, 201, 'relative to the ISN, across the wrap');
  assert.equal(f[0].evidence.retransmissions, 4);
  assert.ok(Math.abs((f[0].evidence.backoffFactor as number) - 2) < 1e-6);
});

test('a capture starting mid-storm does not anchor the backoff on a copy that may be a retransmission', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  // No handshake: the first packet seen is already a re-send, 3.2 s after an earlier one.
  c.data(10, 'client', 100);
  for (const t of [16.4, 29.2, 54.8]) c.data(t, 'client', 100, { seq: 0 });
  const f = ofDetector(cap.finish(), ID)[0];
  assert.equal(f.evidence.retransmissions, 3);
  assert.equal(f.evidence.originalFrame, null);
  assert.equal(f.evidence.initialRtoSeconds, null);
  assert.equal(f.evidence.projectedGiveUpSeconds, null);
  assert.match(f.explanation, /mid-storm/);
});

test('a capture ending mid-storm: reported live, same id at the end, give-up unknown', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.data(1, 'client', 100);
  for (const t of [1.2, 1.6, 2.4]) c.data(t, 'client', 100, { seq: 0, ack: 0 });
  const early = ofDetector(cap.engine.results(), ID);
  assert.equal(early.length, 1, 'reported at minRetransmits, before the end');
  const final = ofDetector(cap.finish(), ID);
  assert.equal(final.length, 1);
  assert.equal(final[0].id, early[0].id);
  assert.equal(final[0].evidence.senderGaveUp, null, 'the capture ended before the next retransmission was due');
  assert.match(final[0].explanation, /gives up at the first retransmission timer/);
});

test('silence long past the next due retransmission while the capture goes on: the sender gave up', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.data(1, 'client', 100);
  for (const t of [1.2, 1.6, 2.4, 4.0]) c.data(t, 'client', 100, { seq: 0, ack: 0 });
  // Another connection (to another server) keeps the capture going for 20 s more.
  const other = cap.flow('10.0.0.1:40001', '10.0.0.3:80');
  other.handshake(5);
  other.dataAcked(24, 'client', 10);
  const f = ofDetector(cap.finish(), ID)[0];
  assert.equal(f.evidence.senderGaveUp, true);
  assert.equal(f.evidence.reconnect, null);
  // Next retransmission was due 3.2 s after the last (4.0 s): 7.2 s, i.e. 6.2 s after the first send.
  assert.ok(Math.abs((f.evidence.gaveUpAfterSeconds as number) - 6.2) < 1e-6);
});

test('a reconnect to the same server after the storm is evidence the application gave up', () => {
  const cap = new SyntheticCapture([retransmitStorm]);
  const c = cap.flow(CLIENT, SERVER);
  c.handshake(0);
  c.data(1, 'client', 100);
  for (const t of [1.2, 1.6, 2.4, 4.0]) c.data(t, 'client', 100, { seq: 0, ack: 0 });
  const frame = cap.nextFrame;
  const again = cap.flow('10.0.0.1:40001', SERVER);
  again.handshake(6);
  again.dataAcked(6.01, 'client', 100);
  const f = ofDetector(cap.finish(), ID)[0];
  const reconnect = f.evidence.reconnect as Record<string, number>;
  assert.equal(reconnect.frame, frame);
  assert.ok(Math.abs(reconnect.afterFirstSendSeconds - 5) < 1e-6);
  assert.ok(Math.abs(reconnect.afterLastRetransmissionSeconds - 2) < 1e-6);
  assert.equal(f.evidence.senderGaveUp, true);
});
