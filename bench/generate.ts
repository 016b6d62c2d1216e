/**
 * Deterministic synthetic captures for the benchmark and the performance tests.
 *
 * Two kinds of traffic, both Ethernet/IPv4/TCP written as classic pcap (microsecond timestamps,
 * snaplen 96 unless told otherwise), streamed through one reused buffer so a capture of any size
 * is never held in memory:
 *
 * - `flows` (default): `flows` concurrent TCP connections. Each packet comes from a randomly chosen
 *   slot, which plays one connection after another: SYN / SYN-ACK (MSS, SACK, timestamps, window
 *   scale) / ACK, request and response data with cumulative ACKs every second segment, about 1% of
 *   data segments retransmitted, then a FIN close (both sides, 90%) or an RST (10%), and the slot
 *   starts the next connection from a new client port. Connection length is exponential around
 *   `flowPackets`. So the number of live connections stays `flows` while the number of connections
 *   in the file grows with its length.
 * - `flood`: `tuples` distinct 4-tuples (a SYN scan / SYN flood): one SYN each; a quarter are
 *   answered with RST-ACK (closed port), one in twenty with SYN-ACK and the scanner's RST.
 *
 * The same options and seed always give the same bytes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

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
  /** Fraction of data segments sent twice. */
  retransmitRate?: number;
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

/** Streams pcap records through one buffer; `packet()` writes headers in place. */
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
  Data,
  Fin1,
  Fin1Ack,
  Fin2,
  Fin2Ack,
  Rst,
}

/** One slot's current connection. Stable shape; reused for the slot's next connection. */
class Connection {
  clientIp = 0;
  serverIp = 0;
  clientPort = 0;
  serverPort = 443;
  /** Next sequence number each side sends, and what each side has acknowledged. */
  cSeq = 0;
  sSeq = 0;
  cIpId = 0;
  sIpId = 0;
  phase = Phase.Syn;
  /** Data segments still to send before closing. */
  remaining = 0;
  /** Direction of the current transfer, its segments not yet acknowledged, and still to send. */
  serverSending = false;
  unacked = 0;
  left = 0;
  /** The last data segment each side sent, for a retransmission. */
  lastSeq = 0;
  lastLength = 0;
  lastFromServer = false;
  /** Which side closes first, and whether the connection ends with an RST instead of FINs. */
  clientCloses = true;
  reset = false;
  tsBase = 0;
  generation = 0;
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

function generateFlows(writer: PcapWriter, options: GenerateOptions): GenerateResult {
  const packets = options.packets ?? 1_000_000;
  const slots = Math.max(1, options.flows ?? 10_000);
  const meanLength = Math.max(8, options.flowPackets ?? 40);
  const rng = new Rng(options.seed ?? 1);
  const rate = options.rate ?? 20_000;
  const start = options.start ?? 1_700_000_000;
  const retransmitRate = options.retransmitRate ?? 0.01;
  const fb = new FrameBuilder();

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
    // Exponential length around the mean, handshake and close (7 packets) included.
    const dataMean = meanLength - 7;
    c.remaining = 1 + Math.floor(-Math.log(1 - rng.next()) * dataMean);
    // The first exchange is the client's request.
    c.serverSending = true;
    c.unacked = 0;
    c.left = 0;
    c.lastLength = 0;
    c.reset = rng.next() < 0.1;
    c.clientCloses = rng.next() < 0.6;
    c.tsBase = rng.u32();
    c.generation++;
    connections++;
  };
  for (let s = 0; s < slots; s++) {
    const c = new Connection();
    startConnection(c, s);
    conns.push(c);
  }

