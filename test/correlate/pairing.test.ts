import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TcpFlag } from '../../src/decode/packet.js';
import { buildFindings } from '../../src/correlate/findings.js';
import { correlatePrints, type PairSection } from '../../src/correlate/correlate.js';
import { Script, Vantage, type View } from './vantage.js';

/** Client host (A) and server host (B), two routers apart, SNAT on the way: client 10.0.0.5 -> 192.0.2.1. */
const CLIENT_SIDE = { ttl: { client: 64, server: 62 }, delay: { client: 0, server: 0.002 } };
const SERVER_SIDE = { ttl: { client: 62, server: 64 }, delay: { client: 0.002, server: 0 } };

function pairOf(pairs: PairSection[], aClientPort: number): PairSection {
  const pair = pairs.find((p) => p.a.client.port === aClientPort);
  assert.ok(pair, `no pair for A's client port ${aClientPort}`);
  return pair;
}

test('pairing: SNAT rewrites ports in another order; conversations pair by sequence numbers, not by tuple or order', () => {
  const a = new Vantage('a.pcap');
  const b = new Vantage('b.pcap');
  // Three connections at nearly the same time; NAT hands out ports in the reverse order.
  const natPorts = [30003, 30002, 30001];
  for (let i = 0; i < 3; i++) {
    const s = new Script(500_000 + 1_000_003 * i, 900_000 + 2_000_017 * i).handshake(0.001 * i).exchanges(0.01 + 0.001 * i, 3).close(0.5);
    a.see({ script: s, client: `10.0.0.5:${40001 + i}`, server: '203.0.113.9:443', ...CLIENT_SIDE });
    b.see({ script: s, client: `192.0.2.1:${natPorts[i]}`, server: '203.0.113.9:443', ...SERVER_SIDE });
  }
  // Only at A: a connection to another server (another route); only at B: one from another client.
  const elsewhere = new Script(77, 88).handshake(0.2).exchanges(0.21, 2, 0.1, 7000).close(0.4);
  a.see({ script: elsewhere, client: '10.0.0.5:40100', server: '198.51.100.3:80', ...CLIENT_SIDE });
  const stranger = new Script(99, 111).handshake(0.2).exchanges(0.21, 2, 0.1, 8000).close(0.4);
  b.see({ script: stranger, client: '192.0.2.77:50000', server: '203.0.113.9:443', ...SERVER_SIDE });

  const A = a.fingerprints();
  const B = b.fingerprints();
  const { report } = correlatePrints(A, B, A.conversations.length);
  assert.equal(report.totals.sameConnection, 3);
  for (let i = 0; i < 3; i++) {
    const pair = pairOf(report.pairs, 40001 + i);
    assert.equal(pair.b.client.port, natPorts[i], `A port ${40001 + i} is B port ${natPorts[i]}`);
    assert.equal(pair.b.client.ip, '192.0.2.1');
    assert.equal(pair.evidence.isnClient, 'equal');
    assert.equal(pair.evidence.isnServer, 'equal');
    assert.equal(pair.path?.changes.nat.client?.downstream, `192.0.2.1:${natPorts[i]}`);
    assert.equal(pair.path?.changes.nat.server, null);
    assert.equal(pair.path?.changes.ipIdPreserved, true);
    assert.equal(pair.path?.complete, true);
    assert.equal(pair.path?.matched.c2s + (pair.path?.matched.s2c ?? 0), pair.a.packets);
  }
  assert.deepEqual(report.unmatched.A.map((u) => `${u.client.ip}:${u.client.port}`), ['10.0.0.5:40100']);
  assert.deepEqual(report.unmatched.B.map((u) => `${u.client.ip}:${u.client.port}`), ['192.0.2.77:50000']);
  assert.match(report.unmatched.A[0].reason, /no conversation of the other capture/);
  assert.equal(buildFindings(correlatePrints(A, B, A.conversations.length)).length, 0, 'a healthy NATed path has nothing to report');
});

