import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { TcpFlag } from '../../src/decode/packet.js';
import { portReuse } from '../../src/detect/detectors/port-reuse.js';
import { timewaitCollision } from '../../src/detect/detectors/timewait-collision.js';
import { ofDetector, serialDistance } from '../helpers/lab.js';
import { CAPTURES_DIR, capture, CORPUS_DIR, corpusRows, facts } from '../helpers/paths.js';
import { SyntheticCapture, type SyntheticFlow } from '../helpers/synthetic.js';

const CLIENT = '10.0.0.1:40000';
const SERVER = '10.0.0.2:80';

/** A finished connection on CLIENT -> SERVER: handshake at t, one exchange, orderly close by `closer`. */
function previousConnection(cap: SyntheticCapture, t: number, closer: 'client' | 'server', isnClient: number): { flow: SyntheticFlow; closeTime: number; finFrames: { client: number; server: number } } {
  const flow = cap.flow(CLIENT, SERVER, isnClient, 7_000_000);
  flow.handshake(t);
  flow.dataAcked(t + 0.01, 'client', 100);
  flow.dataAcked(t + 0.02, 'server', 500);
  const first = cap.nextFrame;
  flow.close(t + 1, closer);
  const frames = closer === 'server' ? { server: first, client: first + 1 } : { client: first, server: first + 1 };
  // close(): FIN at t+1, the peer's FIN 0.5 ms later: the conversation is closed by the second FIN.
  return { flow, closeTime: t + 1.0005, finFrames: frames };
}

test('timewait-collision: Linux client RST + quick SYN retry after the server answers with the old ACK', () => {
  const cap = new SyntheticCapture([timewaitCollision, portReuse]);
  const prev = previousConnection(cap, 0, 'server', 3_000_000_000);
  const oldClientEnd = prev.flow.nextSeqOf('client');
  const oldServerEnd = prev.flow.nextSeqOf('server');
  const newIsn = 2_000_000_000; // 1e9 below the old end in sequence space
  const flow = cap.flow(CLIENT, SERVER, newIsn, 9_000_000);
  const synFrame = cap.nextFrame;
  flow.syn(6);
  const ackFrame = cap.nextFrame;
  flow.raw(6.0005, 'server', TcpFlag.ACK, oldServerEnd, oldClientEnd);
  const rstFrame = cap.nextFrame;
  flow.raw(6.001, 'client', TcpFlag.RST, oldClientEnd, 0);
  const retryFrame = cap.nextFrame;
  flow.syn(6.011);
  const synAckFrame = cap.nextFrame;
  flow.synAck(6.0115);
  flow.ack(6.012, 'client');
  flow.dataAcked(6.02, 'client', 100);
  const findings = cap.finish();

  assert.deepEqual(ofDetector(findings, 'port-reuse'), [], 'a collision is not a clean reuse');
  const [f] = ofDetector(findings, 'timewait-collision');
  assert.ok(f, 'collision reported');
  assert.equal(f.severity, 'warning', 'recovered within 10 ms');
  assert.deepEqual(f.server, { ip: '10.0.0.2', port: 80 });
  assert.equal(f.evidence.collisions, 1);
  assert.equal(f.evidence.failed, 0);
  const [a] = f.evidence.attempts as Record<string, any>[];
  assert.equal(a.conversation, 2);
  assert.equal(a.previousConversation, 1);
  assert.equal(a.client, CLIENT);
  assert.ok(Math.abs(a.previousCloseTime - prev.closeTime) < 1e-6);
  assert.ok(Math.abs(a.gapSeconds - (6 - prev.closeTime)) < 1e-6);
  assert.equal(a.timeWaitHolder, 'server');
  assert.deepEqual(a.previousFinFrames, prev.finFrames);
  assert.equal(a.isn, newIsn);
  assert.equal(a.previousClientNextSeq, oldClientEnd);
  assert.equal(a.isnDistance, serialDistance(newIsn, oldClientEnd));
  assert.equal(a.isnBelowPrevious, true);
  assert.equal(a.staleAckMatchesPrevious, true);
  assert.deepEqual(a.timestamps, { previous: false, syn: false });
  assert.deepEqual(
    (a.packets as Record<string, unknown>[]).map((p) => [p.frame, p.from, p.packet]),
    [
      [synFrame, 'client', 'SYN'],
      [ackFrame, 'server', 'ACK of previous conversation'],
      [rstFrame, 'client', 'RST'],
      [retryFrame, 'client', 'SYN retransmission'],
      [synAckFrame, 'server', 'SYN-ACK'],
    ],
  );
  assert.ok(Math.abs(a.addedDelaySeconds - 0.011) < 1e-6);
  assert.ok(Math.abs(a.connectSeconds - 0.0115) < 1e-6);
  assert.equal(a.outcome, 'established');
  assert.deepEqual(f.conversations, [2]);
});

