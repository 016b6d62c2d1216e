import { DecodedPacket, TcpFlag } from '../../src/decode/packet.js';
import type { Conversation } from '../../src/flow/conversation.js';
import type { Segment } from '../../src/flow/segment.js';
import { FlowTracker } from '../../src/flow/tracker.js';
import { type CaptureFingerprints, type CollectorLimits, FingerprintCollector } from '../../src/correlate/fingerprint.js';
import { ipv4Words } from '../helpers/synthetic.js';

/**
 * Hand-built two-vantage scenarios for the correlator's unit tests. A `Script` is one TCP
 * connection as its endpoints send it (absolute seq/ack numbers, payload hashes standing for the
 * bytes); a `Vantage` is one capture point, which sees a script's packets through its own lens:
 * addresses as rewritten there, TTLs decremented by the routers before it, its own clock, and
 * only the packets that reach it.
 */

export interface ScriptPacket {
  /** Index within the script, for drop lists. */
  n: number;
  /** Time the sender sent it (seconds, sender's view; vantages add their delays). */
  t: number;
  fromClient: boolean;
  flags: number;
  seq: number;
  ack: number;
  len: number;
  hash: number;
  ipId: number;
  ts: boolean;
  window: number;
  /** TTL as it arrives at every point that sees it (forged packets); else the view's TTL. */
  ttl?: number;
}

export class Script {
  readonly packets: ScriptPacket[] = [];
  private next = { c: 0, s: 0 };
  private ipIds = { c: 100, s: 5000 };

  constructor(readonly isnClient: number, readonly isnServer: number, readonly timestamps = false) {}

  private seqOf(fromClient: boolean): number {
    return ((fromClient ? this.isnClient : this.isnServer) + 1 + (fromClient ? this.next.c : this.next.s)) >>> 0;
  }

  private push(t: number, fromClient: boolean, flags: number, seq: number, ack: number, len: number, hash = 0, extra: Partial<ScriptPacket> = {}): ScriptPacket {
    const p: ScriptPacket = {
      n: this.packets.length, t, fromClient, flags, seq, ack, len, hash,
      ipId: fromClient ? this.ipIds.c++ : this.ipIds.s++,
      ts: this.timestamps, window: 65535, ...extra,
    };
    this.packets.push(p);
    return p;
  }

  handshake(t: number, rtt = 0.002): this {
    this.push(t, true, TcpFlag.SYN, this.isnClient, 0, 0);
    this.push(t + rtt / 2, false, TcpFlag.SYN | TcpFlag.ACK, this.isnServer, (this.isnClient + 1) >>> 0, 0);
    this.push(t + rtt, true, TcpFlag.ACK, (this.isnClient + 1) >>> 0, (this.isnServer + 1) >>> 0, 0);
    return this;
  }

  /** New payload from one side (hash stands for its bytes). */
  data(t: number, fromClient: boolean, len: number, hash: number): ScriptPacket {
    const p = this.push(t, fromClient, TcpFlag.PSH | TcpFlag.ACK, this.seqOf(fromClient), this.seqOf(!fromClient), len, hash);
    if (fromClient) this.next.c += len;
    else this.next.s += len;
    return p;
  }

  /** The same bytes again (retransmission of packet `of`). */
  resend(t: number, of: ScriptPacket): ScriptPacket {
    return this.push(t, of.fromClient, of.flags, of.seq, this.seqOf(!of.fromClient), of.len, of.hash);
  }

  ack(t: number, fromClient: boolean): ScriptPacket {
    return this.push(t, fromClient, TcpFlag.ACK, this.seqOf(fromClient), this.seqOf(!fromClient), 0);
  }

  /** A FIN acknowledging everything the peer sent, or only up to `ack` (bytes that never arrived). */
  fin(t: number, fromClient: boolean, ack?: number): ScriptPacket {
    const p = this.push(t, fromClient, TcpFlag.FIN | TcpFlag.ACK, this.seqOf(fromClient), ack ?? this.seqOf(!fromClient), 0);
    if (fromClient) this.next.c += 1;
    else this.next.s += 1;
    return p;
  }

  /** An RST in a side's name (a forger sets ttl and ipId). */
  rst(t: number, fromClient: boolean, extra: Partial<ScriptPacket> = {}): ScriptPacket {
    return this.push(t, fromClient, TcpFlag.RST, this.seqOf(fromClient), 0, 0, 0, extra);
  }