test('pairing: a capture that started late (no handshake, client guessed the other way round from ports) still pairs', () => {
  // The client's source port 9000 looks like a service port, so without the SYN the tracker takes
  // it for the server.
  const s = new Script(123_456, 654_321).handshake(0).exchanges(0.01, 6, 0.05).close(0.5);
  const a = new Vantage('a.pcap').see({ script: s, client: '10.0.0.5:9000', server: '203.0.113.9:40000', ...CLIENT_SIDE });
  const late = new Set(s.packets.filter((p) => p.t < 0.1).map((p) => p.n));
  const b = new Vantage('b.pcap').see({ script: s, client: '10.0.0.5:9000', server: '203.0.113.9:40000', ...SERVER_SIDE, missing: late });
  const A = a.fingerprints();
  const B = b.fingerprints();
  const { report } = correlatePrints(A, B, 1);
  assert.equal(report.pairs.length, 1);
  const pair = report.pairs[0];
  assert.equal(pair.flipped, true, 'B took the client for the server');
  assert.equal(pair.evidence.isnClient, 'unknown');
  // The packets before B started are outside its capture, not lost.
  assert.equal(pair.path?.counts.lost, 0);
  assert.equal(pair.path?.counts.outside, late.size);
  assert.equal(pair.path?.matched.c2s + (pair.path?.matched.s2c ?? 0), s.packets.length - late.size);
});

test('pairing: loss between the points, a capture that missed a packet, and a forged RST are told apart', () => {
  const a = new Vantage('client.pcap');
  const b = new Vantage('server.pcap');
  // Connection 1: a client segment lost on the path, retransmitted 200 ms later.
  const s1 = new Script(1_000, 2_000).handshake(0).exchanges(0.01, 2);
  const lost = s1.data(0.3, true, 200, 4242);
  s1.resend(0.5, lost);
  s1.ack(0.502, false);
  s1.close(0.6);
  // Connection 2: the server capture missed a client segment that the server acknowledged.
  const s2 = new Script(3_000, 4_000).handshake(0.05).exchanges(0.06, 2);
  const missed = s2.data(0.3, true, 150, 777);
  s2.ack(0.301, false);
  s2.close(0.6);
  // Connection 3: a router drops the request and forges the server's RST (arrives with TTL 63
  // where the server's packets arrive with 62: one router less); the server never sent it.
  const s3 = new Script(5_000, 6_000).handshake(0.1).exchanges(0.11, 2);
  const request = s3.data(0.4, true, 17, 31337);
  const forged = s3.rst(0.40004, false, { ttl: 63, ipId: 0 });
  s3.fin(1.5, false, request.seq); // the server never got the request: its FIN does not ACK it
  const views: [Script, string, Set<number>, Set<number>][] = [
    [s1, '10.0.0.5:40001', new Set(), new Set([lost.n])],
    [s2, '10.0.0.5:40002', new Set(), new Set([missed.n])],
    [s3, '10.0.0.5:40003', new Set(), new Set([request.n, forged.n])],
  ];
  for (const [script, client, missingA, missingB] of views) {
    a.see({ script, client, server: '203.0.113.9:443', ...CLIENT_SIDE, missing: missingA });
    b.see({ script, client, server: '203.0.113.9:443', ...SERVER_SIDE, missing: missingB });
  }
  const A = a.fingerprints();
  const B = b.fingerprints();
  const correlation = correlatePrints(A, B, A.conversations.length);
  const { report } = correlation;

  const p1 = pairOf(report.pairs, 40001).path;
  assert.equal(p1?.counts.lost, 1);
  const u1 = p1?.unmatched.find((u) => u.kind === 'lost');
  assert.equal(u1?.capture, 'A');
  assert.equal(u1?.len, 200);
  assert.equal(u1?.recovered, true, 'the retransmission arrived');
  assert.equal(u1?.time, lost.t, 'the original is the lost one, not its retransmission (IP IDs tell them apart)');

  const p2 = pairOf(report.pairs, 40002).path;
  assert.equal(p2?.counts.lost, 0);
  assert.equal(p2?.counts['not-captured'], 1, 'the server ACKed it: the capture missed it, the network did not');

  const p3 = pairOf(report.pairs, 40003).path;
  assert.equal(p3?.counts.lost, 1);
  assert.equal(p3?.counts.appeared, 1);
  assert.equal(p3?.injected.length, 1);
  const inj = p3?.injected[0];
  assert.equal(inj?.claimedSender, 'server');
  assert.equal(inj?.rst.ttl, 63);
  assert.equal(inj?.senderTtl, 62);
  assert.equal(inj?.senderTtlUpstream, 64);
  assert.equal(inj?.hopsBetweenPoints, 2);
  assert.equal(inj?.forgerHopsFromArrival, 1, 'TTL 63 of 64: one router after the forger, so the forger is router 2 from the client');
  assert.equal(inj?.precededByLoss?.len, 17);
  assert.equal(inj?.senderCarriedOn?.flags, '[F.]');
  assert.equal(inj?.seqInWindow, true);

  const findings = buildFindings(correlation);
  const losses = findings.filter((f) => f.detector === 'path-loss');
  assert.equal(losses.length, 2, 'connections 1 and 3; not the capture miss of connection 2');
  assert.equal(losses.find((f) => f.evidence.unrecovered === 0)?.severity, 'warning');
  assert.equal(losses.find((f) => f.evidence.unrecovered === 1)?.severity, 'critical');
  const rsts = findings.filter((f) => f.detector === 'injected-rst');
  assert.equal(rsts.length, 1);
  assert.equal(rsts[0].severity, 'critical');
  assert.equal(rsts[0].evidence.forgerRouterFromArrival, 2);
});

