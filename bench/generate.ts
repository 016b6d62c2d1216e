/**
 * Deterministic synthetic captures for the benchmark and the performance tests.
 *
 * Two kinds of traffic, both Ethernet/IPv4/TCP written as classic pcap (microsecond timestamps,
 * snaplen 96 unless told otherwise), streamed through one reused buffer so a capture of any size
 * is never held in memory:
 *
 * - `flows` (default): `flows` concurrent TCP connections. Each slot plays one connection after
 *   another: SYN / SYN-ACK (MSS, SACK, timestamps, window scale) / ACK one round trip apart (RTTs
 *   from 0.2 to 80 ms), then request/response exchanges (a request, a response of one to six
 *   segments, cumulative ACKs every second segment) separated by idle think time, about 1% of data
 *   segments lost and sent again after the retransmission timeout (one request in 2000 again and
 *   again with the timeout doubling: a storm, after which half the clients reset), then a FIN
 *   close (90%) or an RST (10%), and the next connection from a new client port. Slots are merged
 *   in time order and paced so the capture carries about `rate` packets a second whatever the
 *   number of slots; connection length is exponential around `flowPackets`. So the number of
 *   live connections stays `flows` while the number of connections in the file grows with its
 *   length. The capture
 *   starts on a busy box: each slot's first connection is joined midstream (no handshake).
 * - `flood`: `tuples` distinct 4-tuples (a SYN scan / SYN flood): one SYN each; a quarter are
 *   answered with RST-ACK (closed port), one in twenty with SYN-ACK and the scanner's RST.
 *
 * The same options and seed always give the same bytes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

/** Changes whenever the same options give different bytes (the benchmark regenerates its captures). */
export const GENERATOR_VERSION = 2;

export interface GenerateOptions {
  /** Output path. */
  output: string;
  mode?: 'flows' | 'flood';
  /** flows mode: packets to write. */
  packets?: number;
  /** flows mode: concurrent connections. */
  flows?: number;
  /** flows mode: mean packets per connection (handshake and close included). */
  flowPackets?: number;
  /** flood mode: distinct 4-tuples. */
  tuples?: number;
  seed?: number;
  snaplen?: number;
  /** Mean packets per second of capture time. */
  rate?: number;
  /** Capture start, seconds since the epoch. */
  start?: number;
  /** Fraction of data segments lost and sent again. */
  retransmitRate?: number;
  /** Fraction of requests lost again and again (a retransmission storm with backoff). */
  stormRate?: number;
}

export interface GenerateResult {
  packets: number;
  bytes: number;
  /** TCP connections (4-tuple instances) with at least one packet in the capture. */
  connections: number;
  /** Capture seconds from first to last packet. */
  duration: number;
}

/** Mulberry32: small, fast, good enough for traffic shapes, and identical everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Uniform 32-bit unsigned. */
  u32(): number {
    return (this.next() * 4294967296) >>> 0;
  }
}

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

const ETH = 14;
const IP = 20;
const MSS = 1448;

/** Streams classic pcap records through one reused buffer, flushed to the file as it fills. */
export class PcapWriter {
  private readonly fd: number;
  private readonly buf: Buffer;
  private pos = 0;
  packets = 0;
  bytes = 0;