  /** Request/response exchanges: client data, server ACK, server data, client ACK. */
  exchanges(t: number, count: number, gap = 0.1, hashBase = 1000): this {
    for (let i = 0; i < count; i++) {
      const at = t + i * gap;
      this.data(at, true, 100 + i, hashBase + 2 * i);
      this.ack(at + 0.001, false);
      this.data(at + 0.002, false, 300 + i, hashBase + 2 * i + 1);
      this.ack(at + 0.003, true);
    }
    return this;
  }

  close(t: number): this {
    this.fin(t, true);
    this.fin(t + 0.001, false);
    this.ack(t + 0.002, true);
    return this;
  }
}

export interface View {
  script: Script;
  client: string;
  server: string;
  /** TTL of each side's packets at this point (the initial TTL minus the routers before it). */
  ttl: { client: number; server: number };
  /** Delay from each sender to this point (seconds). */
  delay: { client: number; server: number };
  /** Script packets (by n) this point never sees. */
  missing?: ReadonlySet<number>;
  /** The path rewrites IPv4 IDs before this point. */
  ipIdRewrite?: boolean;
  /** Packets from this side arrive here without their timestamps option. */
  timestampsStripped?: 'client' | 'server';
  /** MSS option in each side's SYN as seen here (default 1460). */
  mss?: { client: number; server: number };
}

function parse(text: string): { ip: Uint32Array; port: number } {
  const i = text.lastIndexOf(':');
  return { ip: ipv4Words(text.slice(0, i)), port: Number(text.slice(i + 1)) };
}

/** One capture point: the views of every connection through it, on its own clock. */
export class Vantage {
  readonly views: View[] = [];

  constructor(readonly name: string, readonly clock = 0) {}

  see(view: View): this {
    this.views.push(view);
    return this;
  }

  /** The capture's fingerprints, as `correlate` would collect them from a file. */
  fingerprints(limits: Partial<CollectorLimits> = {}): CaptureFingerprints {
    const collector = new FingerprintCollector(limits);
    let hash = 0;
    // Like AnalysisSession: the payload hash of the packet being tracked, handed to the collector.
    const observer = {
      onSegment(conv: Conversation, seg: Segment) {
        seg.payloadHash = hash;
        collector.onSegment(conv, seg);
      },
      onFinalize(conv: Conversation) {
        collector.onFinalize(conv);
      },
    };
    const tracker = new FlowTracker(observer);
    const events: { time: number; view: View; p: ScriptPacket }[] = [];
    for (const view of this.views) {
      for (const p of view.script.packets) {
        if (view.missing?.has(p.n)) continue;
        events.push({ time: p.t + (p.fromClient ? view.delay.client : view.delay.server) + this.clock, view, p });
      }
    }
    events.sort((x, y) => x.time - y.time);
    const pkt = new DecodedPacket();
    let frame = 0;
    for (const { time, view, p } of events) {
      const c = parse(view.client);
      const s = parse(view.server);
      const src = p.fromClient ? c : s;
      const dst = p.fromClient ? s : c;
      pkt.ipVersion = 4;
      pkt.srcAddr.set(src.ip);
      pkt.dstAddr.set(dst.ip);
      pkt.srcPort = src.port;
      pkt.dstPort = dst.port;
      pkt.seq = p.seq;
      pkt.ack = p.ack;
      pkt.flags = p.flags;
      pkt.window = p.window;
      pkt.headerLength = 20;
      pkt.payloadLength = p.len;
      pkt.capturedPayload = p.len;
      pkt.clearOptions();
      pkt.hasTimestamp = p.ts && view.timestampsStripped !== (p.fromClient ? 'client' : 'server');
      if ((p.flags & TcpFlag.SYN) !== 0) pkt.mss = (p.fromClient ? view.mss?.client : view.mss?.server) ?? 1460;
      pkt.ttl = p.ttl ?? (p.fromClient ? view.ttl.client : view.ttl.server);
      pkt.ipId = view.ipIdRewrite === true ? (p.ipId * 7919) & 0xffff : p.ipId;
      hash = p.hash;
      tracker.packet(++frame, time, 54 + p.len, 0, pkt);
    }
    tracker.finish();
    const times = events.map((e) => e.time);
    return collector.result(this.name, times.length > 0 ? Math.min(...times) : null, times.length > 0 ? Math.max(...times) : null);
  }
}