test('pairing: MSS clamped and timestamps stripped on the way are reported once for every connection that shows them', () => {
  const a = new Vantage('client.pcap');
  const b = new Vantage('server.pcap');
  for (let i = 0; i < 2; i++) {
    const s = new Script(10_000 * (i + 1), 20_000 * (i + 1), true).handshake(0.1 * i).exchanges(0.1 * i + 0.01, 2).close(0.1 * i + 0.05);
    const tuple = { script: s, client: `10.0.0.5:${40001 + i}`, server: '203.0.113.9:443' };
    a.see({ ...tuple, ...CLIENT_SIDE, mss: { client: 1460, server: 1380 } });
    b.see({ ...tuple, ...SERVER_SIDE, mss: { client: 1380, server: 1460 }, timestampsStripped: 'client' });
  }
  const A = a.fingerprints();
  const correlation = correlatePrints(A, b.fingerprints(), A.conversations.length);
  const changes = buildFindings(correlation).filter((f) => f.detector === 'in-flight-change');
  assert.equal(changes.length, 1);
  const f = changes[0];
  assert.equal(f.severity, 'warning', 'timestamps stripped');
  assert.equal(f.evidence.connections, 2);
  const options = f.evidence.options as { side: string; option: string; upstream: unknown; downstream: unknown }[];
  assert.deepEqual(options.find((o) => o.side === 'client' && o.option === 'mss'), { side: 'client', option: 'mss', upstream: 1460, downstream: 1380 });
  assert.deepEqual(options.find((o) => o.side === 'server' && o.option === 'mss'), { side: 'server', option: 'mss', upstream: 1460, downstream: 1380 });
  assert.deepEqual(options.find((o) => o.option === 'timestamps'), { side: 'client', option: 'timestamps', upstream: true, downstream: false });
});

/**
 * A proxy: front leg client -> proxy, back leg proxy -> backend, each with its own sequence
 * numbers; the proxy forwards every client message 1 ms later and every answer 1 ms later.
 */
function proxied(front: Script, back: Script, t: number, messages: number, hashBase: number, answered: number): void {
  for (let i = 0; i < messages; i++) {
    const at = t + i * 0.2;
    const hash = hashBase + i;
    front.data(at, true, 40 + i, hash);
    front.ack(at + 0.0001, false);
    back.data(at + 0.001, true, 40 + i, hash);
    if (i < answered) {
      back.ack(at + 0.002, false);
      back.data(at + 0.003, false, 10, hash + 1000);
      back.ack(at + 0.0031, true);
      front.data(at + 0.004, false, 10, hash + 1000);
      front.ack(at + 0.0041, true);
    }
  }
}