test('timewait-collision: SNAT-like retry after 1 s that collides again and is given up is critical', () => {
  const cap = new SyntheticCapture([timewaitCollision]);
  const prev = previousConnection(cap, 0, 'server', 3_000_000_000);
  const oldClientEnd = prev.flow.nextSeqOf('client');
  const oldServerEnd = prev.flow.nextSeqOf('server');
  const flow = cap.flow(CLIENT, SERVER, 2_000_000_000, 9_000_000);
  flow.syn(10);
  flow.raw(10.0005, 'server', TcpFlag.ACK, oldServerEnd, oldClientEnd);
  flow.syn(11);
  flow.raw(11.0005, 'server', TcpFlag.ACK, oldServerEnd, oldClientEnd);
  flow.raw(11.001, 'client', TcpFlag.RST, oldClientEnd, 0);
  const [f] = ofDetector(cap.finish(), 'timewait-collision');
  assert.equal(f.severity, 'critical');
  assert.equal(f.evidence.failed, 1);
  const [a] = f.evidence.attempts as Record<string, any>[];
  assert.equal(a.staleAcks, 2);
  assert.equal(a.outcome, 'failed');
  assert.equal(a.connectSeconds, null);
});

test('timewait-collision: sequence numbers across the 2^32 wrap are compared as serial numbers', () => {
  const cap = new SyntheticCapture([timewaitCollision, portReuse]);
  // The old client stream crosses 2^32: it ends at a small number.
  const prev = previousConnection(cap, 0, 'server', 0xffffffc0);
  const oldClientEnd = prev.flow.nextSeqOf('client');
  assert.ok(oldClientEnd < 0x1000, 'the old stream wrapped');
  // Numerically larger, but 0x36 before the old end in sequence space: not acceptable.
  const newIsn = 0xfffffff0;
  const flow = cap.flow(CLIENT, SERVER, newIsn, 9_000_000);
  flow.syn(3);
  flow.raw(3.0005, 'server', TcpFlag.ACK, prev.flow.nextSeqOf('server'), oldClientEnd);
  flow.raw(3.001, 'client', TcpFlag.RST, oldClientEnd, 0);
  flow.syn(3.011);
  flow.synAck(3.0115);
  const [f] = ofDetector(cap.finish(), 'timewait-collision');
  const [a] = f.evidence.attempts as Record<string, any>[];
  assert.equal(a.isnDistance, serialDistance(newIsn, oldClientEnd));
  assert.ok(a.isnDistance < 0);
  assert.equal(a.isnBelowPrevious, true);
});

