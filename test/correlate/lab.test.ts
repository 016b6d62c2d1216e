import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { correlateFiles, type CorrelateOutcome, type PairSection } from '../../src/correlate/correlate.js';
import type { Finding } from '../../src/detect/finding.js';
import { capture, facts } from '../helpers/paths.js';
import { SNAPLEN_VARIANTS, snaplenCopy, snaplenLabel } from '../helpers/synthetic.js';

/**
 * The correlation on the lab's two-vantage captures, checked against the facts tshark measured when
 * they were made (fixtures/captures/*.facts.json). Each also runs on snaplen-80 copies, where the
 * payload is cut (no payload hashes): sequence pairing must not care, proxy pairing falls back to
 * lengths and timing.
 */

type Packet = { frame: number; time: number; ttl: number; ip_id: number; seq: number; ack: number; len: number; flags: string[] };

interface ForgedFacts {
  captures: { client: { first_frame_epoch: number }; server: { first_frame_epoch: number } };
  topology: { client: string; server: string; router_hops: number };
  connections: Record<string, {
    client: string;
    server: string;
    frames_at_client: number;
    frames_at_server: number;
    blocked_request_at_client?: { frame: number; time: number; len: number };
    blocked_request_seen_at_server?: boolean;
    forged_rst_at_client?: Packet;
    last_real_server_packet_at_client?: Packet;
    server_ip_ids_seen_by_client?: number[];
    rst_seq_equals_request_ack?: boolean;
    server_idle_close_at_server?: Packet;
  }>;
  forged_rst_count_at_client: number;
  rst_from_server_at_server: number;
  matched_packets: { client_to_server: number; server_to_client: number; one_way_delay_s: { min: number; max: number } };
}

interface NatFacts {
  topology: { router_hops: number };
  mapping: {
    client_side: { client: string; server: string; frames: number; client_ttl: number; server_ttl: number[] };
    server_side: { client: string; server: string; frames: number; client_ttl: number; server_ttl: number[] };
    ip_id_preserved: boolean;
    port_rewritten: boolean;
  }[];
  matched_packets: number;
  one_way_delay_s: { min: number; max: number };
}

const hostPort = (e: { ip: string; port: number }) => `${e.ip}:${e.port}`;

async function correlate(a: string, b: string, snaplen: number): Promise<CorrelateOutcome> {
  const paths = snaplen > 0 ? [snaplenCopy(capture(a), snaplen), snaplenCopy(capture(b), snaplen)] : [capture(a), capture(b)];
  try {
    const outcome = await correlateFiles(paths[0], paths[1]);
    assert.deepEqual(outcome.errors, []);
    assert.ok(outcome.correlation);
    return outcome;
  } finally {
    if (snaplen > 0) for (const path of paths) rmSync(dirname(path), { recursive: true, force: true });
  }
}

function correlationFindings(outcome: CorrelateOutcome, detector: string): Finding[] {
  return outcome.result.findings.filter((f) => f.detector === detector && f.id.startsWith(`${detector}/correlate:`));
}