  let time = start;
  let ms = 0;
  for (let n = 0; n < packets; n++) {
    time += -Math.log(1 - rng.next()) / rate;
    ms = Math.floor((time - start) * 1000);
    const slot = rng.int(slots);
    const c = conns[slot];
    const tsC = (c.tsBase + ms) >>> 0;
    const tsS = (c.tsBase + 0x10000000 + ms) >>> 0;
    let fromServer = false;
    let seq = 0;
    let ack = 0;
    let flags = ACK;
    let payload = 0;
    let restart = false;
    switch (c.phase) {
      case Phase.Syn:
        flags = SYN;
        seq = c.cSeq;
        c.cSeq = (c.cSeq + 1) >>> 0;
        c.phase = Phase.SynAck;
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
        c.phase = Phase.Data;
        break;
      case Phase.Data: {
        if (c.unacked >= 2 || (c.left === 0 && c.unacked > 0 && (c.serverSending || c.remaining <= 0))) {
          // The receiver of the current transfer acknowledges everything so far.
          fromServer = !c.serverSending;
          seq = fromServer ? c.sSeq : c.cSeq;
          ack = fromServer ? c.cSeq : c.sSeq;
          c.unacked = 0;
          if (c.left === 0 && c.remaining <= 0) c.phase = c.reset ? Phase.Rst : Phase.Fin1;
          break;
        }
        if (c.lastLength > 0 && rng.next() < retransmitRate) {
          // The last data segment again (a retransmission timeout or tail-loss probe).
          fromServer = c.lastFromServer;
          seq = c.lastSeq;
          ack = fromServer ? c.cSeq : c.sSeq;
          payload = c.lastLength;
          flags = ACK | PSH;
          c.lastLength = 0;
          break;
        }
        if (c.left === 0) {
          // The next exchange: a one-segment request, or a response of one to six segments; the
          // response's first segment acknowledges the request.
          c.serverSending = !c.serverSending;
          c.left = c.serverSending ? 1 + rng.int(6) : 1;
          if (c.left > c.remaining) c.left = Math.max(1, c.remaining);
          c.unacked = 0;
        }
        fromServer = c.serverSending;
        payload = fromServer ? (c.left === 1 ? 100 + rng.int(MSS - 100) : MSS) : 80 + rng.int(700);
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        if (fromServer) c.sSeq = (c.sSeq + payload) >>> 0;
        else c.cSeq = (c.cSeq + payload) >>> 0;
        flags = ACK | PSH;
        c.lastSeq = seq;
        c.lastLength = payload;
        c.lastFromServer = fromServer;
        c.left--;
        c.remaining--;
        c.unacked++;
        break;
      }
      case Phase.Fin1:
        fromServer = !c.clientCloses;
        flags = FIN | ACK;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        if (fromServer) c.sSeq = (c.sSeq + 1) >>> 0;
        else c.cSeq = (c.cSeq + 1) >>> 0;
        c.phase = Phase.Fin1Ack;
        break;
      case Phase.Fin1Ack:
        fromServer = c.clientCloses;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        c.phase = Phase.Fin2;
        break;
      case Phase.Fin2:
        fromServer = c.clientCloses;
        flags = FIN | ACK;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        if (fromServer) c.sSeq = (c.sSeq + 1) >>> 0;
        else c.cSeq = (c.cSeq + 1) >>> 0;
        c.phase = Phase.Fin2Ack;
        break;
      case Phase.Fin2Ack:
        fromServer = !c.clientCloses;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        restart = true;
        break;
      case Phase.Rst:
        fromServer = !c.clientCloses;
        flags = RST | ACK;
        seq = fromServer ? c.sSeq : c.cSeq;
        ack = fromServer ? c.cSeq : c.sSeq;
        restart = true;
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
    if (restart) startConnection(c, slot);
  }
  // Connections started but not yet sent a packet are not in the capture.
  for (const c of conns) if (c.phase === Phase.Syn) connections--;
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
      case '--flood': options.mode = 'flood'; break;
      case '-o':
      case '--output': options.output = value ?? ''; i++; break;
      case '-h':
      case '--help':
        process.stdout.write(
          'usage: node dist/bench/generate.js -o FILE [--packets N] [--flows F] [--flow-packets M] [--seed S]\n' +
          '                                   [--rate PPS] [--snaplen N] [--retransmit-rate R]\n' +
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