test('pairing: proxy legs pair by payload; bytes the proxy ACKed and never delivered are a blackhole', () => {
  const frontCap = new Vantage('front.pcap');
  const backCap = new Vantage('back.pcap');
  // Two client connections with identical messages, 3 s apart; the second one's backend vanishes
  // after 2 answered messages: 3 more messages are ACKed by the proxy, 2 forwarded, none acknowledged.
  const f1 = new Script(11_000, 12_000).handshake(0);
  const b1 = new Script(81_000, 82_000).handshake(0.0005);
  proxied(f1, b1, 0.01, 4, 500, 4);
  f1.close(1.5);
  b1.close(1.5005);
  const f2 = new Script(21_000, 22_000).handshake(3);
  const b2 = new Script(91_000, 92_000).handshake(3.0005);
  proxied(f2, b2, 3.01, 5, 500, 2);
  // The back leg: the proxy's 2 forwarded messages (42+43 bytes) unacknowledged and retransmitted;
  // the fifth message (44 bytes) never leaves the proxy.
  const unacked = b2.packets.filter((p) => p.fromClient && p.len > 0).slice(2);
  const neverSent = unacked[2];
  b2.packets.splice(b2.packets.indexOf(neverSent), 1);
  b2.resend(4.5, unacked[0]);
  b2.rst(8, true);
  f2.fin(8.001, false);
  const frontSide = { ttl: { client: 64, server: 64 }, delay: { client: 0, server: 0 } };
  frontCap.see({ script: f1, client: '10.0.0.5:40001', server: '10.0.0.1:80', ...frontSide });
  frontCap.see({ script: f2, client: '10.0.0.6:40002', server: '10.0.0.1:80', ...frontSide });
  backCap.see({ script: b1, client: '10.1.0.1:50001', server: '10.1.0.9:8080', ...frontSide });
  backCap.see({ script: b2, client: '10.1.0.1:50002', server: '10.1.0.9:8080', ...frontSide });

  const A = frontCap.fingerprints();
  const correlation = correlatePrints(A, backCap.fingerprints(), A.conversations.length);
  const { report } = correlation;
  assert.equal(report.totals.proxied, 2);
  assert.equal(report.totals.sameConnection, 0);
  // Identical payloads, but timing pairs each front leg with its own back leg.
  assert.equal(pairOf(report.pairs, 40001).b.client.port, 50001);
  assert.equal(pairOf(report.pairs, 40002).b.client.port, 50002);
  const x = pairOf(report.pairs, 40002).proxy;
  assert.equal(x?.front, 'A');
  const bytes = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => 40 + from + i).reduce((n, v) => n + v, 0);
  assert.equal(x?.streams.c2s.sent, bytes(0, 5));
  assert.equal(x?.streams.c2s.ackedByProxy, bytes(0, 5));
  assert.equal(x?.streams.c2s.forwarded, bytes(0, 4));
  assert.equal(x?.streams.c2s.delivered, bytes(0, 2));
  assert.equal(x?.streams.c2s.undelivered, bytes(2, 5));
  assert.equal(x?.streams.c2s.unforwarded, bytes(4, 5));
  assert.equal(x?.streams.c2s.firstUndelivered?.seq, 1 + bytes(0, 2));
  assert.equal(x?.backFailure?.kind, 'unacknowledged');
  assert.equal(x?.backFailure?.retransmissions, 1);
  assert.equal(x?.frontOutcome?.kind, 'fin');
  assert.equal(x?.requestCount, 2);
  for (const r of x?.requests ?? []) {
    assert.ok(Math.abs(r.frontSeconds - 0.004) < 1e-9);
    assert.ok(Math.abs((r.proxySeconds as number) - 0.002) < 1e-9, 'forwarded 1 ms each way');
  }
  const healthy = pairOf(report.pairs, 40001).proxy;
  assert.equal(healthy?.streams.c2s.undelivered, 0);
  assert.equal(healthy?.backFailure, null);

  const findings = buildFindings(correlation);
  const holes = findings.filter((f) => f.detector === 'blackhole');
  assert.equal(holes.length, 1);
  assert.equal(holes[0].evidence.undelivered, bytes(2, 5));
  assert.equal(holes[0].evidence.unforwarded, bytes(4, 5));
  const failure = findings.filter((f) => f.detector === 'unpropagated-failure');
  assert.equal(failure.length, 1);
  assert.equal(failure[0].evidence.frontOutcome, 'fin');
});