test('timewait-collision: capture starting after the previous connection, and crafted ACKs', () => {
  const cap = new SyntheticCapture([timewaitCollision]);
  // The old connection is not in the capture: the stale ACK alone shows the collision.
  const flow = cap.flow(CLIENT, SERVER, 123_456, 9);
  flow.syn(0);
  flow.raw(0.0005, 'server', TcpFlag.ACK, 55_555, 99_999_999);
  flow.raw(0.001, 'client', TcpFlag.RST, 99_999_999, 0);
  flow.syn(0.011);
  flow.synAck(0.0115);
  // An "ACK" of exactly the SYN's own sequence number is a crafted/broken answer, not TIME_WAIT.
  const odd = cap.flow('10.0.0.1:40009', SERVER, 0, 0);
  odd.syn(1);
  odd.raw(1.0003, 'server', TcpFlag.ACK, 0, 0);
  const findings = ofDetector(cap.finish(), 'timewait-collision');
  assert.equal(findings.length, 1);
  const [a] = findings[0].evidence.attempts as Record<string, any>[];
  assert.equal(a.client, CLIENT);
  assert.equal(a.previousConversation, null);
  assert.equal(a.isnBelowPrevious, null);
  assert.equal(a.outcome, 'established');
});

test('timewait-collision: many collisions towards one server make one finding listing each', () => {
  const cap = new SyntheticCapture([timewaitCollision]);
  let t = 0;
  for (let i = 0; i < 3; i++) {
    const client = `10.0.0.${i + 1}:40000`;
    const old = cap.flow(client, SERVER, 3_000_000_000, 5);
    old.handshake(t);
    old.close(t + 0.1, 'server');
    const flow = cap.flow(client, SERVER, 10, 6);
    flow.syn(t + 1);
    flow.raw(t + 1.0005, 'server', TcpFlag.ACK, old.nextSeqOf('server'), old.nextSeqOf('client'));
    flow.raw(t + 1.001, 'client', TcpFlag.RST, old.nextSeqOf('client'), 0);
    flow.syn(t + 1.011);
    flow.synAck(t + 1.0115);
    t += 2;
  }
  const findings = ofDetector(cap.finish(), 'timewait-collision');
  assert.equal(findings.length, 1);
  assert.equal(findings[0].evidence.collisions, 3);
  assert.deepEqual((findings[0].evidence.attempts as Record<string, unknown>[]).map((a) => a.client), ['10.0.0.1:40000', '10.0.0.2:40000', '10.0.0.3:40000']);
  assert.equal(findings[0].client, null, 'several clients');
});

interface CollisionFacts {
  client: string;
  old: { first_fin: { frame: number }; time_wait_holder: string; expected_next_client_seq: number };
  new_syn: { frame: number; seq: number; seq_minus_expected: number; since_time_wait_s: number };
  time_wait_ack: { frame: number; ack: number; ack_equals_expected: boolean };
  client_rst: { frame: number };
  retry_syn: { frame: number; after_first_syn_s: number };
  outcome: { synack: { frame: number }; connect_latency_s: number; established: boolean };
}
interface TimeWaitFacts {
  server: string;
  counts: { time_wait_collisions: number };
  collisions: CollisionFacts[];
}

/**
 * Tolerances: frames, sequence numbers and distances are exact; times are rounded to 1 µs in the
 * facts (6 decimals). The gap is measured here from the second FIN (when the tracker closes the old
 * conversation), in the facts from the closer's last ACK (when TIME_WAIT starts): a one-way trip on
 * a veth later, so ours is larger by less than 1 ms.
 */
