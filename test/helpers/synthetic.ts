import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { analyzeFiles, type AnalyzeOutcome } from '../../src/core/analyze.js';
import { DecodedPacket, TcpFlag } from '../../src/decode/packet.js';
import type { DetectorSpec } from '../../src/detect/detector.js';
import { DetectorEngine } from '../../src/detect/engine.js';
import type { Finding } from '../../src/detect/finding.js';
import { emptyPolicy, type Policy } from '../../src/detect/policy.js';
import type { Conversation } from '../../src/flow/conversation.js';
import type { Segment } from '../../src/flow/segment.js';
import { FlowTracker, type FlowObserver, type TrackerOptions } from '../../src/flow/tracker.js';

/**
 * Hand-built scenarios for detector unit tests: scripted TCP conversations turned into
 * DecodedPackets and fed, in the order the script calls them, to a FlowTracker whose observer is a
 * DetectorEngine running the given detectors. Sequence and acknowledgement numbers are kept per
 * flow, so a script says only what happens ("client sends 100 bytes at t"), not how it is numbered.
 *
 *   const cap = new SyntheticCapture([myDetector]);
 *   const c = cap.flow('10.0.0.1:40000', '10.0.0.2:80');
 *   c.handshake(0); c.data(1, 'client', 100); c.data(1.01, 'server', 500); c.close(2, 'client');
 *   const findings = cap.finish();
 */

export type Side = 'client' | 'server';

/** IPv4 dotted quad to the decoder's IPv4-mapped four-word form (::ffff:a.b.c.d). */
export function ipv4Words(ip: string): Uint32Array {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  const words = new Uint32Array(4);
  words[2] = 0xffff;
  words[3] = ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
  return words;
}