test('pairing: a proxied pair where no payload crossed pairs by start time alone, when unambiguous', () => {
  const frontCap = new Vantage('front.pcap');
  const backCap = new Vantage('back.pcap');
  const f = new Script(1, 2).handshake(0);
  f.data(0.01, true, 30, 1);
  f.ack(0.0101, false);
  const b = new Script(3, 4);
  // The backend never answers the proxy's SYN; the proxy resets the client 3 s later.
  for (const t of [0.0005, 1.0005, 3.0005]) b.packets.push({ n: b.packets.length, t, fromClient: true, flags: TcpFlag.SYN, seq: 3, ack: 0, len: 0, hash: 0, ipId: 0, ts: false, window: 65535 });
  f.rst(3.01, false);
  const side: Omit<View, 'script' | 'client' | 'server'> = { ttl: { client: 64, server: 64 }, delay: { client: 0, server: 0 } };
  frontCap.see({ script: f, client: '10.0.0.5:40001', server: '10.0.0.1:80', ...side });
  backCap.see({ script: b, client: '10.1.0.1:50001', server: '10.1.0.9:8080', ...side });
  const A = frontCap.fingerprints();
  const { report } = correlatePrints(A, backCap.fingerprints(), 1);
  assert.equal(report.pairs.length, 1);
  assert.equal(report.pairs[0].evidence.timingOnly, true);
  assert.equal(report.pairs[0].proxy?.backFailure?.kind, 'connect-failed');
  assert.equal(report.pairs[0].proxy?.frontOutcome?.kind, 'reset', 'the proxy did tell the client');
});

test('pairing: packets past one capture\'s recording cap are not counted as lost or injected', () => {
  const s = new Script(42_000, 43_000).handshake(0).exchanges(0.01, 10, 0.05).close(0.6);
  const a = new Vantage('a.pcap').see({ script: s, client: '10.0.0.5:40001', server: '203.0.113.9:443', ...CLIENT_SIDE });
  const b = new Vantage('b.pcap').see({ script: s, client: '10.0.0.5:40001', server: '203.0.113.9:443', ...SERVER_SIDE });
  const A = a.fingerprints({ maxPacketsPerConversation: 12 });
  assert.equal(A.conversations[0].packets.length, 12);
  assert.equal(A.packetsNotRecorded, s.packets.length - 12);
  const { report } = correlatePrints(A, b.fingerprints(), 1);
  const path = report.pairs[0].path;
  assert.equal(path!.matched.c2s + path!.matched.s2c, 12);
  assert.equal(path?.counts.lost, 0);
  assert.equal(path?.counts.appeared, 0);
  assert.equal(path?.counts.outside, s.packets.length - 12);
});

test('pairing: a back leg reset after the exchange is over, or after the client closed, is no failure to pass on', () => {
  const frontCap = new Vantage('front.pcap');
  const backCap = new Vantage('back.pcap');
  const side = { ttl: { client: 64, server: 64 }, delay: { client: 0, server: 0 } };
  // 1: the backend answers, then resets its connection (SO_LINGER 0); the proxy closes the client with a FIN.
  const f1 = new Script(11_000, 12_000).handshake(0);
  const b1 = new Script(81_000, 82_000).handshake(0.0005);
  proxied(f1, b1, 0.01, 2, 600, 2);
  b1.rst(0.5, false);
  f1.fin(0.501, false);
  // 2: the client sends a request and gives up; the proxy passes that on by resetting the back leg.
  const f2 = new Script(21_000, 22_000).handshake(2);
  const b2 = new Script(91_000, 92_000).handshake(2.0005);
  proxied(f2, b2, 2.01, 1, 700, 1);
  f2.data(2.5, true, 70, 799);
  f2.ack(2.5001, false);
  b2.data(2.501, true, 70, 799);
  b2.ack(2.502, false);
  f2.fin(3.5, true);
  b2.rst(3.501, true);
  frontCap.see({ script: f1, client: '10.0.0.5:40001', server: '10.0.0.1:80', ...side });
  frontCap.see({ script: f2, client: '10.0.0.6:40002', server: '10.0.0.1:80', ...side });
  backCap.see({ script: b1, client: '10.1.0.1:50001', server: '10.1.0.9:8080', ...side });
  backCap.see({ script: b2, client: '10.1.0.1:50002', server: '10.1.0.9:8080', ...side });
  const A = frontCap.fingerprints();
  const correlation = correlatePrints(A, backCap.fingerprints(), A.conversations.length);
  assert.equal(correlation.report.totals.proxied, 2);
  assert.ok(correlation.report.pairs.every((p) => p.proxy?.backFailure === null));
  assert.deepEqual(buildFindings(correlation), []);
});