  constructor(path: string, readonly snaplen = 96, bufferSize = 1 << 20) {
    this.fd = openSync(path, 'w');
    this.buf = Buffer.alloc(bufferSize);
    const b = this.buf;
    b.writeUInt32LE(0xa1b2c3d4, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt16LE(4, 6);
    b.writeInt32LE(0, 8);
    b.writeUInt32LE(0, 12);
    b.writeUInt32LE(snaplen, 16);
    b.writeUInt32LE(1, 20);
    this.pos = 24;
  }

  /** Appends one raw record: `frame` holds at least min(wireLength, snaplen) bytes. */
  raw(time: number, frame: Uint8Array, wireLength: number): void {
    const caplen = Math.min(wireLength, this.snaplen, frame.length);
    if (this.pos + 16 + caplen > this.buf.length) this.flush();
    const b = this.buf;
    let sec = Math.floor(time);
    let usec = Math.round((time - sec) * 1e6);
    if (usec >= 1e6) {
      sec++;
      usec -= 1e6;
    }
    b.writeUInt32LE(sec, this.pos);
    b.writeUInt32LE(usec, this.pos + 4);
    b.writeUInt32LE(caplen, this.pos + 8);
    b.writeUInt32LE(wireLength, this.pos + 12);
    b.set(frame.subarray(0, caplen), this.pos + 16);
    this.pos += 16 + caplen;
    this.packets++;
    this.bytes += 16 + caplen;
  }

  flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.pos = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** One TCP segment's header fields; the frame is built into a reused scratch buffer. */
class FrameBuilder {
  readonly frame = Buffer.alloc(128);

  constructor() {
    const f = this.frame;
    // Ethernet: locally administered MACs, IPv4.
    f.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
    f.writeUInt16BE(0x0800, 12);
  }

  /** Writes the frame, returns its length on the wire. */
  build(
    src: number, dst: number, sport: number, dport: number, seq: number, ack: number, flags: number,
    window: number, payload: number, ipId: number, ttl: number, tsVal: number, tsEcr: number,
  ): number {
    const f = this.frame;
    const syn = (flags & SYN) !== 0;
    const withTs = (flags & RST) === 0;
    const optLength = syn ? 20 : withTs ? 12 : 0;
    const tcpLength = 20 + optLength;
    const total = IP + tcpLength + payload;
    // MACs follow direction so Wireshark's conversation views look sane.
    f[5] = src & 0xff;
    f[11] = dst & 0xff;
    let p = ETH;
    f[p] = 0x45;
    f[p + 1] = 0;
    f.writeUInt16BE(total, p + 2);
    f.writeUInt16BE(ipId & 0xffff, p + 4);
    f.writeUInt16BE(0x4000, p + 6);
    f[p + 8] = ttl;
    f[p + 9] = 6;
    f.writeUInt16BE(0, p + 10);
    f.writeUInt32BE(src >>> 0, p + 12);
    f.writeUInt32BE(dst >>> 0, p + 16);
    let sum = 0;
    for (let i = 0; i < IP; i += 2) sum += (f[p + i] << 8) | f[p + i + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    f.writeUInt16BE(~sum & 0xffff, p + 10);
    p += IP;
    f.writeUInt16BE(sport, p);
    f.writeUInt16BE(dport, p + 2);
    f.writeUInt32BE(seq >>> 0, p + 4);
    f.writeUInt32BE((flags & ACK) !== 0 ? ack >>> 0 : 0, p + 8);
    f[p + 12] = (tcpLength >> 2) << 4;
    f[p + 13] = flags;
    f.writeUInt16BE(window, p + 14);
    f.writeUInt32BE(0, p + 16);
    let o = p + 20;
    if (syn) {
      // MSS, SACK permitted, timestamps, NOP, window scale 7: what Linux sends.
      f[o] = 2; f[o + 1] = 4; f.writeUInt16BE(1460, o + 2);
      f[o + 4] = 4; f[o + 5] = 2;
      f[o + 6] = 8; f[o + 7] = 10; f.writeUInt32BE(tsVal >>> 0, o + 8); f.writeUInt32BE(tsEcr >>> 0, o + 12);
      f[o + 16] = 1; f[o + 17] = 3; f[o + 18] = 3; f[o + 19] = 7;
      o += 20;
    } else if (withTs) {
      f[o] = 1; f[o + 1] = 1; f[o + 2] = 8; f[o + 3] = 10;
      f.writeUInt32BE(tsVal >>> 0, o + 4); f.writeUInt32BE(tsEcr >>> 0, o + 8);
      o += 12;
    }
    // Payload bytes within the snaplen: zeros (the scratch buffer's tail is never written).
    f.fill(0, o, Math.min(f.length, o + payload));
    return ETH + total;
  }
}

const enum Phase {
  Syn,
  SynAck,
  HandshakeAck,
  Request,
  RequestAgain,
  Response,
  ResponseAgain,
  ResponseAck,
  Fin,
  FinAck,
  PeerFin,
  LastAck,
  Reset,
}

/** One slot's current connection. Stable shape; reused for the slot's next connection. */
class Connection {
  clientIp = 0;
  serverIp = 0;
  clientPort = 0;
  serverPort = 443;
  /** Next sequence number each side sends. */
  cSeq = 0;
  sSeq = 0;
  cIpId = 0;
  sIpId = 0;
  phase = Phase.Syn;
  /** Round-trip time and retransmission timeout of this connection, in seconds. */
  rtt = 0;
  rto = 0;
  /** Request/response exchanges still to run, response segments still to send, unacknowledged. */
  exchanges = 0;
  segments = 0;
  responseSegments = 0;
  /** Retransmissions of the lost request still to come, and the current timeout. */
  storm = 0;
  stormWait = 0;
  unacked = 0;
  /** The segment to send again (a loss), and its length. */
  againSeq = 0;
  againLength = 0;
  clientCloses = true;
  reset = false;
  tsBase = 0;
  generation = 0;
  /** Packets sent by this connection (0 until its SYN). */
  sent = 0;
}

function ipv4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** Writes a capture as described at the top of this file. */
export function generateCapture(options: GenerateOptions): GenerateResult {
  const mode = options.mode ?? 'flows';
  const writer = new PcapWriter(options.output, options.snaplen ?? 96);
  try {
    return mode === 'flood' ? generateFlood(writer, options) : generateFlows(writer, options);
  } finally {
    writer.close();
  }
}

/** Packets of one request/response exchange on average (request, response, ACKs), for pacing. */
const PACKETS_PER_EXCHANGE = 6.5;
/** Response segments leave back to back: 1448 bytes at 1 Gbit/s. */
const SEGMENT_SPACING = 0.000012;
/** Stack turnaround: an ACK or the next packet of a burst after the one that caused it. */
const TURNAROUND = 0.00002;

/**
 * Slots in a binary min-heap on their next packet time: the capture is the slots' packet streams
 * merged in time order, each connection paced by its round-trip time within an exchange and idle
 * between exchanges (think time), so the packet rate is about `rate` whatever the number of slots.
 */
class SlotHeap {
  readonly time: Float64Array;
  readonly slot: Int32Array;
  size = 0;
  constructor(capacity: number) {
    this.time = new Float64Array(capacity);
    this.slot = new Int32Array(capacity);
  }
  push(time: number, slot: number): void {
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      // Ties go to the lower slot, so the order never depends on heap history.
      if (this.time[parent] < time || (this.time[parent] === time && this.slot[parent] < slot)) break;
      this.time[i] = this.time[parent];
      this.slot[i] = this.slot[parent];
      i = parent;
    }
    this.time[i] = time;
    this.slot[i] = slot;
  }
  /** Replaces the minimum by (time, slot) and restores the heap. */
  replaceTop(time: number, slot: number): void {
    const n = this.size;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && (this.time[right] < this.time[child] ||
          (this.time[right] === this.time[child] && this.slot[right] < this.slot[child]))) child = right;
      if (this.time[child] > time || (this.time[child] === time && this.slot[child] > slot)) break;
      this.time[i] = this.time[child];
      this.slot[i] = this.slot[child];
      i = child;
    }
    this.time[i] = time;
    this.slot[i] = slot;
  }
}