function parseEndpoint(text: string): { ip: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { ip: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

export interface SegmentOptions {
  /** Extra TcpFlag bits (PSH is added to data segments by default). */
  flags?: number;
  /** Acknowledge this much of the peer's stream instead of everything sent so far. */
  ack?: number;
  /** Raw window field (default 65535). */
  window?: number;
  /** Sequence number relative to the ISN+1 (default: the next unsent byte); for retransmissions. */
  seq?: number;
}

export class SyntheticFlow {
  /** Next relative sequence number to send, per side (0 = first byte after the SYN). */
  private readonly next: Record<Side, number> = { client: 0, server: 0 };
  private readonly isn: Record<Side, number>;
  private readonly ends: Record<Side, { ip: Uint32Array; port: number }>;
  private readonly finSent: Record<Side, boolean> = { client: false, server: false };
  /** IPv4 TTL of each side's packets as they reach the capture point. */
  readonly ttl: Record<Side, number> = { client: 64, server: 64 };
  /** Next IPv4 ID per side: 0 sends ID 0 always (the default), otherwise a counter from this value. */
  readonly ipId: Record<Side, number> = { client: 0, server: 0 };
  /** Whether every packet carries the TCP timestamps option (both SYNs negotiate it). */
  timestamps = false;
  /** TTL / IP ID for the next packet only (raw()). */
  private override: { ttl?: number; ipId?: number } | null = null;

  constructor(
    private readonly capture: SyntheticCapture,
    client: string,
    server: string,
    isnClient: number,
    isnServer: number,
  ) {
    const c = parseEndpoint(client);
    const s = parseEndpoint(server);
    this.ends = { client: { ip: ipv4Words(c.ip), port: c.port }, server: { ip: ipv4Words(s.ip), port: s.port } };
    this.isn = { client: isnClient, server: isnServer };
  }

  /** Absolute ACK number covering everything `side` has sent (SYN and FIN included). */
  private ackFor(side: Side, relative?: number): number {
    // Data is numbered from ISN+1 whether or not the SYN was sent (a flow joined mid-stream has no
    // SYN in the capture), so ACKs, FINs and RSTs must count from there too to agree with data().
    const base = this.isn[side] + 1;
    const sent = relative ?? this.next[side] + (this.finSent[side] ? 1 : 0);
    return (base + sent) >>> 0;
  }

  private emit(time: number, from: Side, flags: number, seq: number, ack: number, length: number, window: number, syn = false): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    const pkt = this.capture.packet;
    pkt.ipVersion = 4;
    pkt.srcAddr.set(this.ends[from].ip);
    pkt.dstAddr.set(this.ends[to].ip);
    pkt.srcPort = this.ends[from].port;
    pkt.dstPort = this.ends[to].port;
    pkt.ttl = this.override?.ttl ?? this.ttl[from];
    if (this.override?.ipId !== undefined) pkt.ipId = this.override.ipId;
    else {
      pkt.ipId = this.ipId[from];
      if (this.ipId[from] !== 0) this.ipId[from] = (this.ipId[from] + 1) & 0xffff || 1;
    }
    this.override = null;
    pkt.seq = seq >>> 0;
    pkt.ack = ack >>> 0;
    pkt.flags = flags;
    pkt.window = window;
    pkt.headerLength = 20;
    pkt.payloadLength = length;
    pkt.payloadOffset = 0;
    pkt.capturedPayload = 0;
    pkt.clearOptions();
    pkt.hasTimestamp = this.timestamps;
    if (syn) {
      pkt.mss = 1460;
      pkt.sackPermitted = true;
    }
    this.capture.feed(time, 54 + length, pkt);
    return this;
  }

  syn(time: number): this {
    return this.emit(time, 'client', TcpFlag.SYN, this.isn.client, 0, 0, 65535, true);
  }

  synAck(time: number): this {
    return this.emit(time, 'server', TcpFlag.SYN | TcpFlag.ACK, this.isn.server, this.ackFor('client'), 0, 65535, true);
  }

  /** SYN, SYN-ACK and the client's ACK, `rtt` apart. */
  handshake(time: number, rtt = 0.001): this {
    this.syn(time);
    this.synAck(time + rtt / 2);
    return this.ack(time + rtt, 'client');
  }

  /** A pure ACK of everything the peer sent (or of `options.ack` bytes of it). */
  ack(time: number, from: Side, options: SegmentOptions = {}): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    return this.emit(time, from, TcpFlag.ACK | (options.flags ?? 0), this.ackFor(from, this.seqRel(from)), this.ackFor(to, options.ack), 0, options.window ?? 65535);
  }

  /** `length` new payload bytes (or a retransmission when options.seq is given). */
  data(time: number, from: Side, length: number, options: SegmentOptions = {}): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    const rel = options.seq ?? this.next[from];
    const seq = (this.isn[from] + 1 + rel) >>> 0;
    if (options.seq === undefined) this.next[from] += length;
    return this.emit(time, from, TcpFlag.ACK | TcpFlag.PSH | (options.flags ?? 0), seq, this.ackFor(to, options.ack), length, options.window ?? 65535);
  }

  /** Payload from one side, then the peer's pure ACK `ackDelay` later. */
  dataAcked(time: number, from: Side, length: number, ackDelay = 0.0005): this {
    this.data(time, from, length);
    return this.ack(time + ackDelay, from === 'client' ? 'server' : 'client');
  }

  fin(time: number, from: Side, options: SegmentOptions = {}): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    const seq = this.ackFor(from, this.next[from]);
    this.finSent[from] = true;
    return this.emit(time, from, TcpFlag.FIN | TcpFlag.ACK | (options.flags ?? 0), seq, this.ackFor(to, options.ack), 0, options.window ?? 65535);
  }

  /** FIN from `from`, FIN-ACK from the peer, last ACK: an orderly close. */
  close(time: number, from: Side, step = 0.0005): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    this.fin(time, from);
    this.fin(time + step, to);
    return this.ack(time + 2 * step, from);
  }

  /**
   * A keep-alive or persist (zero-window) probe the Linux way: no payload, sequence number one below
   * the next unsent byte (snd.una - 1 when nothing is outstanding), ACK of everything the peer sent.
   */
  probe(time: number, from: Side, options: SegmentOptions = {}): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    const seq = (this.ackFor(from, this.seqRel(from)) - 1) >>> 0;
    return this.emit(time, from, TcpFlag.ACK | (options.flags ?? 0), seq, this.ackFor(to, options.ack), 0, options.window ?? 65535);
  }

  /** An RST (with ACK unless `bare`) at the sender's next sequence number. */
  rst(time: number, from: Side, bare = false): this {
    const to: Side = from === 'client' ? 'server' : 'client';
    const seq = this.ackFor(from, this.seqRel(from));
    return this.emit(time, from, TcpFlag.RST | (bare ? 0 : TcpFlag.ACK), seq, bare ? 0 : this.ackFor(to), 0, 0);
  }

  /**
   * Any segment with absolute sequence and acknowledgement numbers (a stale ACK, a forged RST...);
   * `ttl` and `ipId` override the side's values for this packet only. The flow's own numbering is
   * not advanced.
   */
  raw(time: number, from: Side, flags: number, seq: number, ack: number, options: { length?: number; ttl?: number; ipId?: number } = {}): this {
    this.override = { ttl: options.ttl, ipId: options.ipId };
    return this.emit(time, from, flags, seq, ack, options.length ?? 0, flags & TcpFlag.RST ? 0 : 65535, (flags & TcpFlag.SYN) !== 0);
  }

  /** The side's initial sequence number. */
  isnOf(side: Side): number {
    return this.isn[side];
  }

  /** Absolute sequence number of the side's next byte (FIN included), i.e. what the peer's ACK covers. */
  nextSeqOf(side: Side): number {
    return this.ackFor(side, this.seqRel(side));
  }

  /** Relative sequence number of the next byte, FIN included. */
  private seqRel(side: Side): number {
    return this.next[side] + (this.finSent[side] ? 1 : 0);
  }
}