for (const snaplen of SNAPLEN_VARIANTS) {
  test(`correlate forged-rst: both forged RSTs proven, the forging router named, the dropped requests found${snaplenLabel(snaplen)}`, async () => {
    const f = facts<ForgedFacts>('forged-rst');
    const outcome = await correlate('forged-rst-client.pcap', 'forged-rst-server.pcap', snaplen);
    const c = outcome.correlation!;
    const connections = Object.values(f.connections);
    assert.equal(c.totals.sameConnection, connections.length);
    assert.equal(c.totals.packetsMatched, f.matched_packets.client_to_server + f.matched_packets.server_to_client);
    assert.equal(c.totals.injectedRsts, f.forged_rst_count_at_client);
    assert.deepEqual([c.unmatched.A.length, c.unmatched.B.length], [0, 0]);
    // Both captures use one host clock: the estimate is within the one-way delay of 0, and the
    // estimated one-way delay is within what tshark measured.
    assert.ok(Math.abs(c.clock.offset) <= f.matched_packets.one_way_delay_s.max, `offset ${c.clock.offset}`);
    const owd = c.clock.estimate?.oneWayDelay as number;
    assert.ok(owd >= f.matched_packets.one_way_delay_s.min && owd <= f.matched_packets.one_way_delay_s.max, `one-way delay ${owd}`);

    const rsts = correlationFindings(outcome, 'injected-rst');
    const losses = correlationFindings(outcome, 'path-loss');
    const blocked = connections.filter((x) => x.forged_rst_at_client !== undefined);
    assert.equal(rsts.length, blocked.length);
    assert.equal(losses.length, blocked.length);
    for (const conn of connections) {
      const pair = c.pairs.find((p) => `${hostPort(p.a.client)}` === conn.client) as PairSection;
      assert.ok(pair, `pair for ${conn.client}`);
      assert.equal(hostPort(pair.a.server), conn.server);
      assert.equal(hostPort(pair.b.client), conn.client, 'no NAT on this path');
      assert.equal(pair.path?.clientSide, 'A');
      assert.equal(pair.path?.packets.A, conn.frames_at_client);
      assert.equal(pair.path?.packets.B, conn.frames_at_server);
      assert.deepEqual(pair.path?.changes.hops, { c2s: f.topology.router_hops, s2c: f.topology.router_hops });
      if (conn.forged_rst_at_client === undefined) {
        assert.equal(pair.path?.complete, true, `${conn.client}: healthy, every packet at both ends`);
        assert.equal(pair.path?.matched.c2s + (pair.path?.matched.s2c ?? 0), conn.frames_at_client);
        continue;
      }
      const forged = conn.forged_rst_at_client;
      const request = conn.blocked_request_at_client!;
      const realServer = conn.last_real_server_packet_at_client!;
      const serverClose = conn.server_idle_close_at_server!;
      const rst = rsts.find((x) => (x.evidence.rst as { frame: number }).frame === forged.frame);
      assert.ok(rst, `injected-rst for frame ${forged.frame}`);
      assert.equal(rst.severity, 'critical');
      assert.equal(`${rst.client?.ip}:${rst.client?.port}`, conn.client);
      const e = rst.evidence as Record<string, any>;
      assert.equal(e.rst.capture, 'A');
      assert.equal(e.absentFrom, 'B');
      assert.equal(e.rst.ttl, forged.ttl);
      assert.equal(e.rst.ipId, forged.ip_id);
      assert.equal(e.rst.flags, '[R]');
      assert.deepEqual(e.claimedSender, { side: 'server', ip: f.topology.server, port: Number(conn.server.split(':')[1]) });
      assert.equal(e.senderTtl, realServer.ttl, 'TTL of the real server packets at the client');
      assert.equal(e.senderTtlAtOrigin, serverClose.ttl, 'TTL the server sends with, seen at the server');
      assert.equal(e.hopsBetweenPoints, f.topology.router_hops);
      // The forger: initial TTL 64 minus the RST's TTL routers after it, so router (that + 1) from the client.
      assert.equal(e.forgerRouterFromArrival, 64 - forged.ttl + 1);
      assert.ok(e.forgerRouterFromArrival <= f.topology.router_hops, 'between the capture points');
      assert.equal(e.seqInWindow, conn.rst_seq_equals_request_ack);
      assert.equal(e.precededByLoss.frame, request.frame);
      assert.equal(e.precededByLoss.len, request.len);
      assert.equal(e.senderCarriedOn.capture, 'B');
      assert.equal(e.senderCarriedOn.frame, serverClose.frame, 'the server\'s idle FIN, at the server');
      assert.deepEqual(e.senderIpIds, conn.server_ip_ids_seen_by_client);
      // The single-capture detector's guess about this RST is replaced by the proof.
      assert.ok(outcome.result.findings.every((x) => !(x.id.startsWith('1:injected-rst/') && (x.evidence.rsts as { frame: number }[]).some((r) => r.frame === forged.frame))));
      assert.ok((e.confirms as string[]).length > 0);

      const loss = losses.find((x) => x.conversations[0] === pair.a.id) as Finding;
      assert.ok(loss, `path-loss for ${conn.client}`);
      assert.equal(loss.severity, 'critical', 'the request never arrived in any copy');
      assert.equal(loss.evidence.lost, 1);
      assert.equal(loss.evidence.clientToServer, 1);
      assert.equal(loss.evidence.unrecovered, 1);
      const [lostPacket] = loss.evidence.packets as { capture: string; frame: number; len: number }[];
      assert.deepEqual({ capture: lostPacket.capture, frame: lostPacket.frame, len: lostPacket.len }, { capture: 'A', frame: request.frame, len: request.len });
      assert.equal(conn.blocked_request_seen_at_server, false);
    }
    // The server sent no RST: nothing in B is unexplained.
    assert.equal(f.rst_from_server_at_server, 0);
    assert.ok(c.pairs.every((p) => (p.path?.unmatched ?? []).every((u) => u.capture === 'A')));
  });

  test(`correlate nat-path (negative control): every connection maps through the NAT, every packet at both ends, nothing to report${snaplenLabel(snaplen)}`, async () => {
    const f = facts<NatFacts>('nat-path');
    const outcome = await correlate('nat-path-client.pcap', 'nat-path-server.pcap', snaplen);
    const c = outcome.correlation!;
    assert.equal(c.totals.sameConnection, f.mapping.length);
    assert.equal(c.totals.proxied, 0);
    assert.equal(c.totals.complete, f.mapping.length);
    assert.equal(c.totals.packetsMatched, f.matched_packets);
    assert.equal(c.totals.lost + c.totals.appeared + c.totals.notCaptured + c.totals.outside + c.totals.injectedRsts, 0);
    assert.deepEqual([c.unmatched.A.length, c.unmatched.B.length], [0, 0]);
    assert.ok(Math.abs(c.clock.offset) <= f.one_way_delay_s.max, `offset ${c.clock.offset}`);
    for (const m of f.mapping) {
      const pair = c.pairs.find((p) => hostPort(p.a.client) === m.client_side.client) as PairSection;
      assert.ok(pair, `pair for ${m.client_side.client}`);
      assert.equal(hostPort(pair.a.server), m.client_side.server);
      assert.equal(hostPort(pair.b.client), m.server_side.client, 'the NAT mapping');
      assert.equal(hostPort(pair.b.server), m.server_side.server);
      assert.equal(pair.evidence.isnClient, 'equal');
      assert.equal(pair.path?.packets.A, m.client_side.frames);
      assert.equal(pair.path?.packets.B, m.server_side.frames);
      assert.equal(pair.path?.matched.c2s + (pair.path?.matched.s2c ?? 0), m.client_side.frames);
      assert.equal(pair.path?.changes.nat.client?.downstream, m.server_side.client);
      assert.equal(pair.path?.changes.ipIdPreserved, m.ip_id_preserved);
      assert.deepEqual(pair.path?.changes.hops, {
        c2s: m.client_side.client_ttl - m.server_side.client_ttl,
        s2c: m.server_side.server_ttl[0] - m.client_side.server_ttl[0],
      });
      assert.deepEqual(pair.path?.changes.options, []);
    }
    assert.deepEqual(outcome.result.findings, [], 'nothing lost, nothing forged, nothing rewritten beyond NAT');
  });

  test(`correlate lb-blackhole: the proxy's legs pair, the blackholed bytes and the unpropagated failure are measured${snaplenLabel(snaplen)}`, async () => {
    const front = facts<Record<string, any>>('lb-blackhole-front');
    const back = facts<Record<string, any>>('lb-blackhole-back');
    for (const order of ['front-back', 'back-front'] as const) {
      const outcome = order === 'front-back'
        ? await correlate('lb-blackhole-front.pcap', 'lb-blackhole-back.pcap', snaplen)
        : await correlate('lb-blackhole-back.pcap', 'lb-blackhole-front.pcap', snaplen);
      const frontName = order === 'front-back' ? 'A' : 'B';
      const c = outcome.correlation!;
      assert.equal(c.totals.proxied, 1);
      assert.equal(c.totals.sameConnection, 0);
      const pair = c.pairs[0];
      const x = pair.proxy!;
      assert.equal(x.front, frontName, `${order}: the front leg found`);
      const frontRef = frontName === 'A' ? pair.a : pair.b;
      const backRef = frontName === 'A' ? pair.b : pair.a;
      assert.equal(hostPort(frontRef.client), front.client);
      assert.equal(hostPort(frontRef.server), front.proxy);
      assert.equal(hostPort(backRef.client), back.proxy);
      assert.equal(hostPort(backRef.server), back.backend);
      // Same host clock: proxied payload puts the offset within the proxy's forwarding delay of 0.
      assert.ok(Math.abs(c.clock.offset) < 0.001, `${order}: offset ${c.clock.offset}`);

      const after: { frame: number; seq: number; len: number; acked_by_frame: number }[] = front.client_data_after_break;
      const t = x.streams.c2s;
      assert.equal(t.sent, front.conversations[0].payload_bytes_client_to_server);
      assert.equal(t.ackedByProxy, t.sent);
      assert.equal(t.delivered, back.backend_acked_up_to_seq - 1);
      assert.equal(t.undelivered, front.client_bytes_after_break_acked_by_proxy);
      assert.equal(t.unforwarded, back.bytes_never_put_on_wire);
      assert.equal(t.undelivered - t.unforwarded, back.bytes_put_on_wire_unacked);
      assert.equal(x.streams.s2c.undelivered, 0);

      const [hole] = correlationFindings(outcome, 'blackhole');
      assert.ok(hole, `${order}: blackhole finding`);
      assert.equal(hole.severity, 'critical');
      const e = hole.evidence as Record<string, any>;
      assert.equal(e.frontCapture, frontName);
      assert.equal(e.undelivered, front.client_bytes_after_break_acked_by_proxy);
      assert.equal(e.unforwarded, back.bytes_never_put_on_wire);
      assert.equal(e.firstUndeliveredSeq, after[0].seq);
      assert.equal(e.firstUndeliveredFrame, after[0].frame);
      assert.equal(e.proxyAckFrame, after[0].acked_by_frame);
      const firstNeverSent = after.find((m) => m.seq === back.backend_acked_up_to_seq + back.bytes_put_on_wire_unacked);
      assert.ok(firstNeverSent);
      assert.equal(e.firstUnforwardedSeq, firstNeverSent.seq);
      assert.equal(e.firstUnforwardedFrame, firstNeverSent.frame);
      // The single-capture blackhole on the front leg is confirmed and replaced.
      assert.ok(outcome.result.findings.every((f) => !(f.detector === 'blackhole' && /^[12]:/.test(f.id))));

      const [failure] = correlationFindings(outcome, 'unpropagated-failure');
      assert.ok(failure, `${order}: unpropagated-failure finding`);
      const u = failure.evidence as Record<string, any>;
      assert.equal(u.backFailure, 'unacknowledged');
      assert.equal(u.backFailureFrame, back.unacked_originals[0].frame);
      assert.equal(u.retransmissions, back.retransmissions.length);
      assert.equal(u.backResetFrame, back.proxy_abort.frame);
      assert.equal(u.frontOutcome, 'fin');
      assert.equal(u.proxyFrontFrame, front.proxy_close.frame);
      assert.equal(u.clientCloseFrame, front.client_close.frame);

      // Requests answered before the break: front response times as tshark measured them, and the
      // proxy's share of each is positive and at most the whole.
      const answered = (front.heartbeats as { frame: number; answer_frame: number | null; response_time: number | null }[]).filter((h) => h.answer_frame !== null);
      assert.equal(x.requestCount, answered.length);
      x.requests.forEach((r, i) => {
        assert.equal(r.request.frame, answered[i].frame);
        assert.equal(r.response.frame, answered[i].answer_frame);
        assert.ok(Math.abs(r.frontSeconds - (answered[i].response_time as number)) < 2e-6, `request ${i}: ${r.frontSeconds}`);
        assert.ok(r.proxySeconds !== null && r.proxySeconds > 0 && r.proxySeconds <= r.frontSeconds, `request ${i}: proxy share ${r.proxySeconds}`);
      });
    }
  });
}