const TW = 'timewait-collision.pcap';
test('timewait-collision on the lab capture: the four collisions, frame by frame', { skip: existsSync(capture(TW)) ? false : 'capture not generated' }, async () => {
  const f = facts<TimeWaitFacts>('timewait-collision');
  const { result, errors } = await analyzeFiles([capture(TW)]);
  assert.deepEqual(errors, []);
  const found = ofDetector(result.findings, 'timewait-collision');
  assert.equal(found.length, 1, 'one finding for the one server');
  const finding = found[0];
  assert.equal(finding.evidence.server, f.server);
  assert.equal(finding.evidence.collisions, f.counts.time_wait_collisions);
  assert.equal(finding.evidence.failed, 0);
  // Every collision recovered within milliseconds (the Linux client's quick SYN retry): warning.
  assert.ok(f.collisions.every((c) => c.outcome.established && c.outcome.connect_latency_s < 1));
  assert.equal(finding.severity, 'warning');
  const attempts = finding.evidence.attempts as Record<string, any>[];
  assert.deepEqual(attempts.map((a) => a.client).sort(), f.collisions.map((c) => c.client).sort());
  for (const c of f.collisions) {
    const a = attempts.find((x) => x.client === c.client) as Record<string, any>;
    assert.equal(a.timeWaitHolder, c.old.time_wait_holder, c.client);
    assert.equal(a.previousFinFrames.server, c.old.first_fin.frame, c.client);
    assert.equal(a.isn, c.new_syn.seq, c.client);
    assert.equal(a.previousClientNextSeq, c.old.expected_next_client_seq, c.client);
    assert.equal(a.isnDistance, c.new_syn.seq_minus_expected, c.client);
    assert.equal(a.isnBelowPrevious, c.new_syn.seq_minus_expected < 0, c.client);
    assert.equal(a.staleAckMatchesPrevious, c.time_wait_ack.ack_equals_expected, c.client);
    assert.deepEqual(a.timestamps, { previous: false, syn: false }, 'the client has tcp_timestamps=0');
    assert.deepEqual(
      (a.packets as Record<string, unknown>[]).map((p) => [p.packet, p.frame]),
      [
        ['SYN', c.new_syn.frame],
        ['ACK of previous conversation', c.time_wait_ack.frame],
        ['RST', c.client_rst.frame],
        ['SYN retransmission', c.retry_syn.frame],
        ['SYN-ACK', c.outcome.synack.frame],
      ],
      c.client,
    );
    assert.equal((a.packets as Record<string, unknown>[])[1].ack, c.time_wait_ack.ack);
    assert.ok(Math.abs(a.connectSeconds - c.outcome.connect_latency_s) <= 1e-6, `${c.client} connect`);
    assert.ok(Math.abs(a.addedDelaySeconds - c.retry_syn.after_first_syn_s) <= 1e-6, `${c.client} delay`);
    assert.ok(a.gapSeconds >= c.new_syn.since_time_wait_s - 1e-6 && a.gapSeconds - c.new_syn.since_time_wait_s < 0.001, `${c.client} gap`);
    assert.equal(a.outcome, 'established');
  }
});

/** Every other lab capture: no tuple is reused there (fresh ephemeral ports), so nothing at all. */
const others = existsSync(CAPTURES_DIR)
  ? readdirSync(CAPTURES_DIR).filter((n) => /\.pcap(ng)?$/.test(n) && n !== TW)
  : [];
test('timewait-collision and port-reuse stay silent on the other lab captures', { skip: others.length === 0 ? 'no captures' : false }, async () => {
  for (const name of others) {
    const { result } = await analyzeFiles([join(CAPTURES_DIR, name)]);
    const mine = result.findings.filter((x) => x.detector === 'timewait-collision' || x.detector === 'port-reuse');
    assert.deepEqual(mine.map((x) => x.id), [], name);
  }
});

/**
 * The public corpus: tshark counts one reused port (rst-inject-rae.pcap, where an injected RST is
 * followed by the server's SYN-ACK on the same tuple: no new SYN, so no reuse in our sense) and no
 * capture holds a SYN answered by an ACK of an older connection. syn-then-stuff-then-rst.pcap has a
 * bare ACK answering a SYN, but it acknowledges exactly the SYN's own sequence number 0 (a crafted
 * trace), which is not an old connection's sequence space.
 */
const corpus = corpusRows();
test('timewait-collision and port-reuse over the public corpus', { skip: corpus.length === 0 ? 'no ../shared/corpus here' : false }, async () => {
  for (const row of corpus) {
    const path = join(CORPUS_DIR, row.path);
    if (!existsSync(path)) continue;
    const { result } = await analyzeFiles([path]);
    const mine = result.findings.filter((f) => f.detector === 'timewait-collision' || f.detector === 'port-reuse');
    assert.deepEqual(mine.map((f) => f.id), [], row.path);
  }
});