function generateFlows(writer: PcapWriter, options: GenerateOptions): GenerateResult {
  const packets = options.packets ?? 1_000_000;
  const slots = Math.max(1, options.flows ?? 10_000);
  const meanLength = Math.max(8, options.flowPackets ?? 40);
  const rng = new Rng(options.seed ?? 1);
  const rate = options.rate ?? 20_000;
  const start = options.start ?? 1_700_000_000;
  const retransmitRate = Math.max(options.retransmitRate ?? 0.01, 1e-9);
  const stormRate = Math.min(options.stormRate ?? 0.0005, retransmitRate);
  const fb = new FrameBuilder();
  // Each slot sends rate/slots packets a second on average, nearly all of them in exchanges.
  const thinkMean = (slots / rate) * PACKETS_PER_EXCHANGE;
  // Handshake and close take about 7 packets; the rest are exchanges.
  const exchangesMean = Math.max(1, (meanLength - 7) / PACKETS_PER_EXCHANGE);
  const exponential = (mean: number): number => -Math.log(1 - rng.next()) * mean;

  // Client hosts 10.0.0.0/16 (up to 4096 of them), servers 192.168.1.1-16; each slot owns a range
  // of client ports it cycles through, so no tuple is reused while a slot's previous use lingers.
  const hosts = Math.min(4096, slots);
  const slotsPerHost = Math.ceil(slots / hosts);
  const portsPerSlot = Math.max(1, Math.floor(60_000 / slotsPerHost));
  const conns: Connection[] = [];
  let connections = 0;
  const startConnection = (c: Connection, slot: number): void => {
    const host = slot % hosts;
    const k = Math.floor(slot / hosts);
    c.clientIp = (ipv4(10, 0, 0, 0) + host + 1) >>> 0;
    c.serverIp = ipv4(192, 168, 1, 1 + (slot % 16));
    c.clientPort = 1024 + k * portsPerSlot + (c.generation % portsPerSlot);
    c.serverPort = slot % 5 === 0 ? 80 : 443;
    c.cSeq = rng.u32();
    c.sSeq = rng.u32();
    c.cIpId = rng.int(65536);
    c.sIpId = rng.int(65536);
    c.phase = Phase.Syn;
    // Round-trip times from 0.2 ms (same rack) to 80 ms (another continent), log-uniform.
    c.rtt = 0.0002 * Math.exp(rng.next() * Math.log(400));
    c.rto = Math.max(0.2, 3 * c.rtt);
    c.exchanges = 1 + Math.floor(exponential(exchangesMean - 1 + 1e-9));
    c.segments = 0;
    c.unacked = 0;
    c.againLength = 0;
    c.reset = rng.next() < 0.1;
    c.clientCloses = rng.next() < 0.6;
    c.tsBase = rng.u32();
    c.generation++;
    c.sent = 0;
    connections++;
  };
  const heap = new SlotHeap(slots);
  // The capture starts on a busy box: every slot's first connection is already established (the
  // capture joins it midstream) and sends its next request some time within one think time, or
  // within the capture when that is shorter, so all slots are live from the start.
  const firstWindow = Math.min(thinkMean, packets / rate);
  for (let s = 0; s < slots; s++) {
    const c = new Connection();
    startConnection(c, s);
    c.phase = Phase.Request;
    conns.push(c);
    heap.push(start + rng.next() * firstWindow, s);
  }

  let time = start;
  for (let n = 0; n < packets; n++) {
    time = heap.time[0];
    const slot = heap.slot[0];
    const c = conns[slot];
    const ms = Math.floor((time - start) * 1000);
    const tsC = (c.tsBase + ms) >>> 0;
    const tsS = (c.tsBase + 0x10000000 + ms) >>> 0;
    let fromServer = false;
    let seq = 0;
    let ack = 0;
    let flags = ACK;
    let payload = 0;
    let next = TURNAROUND;
    let restart = false;
    switch (c.phase) {
      case Phase.Syn:
        flags = SYN;
        seq = c.cSeq;
        c.cSeq = (c.cSeq + 1) >>> 0;
        c.phase = Phase.SynAck;
        next = c.rtt;
        break;
      case Phase.SynAck:
        fromServer = true;
        flags = SYN | ACK;
        seq = c.sSeq;
        ack = c.cSeq;
        c.sSeq = (c.sSeq + 1) >>> 0;
        c.phase = Phase.HandshakeAck;
        break;
      case Phase.HandshakeAck:
        seq = c.cSeq;
        ack = c.sSeq;
        c.phase = Phase.Request;
        next = 2 * TURNAROUND;
        break;
      case Phase.Request:
      case Phase.RequestAgain: {
        // The client's request; the first segment of the response acknowledges it.
        flags = ACK | PSH;
        ack = c.sSeq;
        if (c.phase === Phase.RequestAgain) {
          seq = c.againSeq;
          payload = c.againLength;
        } else {
          seq = c.cSeq;
          payload = 80 + rng.int(700);
          c.cSeq = (c.cSeq + payload) >>> 0;
        }
        if (c.phase === Phase.Request && rng.next() < retransmitRate) {
          // Lost on the way: sent again after the retransmission timeout, or, for a few requests
          // (stormRate), again and again with the timeout doubling each time (the path is gone).
          c.againSeq = seq;
          c.againLength = payload;
          c.phase = Phase.RequestAgain;
          c.storm = rng.next() < stormRate / retransmitRate ? 3 + rng.int(6) : 1;
          c.stormWait = c.rto;
          next = c.rto;
        } else if (c.phase === Phase.RequestAgain && --c.storm > 0) {
          c.stormWait *= 2;
          next = c.stormWait;
        } else if (c.phase === Phase.RequestAgain && c.stormWait > c.rto && rng.next() < 0.5) {
          // After a storm: half the time the client gives up and resets the connection.
          c.phase = Phase.Reset;
          c.clientCloses = true;
          next = 2 * c.stormWait;
        } else {
          c.phase = Phase.Response;
          c.segments = 1 + rng.int(6);
          c.responseSegments = c.segments;
          c.unacked = 0;
          next = c.rtt;
        }
        break;
      }
      case Phase.Response:
      case Phase.ResponseAgain:
        fromServer = true;
        flags = ACK | PSH;
        ack = c.cSeq;
        if (c.phase === Phase.ResponseAgain) {
          seq = c.againSeq;
          payload = c.againLength;
          c.phase = Phase.ResponseAck;
          next = TURNAROUND;
          break;
        }
        seq = c.sSeq;
        payload = c.segments === 1 ? 100 + rng.int(MSS - 100) : MSS;
        c.sSeq = (c.sSeq + payload) >>> 0;
        c.segments--;
        c.unacked++;
        // One loss per this many data segments on average: the tail loss stands for the response's.
        if (c.segments === 0 && rng.next() < retransmitRate * c.responseSegments) {
          // The tail of the response is lost: no ACK comes, the server re-sends it after its RTO.
          c.againSeq = seq;
          c.againLength = payload;
          c.phase = Phase.ResponseAgain;
          next = c.rto;
        } else if (c.unacked === 2 || c.segments === 0) {
          c.phase = Phase.ResponseAck;
          next = TURNAROUND;
        } else {
          next = SEGMENT_SPACING;
        }
        break;
      case Phase.ResponseAck:
        // The client acknowledges every second segment and the end of the response.
        seq = c.cSeq;
        ack = c.sSeq;
        c.unacked = 0;
        if (c.segments > 0) {
          c.phase = Phase.Response;
          next = SEGMENT_SPACING;
        } else if (--c.exchanges > 0) {
          c.phase = Phase.Request;
          next = exponential(thinkMean);
        } else {
          c.phase = c.reset ? Phase.Reset : Phase.Fin;
          next = exponential(thinkMean) * 0.5;
        }
        break;
      case Phase.Fin:
        fromServer = !c.clientCloses;
        flags = FIN | ACK;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        if (fromServer) c.sSeq = (c.sSeq + 1) >>> 0;
        else c.cSeq = (c.cSeq + 1) >>> 0;
        c.phase = Phase.FinAck;
        next = fromServer ? c.rtt : TURNAROUND;
        break;
      case Phase.FinAck:
        fromServer = c.clientCloses;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        c.phase = Phase.PeerFin;
        next = 5 * TURNAROUND;
        break;
      case Phase.PeerFin:
        fromServer = c.clientCloses;
        flags = FIN | ACK;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        if (fromServer) c.sSeq = (c.sSeq + 1) >>> 0;
        else c.cSeq = (c.cSeq + 1) >>> 0;
        c.phase = Phase.LastAck;
        next = fromServer ? TURNAROUND : c.rtt;
        break;
      case Phase.LastAck:
        fromServer = !c.clientCloses;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        restart = true;
        next = exponential(thinkMean);
        break;
      case Phase.Reset:
        fromServer = !c.clientCloses;
        flags = RST | ACK;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        restart = true;
        next = exponential(thinkMean);
        break;
    }
    // The server side's packets come from the address and port the client's went to, and they
    // carry the opposite roles; the window is raw (scale 7 is negotiated in every SYN).
    const src = fromServer ? c.serverIp : c.clientIp;
    const dst = fromServer ? c.clientIp : c.serverIp;
    const sport = fromServer ? c.serverPort : c.clientPort;
    const dport = fromServer ? c.clientPort : c.serverPort;
    const ipId = fromServer ? c.sIpId++ : c.cIpId++;
    const window = (flags & SYN) !== 0 ? 64240 : fromServer ? 509 : 502;
    const ttl = fromServer ? 63 : 64;
    const wire = fb.build(src, dst, sport, dport, seq, ack, flags, window, payload, ipId, ttl,
      fromServer ? tsS : tsC, (flags & SYN) !== 0 && !fromServer ? 0 : fromServer ? tsC : tsS);
    writer.raw(time, fb.frame, wire);
    c.sent++;
    if (restart) startConnection(c, slot);
    heap.replaceTop(time + next, slot);
  }
  // Connections started but not yet sent a packet are not in the capture.
  for (const c of conns) if (c.sent === 0) connections--;
  return { packets: writer.packets, bytes: writer.bytes + 24, connections, duration: time - start };
}