/** A tracker and a detector engine fed by scripted flows; frames are numbered from 1. */
export class SyntheticCapture {
  readonly packet = new DecodedPacket();
  readonly tracker: FlowTracker;
  readonly engine: DetectorEngine;
  readonly finalized: Conversation[] = [];
  private frame = 0;
  private isnCounter = 1000;

  constructor(specs: readonly DetectorSpec[], policy: Policy = emptyPolicy(), tracker: Partial<TrackerOptions> = {}) {
    const sink: FlowObserver = {
      onSegment: (_conv: Conversation, _seg: Segment) => {},
      onFinalize: (conv: Conversation) => {
        this.finalized.push(conv);
      },
    };
    this.engine = new DetectorEngine(specs, policy, sink);
    this.tracker = new FlowTracker(this.engine, tracker);
  }

  /** A new scripted connection; ISNs are distinct per flow unless given. */
  flow(client: string, server: string, isnClient?: number, isnServer?: number): SyntheticFlow {
    const c = isnClient ?? (this.isnCounter += 100_000);
    const s = isnServer ?? (this.isnCounter += 100_000);
    return new SyntheticFlow(this, client, server, c, s);
  }

  /** Frame number the next packet will get. */
  get nextFrame(): number {
    return this.frame + 1;
  }

  feed(time: number, wireLength: number, pkt: DecodedPacket): void {
    this.frame++;
    this.tracker.packet(this.frame, time, wireLength, 0, pkt);
  }

  /** End of capture: finalises every conversation, runs the detectors' finish, returns the findings. */
  finish(): Finding[] {
    this.tracker.finish();
    this.engine.finish();
    return this.engine.results();
  }
}

/**
 * A copy of a classic pcap file with every record cut to `snaplen` bytes, as `tcpdump -s snaplen`
 * would have written it (original lengths kept), in a fresh temporary directory. Lets a test run a
 * lab capture's assertions on its snaplen-truncated twin.
 */
export function snaplenCopy(path: string, snaplen: number): string {
  const input = readFileSync(path);
  const magicLe = input.readUInt32LE(0);
  const le = magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d;
  const magicBe = input.readUInt32BE(0);
  if (!le && magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) throw new Error(`${path}: not a classic pcap file`);
  const u32 = (offset: number) => (le ? input.readUInt32LE(offset) : input.readUInt32BE(offset));
  const chunks: Buffer[] = [];
  const header = Buffer.from(input.subarray(0, 24));
  if (le) header.writeUInt32LE(snaplen, 16);
  else header.writeUInt32BE(snaplen, 16);
  chunks.push(header);
  let offset = 24;
  while (offset + 16 <= input.length) {
    const included = u32(offset + 8);
    const kept = Math.min(included, snaplen);
    const record = Buffer.from(input.subarray(offset, offset + 16 + kept));
    if (le) record.writeUInt32LE(kept, 8);
    else record.writeUInt32BE(kept, 8);
    chunks.push(record);
    offset += 16 + included;
  }
  const out = join(mkdtempSync(join(tmpdir(), 'connscope-snaplen-')), basename(path));
  writeFileSync(out, Buffer.concat(chunks));
  return out;
}

/** Runs `fn` on a snaplen-truncated copy of a pcap (see snaplenCopy), then removes the copy. */
export async function withSnaplenCopy<T>(path: string, snaplen: number, fn: (copy: string) => Promise<T>): Promise<T> {
  const copy = snaplenCopy(path, snaplen);
  try {
    return await fn(copy);
  } finally {
    rmSync(dirname(copy), { recursive: true, force: true });
  }
}

/**
 * Snaplens a lab capture is checked at: 0 = as recorded; 80 = `tcpdump -s 80`, which keeps an
 * Ethernet + IPv4 + TCP header with all its options (a SYN's is 74 bytes) and cuts the payload.
 */
export const SNAPLEN_VARIANTS = [0, 80];

/** analyzeFiles on the capture itself (snaplen 0) or on a copy truncated to `snaplen`. */
export function analyzeAtSnaplen(path: string, snaplen: number): Promise<AnalyzeOutcome> {
  return snaplen > 0 ? withSnaplenCopy(path, snaplen, (copy) => analyzeFiles([copy])) : analyzeFiles([path]);
}

/** Test-name suffix for a snaplen variant. */
export function snaplenLabel(snaplen: number): string {
  return snaplen > 0 ? ` (snaplen ${snaplen})` : '';
}