function generateFlood(writer: PcapWriter, options: GenerateOptions): GenerateResult {
  const tuples = options.tuples ?? 1_000_000;
  const rng = new Rng(options.seed ?? 1);
  const rate = options.rate ?? 100_000;
  const start = options.start ?? 1_700_000_000;
  const fb = new FrameBuilder();
  const target = ipv4(192, 168, 1, 1);
  let time = start;
  for (let i = 0; i < tuples; i++) {
    time += -Math.log(1 - rng.next()) / rate;
    // 16 source ports per source address make every tuple distinct; destination ports are random.
    const src = (ipv4(100, 64, 0, 0) + (i >>> 4)) >>> 0;
    const sport = 40000 + (i & 15);
    const dport = 1 + rng.int(65535);
    const isn = rng.u32();
    const ms = Math.floor((time - start) * 1000);
    let wire = fb.build(src, target, sport, dport, isn, 0, SYN, 1024, 0, rng.int(65536), 50, ms, 0);
    writer.raw(time, fb.frame, wire);
    const answer = rng.next();
    if (answer < 0.25) {
      time += 0.00005;
      wire = fb.build(target, src, dport, sport, 0, (isn + 1) >>> 0, RST | ACK, 0, 0, 0, 64, 0, 0);
      writer.raw(time, fb.frame, wire);
    } else if (answer < 0.3) {
      const sisn = rng.u32();
      time += 0.00005;
      wire = fb.build(target, src, dport, sport, sisn, (isn + 1) >>> 0, SYN | ACK, 64240, 0, 0, 64, ms, ms);
      writer.raw(time, fb.frame, wire);
      time += 0.00005;
      wire = fb.build(src, target, sport, dport, (isn + 1) >>> 0, 0, RST, 0, 0, rng.int(65536), 50, 0, 0);
      writer.raw(time, fb.frame, wire);
    }
  }
  return { packets: writer.packets, bytes: writer.bytes + 24, connections: tuples, duration: time - start };
}

function parseArgs(argv: readonly string[]): GenerateOptions {
  const options: GenerateOptions = { output: '' };
  const number = (name: string, value: string | undefined): number => {
    const n = Number(value?.replace(/_/g, '').replace(/[kK]$/, '000').replace(/[mM]$/, '000000'));
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: not a number: ${value}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    switch (arg) {
      case '--packets': options.packets = number('packets', value); i++; break;
      case '--flows': options.flows = number('flows', value); i++; break;
      case '--flow-packets': options.flowPackets = number('flow-packets', value); i++; break;
      case '--tuples': options.tuples = number('tuples', value); i++; break;
      case '--seed': options.seed = number('seed', value); i++; break;
      case '--snaplen': options.snaplen = number('snaplen', value); i++; break;
      case '--rate': options.rate = number('rate', value); i++; break;
      case '--retransmit-rate': options.retransmitRate = number('retransmit-rate', value); i++; break;
      case '--storm-rate': options.stormRate = number('storm-rate', value); i++; break;
      case '--flood': options.mode = 'flood'; break;
      case '-o':
      case '--output': options.output = value ?? ''; i++; break;
      case '-h':
      case '--help':
        process.stdout.write(
          'usage: node dist/bench/generate.js -o FILE [--packets N] [--flows F] [--flow-packets M] [--seed S]\n' +
          '                                   [--rate PPS] [--snaplen N] [--retransmit-rate R] [--storm-rate R]\n' +
          '       node dist/bench/generate.js -o FILE --flood [--tuples N] [--seed S]\n' +
          'Numbers take k/M suffixes (1M, 200k).\n');
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  if (options.output === '') throw new Error('-o FILE is required');
  return options;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const options = parseArgs(process.argv.slice(2));
    const t0 = performance.now();
    const result = generateCapture(options);
    process.stderr.write(
      `${options.output}: ${result.packets} packets, ${result.connections} connections, ` +
      `${(result.bytes / 1e6).toFixed(1)} MB, ${result.duration.toFixed(1)} s of traffic ` +
      `(written in ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  } catch (error) {
    process.stderr.write(`generate: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}
