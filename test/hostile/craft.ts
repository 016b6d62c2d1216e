/**
 * Hand-made hostile captures for the end-to-end tests: records taken out of a real capture (by the
 * mutator's own index, not by src/capture), damaged on purpose, and written back as pcap or pcapng.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/paths.js';
import { ipOffset, layout, setU32, tcpOffset } from './mutate.js';

export interface Packet {
  /** Microseconds since the epoch. */
  micros: number;
  data: Uint8Array;
  originalLength: number;
}

/** The packets of a classic pcap, microsecond or nanosecond, either byte order. */
export function packetsOf(bytes: Uint8Array): { linkType: number; packets: Packet[] } {
  const l = layout(bytes);
  if (l.format !== 'pcap') throw new Error('packetsOf reads classic pcap only');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nano = view.getUint32(0, true) === 0xa1b23c4d || view.getUint32(0, true) === 0x4d3cb2a1;
  const packets: Packet[] = [];
  for (const u of l.units) {
    if (u.kind !== 'record') continue;
    const sec = view.getUint32(u.at, l.littleEndian);
    const frac = view.getUint32(u.at + 4, l.littleEndian);
    packets.push({
      micros: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac),
      data: bytes.slice(u.data, u.data + u.dataLength),
      originalLength: view.getUint32(u.origlenAt, l.littleEndian),
    });
  }
  return { linkType: l.linkType, packets };
}

/** Classic little-endian microsecond pcap. Records may override their captured length field. */
export function writePcap(linkType: number, packets: readonly (Packet & { caplenField?: number })[]): Uint8Array {
  const size = 24 + packets.reduce((n, p) => n + 16 + p.data.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 262144, true);
  v.setUint32(20, linkType, true);
  let at = 24;
  for (const p of packets) {
    v.setUint32(at, Math.floor(p.micros / 1e6), true);
    v.setUint32(at + 4, p.micros % 1e6, true);
    v.setUint32(at + 8, p.caplenField ?? p.data.length, true);
    v.setUint32(at + 12, p.originalLength, true);
    out.set(p.data, at + 16);
    at += 16 + p.data.length;
  }
  return out;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** A pcapng section header block (no options). */
export function shb(): Uint8Array {
  const out = new Uint8Array(28);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x0a0d0d0a, true);
  v.setUint32(4, 28, true);
  v.setUint32(8, 0x1a2b3c4d, true);
  v.setUint16(12, 1, true);
  v.setUint16(14, 0, true);
  v.setBigInt64(16, -1n, true);
  v.setUint32(24, 28, true);
  return out;
}

/** An interface description block, with if_tsresol when given. */
export function idb(linkType: number, tsresol?: number): Uint8Array {
  const length = tsresol === undefined ? 20 : 32;
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, length, true);
  v.setUint16(8, linkType, true);
  v.setUint32(12, 262144, true);
  if (tsresol !== undefined) {
    v.setUint16(16, 9, true);
    v.setUint16(18, 1, true);
    out[20] = tsresol;
    // opt_endofopt at 24..27 is zero already
  }
  v.setUint32(length - 4, length, true);
  return out;
}

/** An enhanced packet block on interface 0 with a raw 64-bit timestamp. */
export function epb(timestamp: bigint, data: Uint8Array, originalLength = data.length): Uint8Array {
  const length = 32 + pad4(data.length);
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 6, true);
  v.setUint32(4, length, true);
  v.setUint32(8, 0, true);
  v.setUint32(12, Number(timestamp >> 32n), true);
  v.setUint32(16, Number(timestamp & 0xffffffffn), true);
  v.setUint32(20, data.length, true);
  v.setUint32(24, originalLength, true);
  out.set(data, 28);
  v.setUint32(length - 4, length, true);
  return out;
}

/** Where the IP and TCP headers of an Ethernet frame are (-1 when the frame is not TCP). */
export function headersOf(frame: Uint8Array): { ip: number; tcp: number } {
  const unit = { at: 0, length: frame.length, kind: 'record' as const, type: 0, data: 0, dataLength: frame.length, caplenAt: -1, origlenAt: -1, timeAt: -1 };
  const ip = ipOffset(frame, unit, 1);
  return { ip, tcp: tcpOffset(frame, ip, frame.length) };
}

export { setU32 };

const dir = mkdtempSync(join(tmpdir(), 'connscope-hostile-'));
let files = 0;

/** Writes bytes to a fresh temporary file and returns its path. */
export function tempCapture(bytes: Uint8Array, name = 'capture.pcap'): string {
  const path = join(dir, `${++files}-${name}`);
  writeFileSync(path, bytes);
  return path;
}

export interface CliRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs the real command line with a time limit: a hang is a failure, not a stuck test run. */
export function connscope(args: string[], timeoutMs = 60_000): CliRun {
  const run = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined },
  });
  const timedOut = (run.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { code: run.status, signal: run.signal, stdout: run.stdout ?? '', stderr: run.stderr ?? '', timedOut };
}

/**
 * A SYN flood / port scan against the capture's time span: `tuples` SYNs, each from its own 4-tuple
 * (100.64.0.0/10 sources, 16 ports each, to random ports of 192.0.2.0/24), a quarter of them refused
 * with an RST-ACK. Frames are the template SYN with addresses and ports rewritten (checksums are not
 * checked by anything downstream). Returned in time order with `extra`, as mergecap would merge them.
 */
export function floodAround(template: Packet, extra: readonly Packet[], tuples: number, seed = 1): { packets: Packet[]; refused: number } {
  const { ip, tcp } = headersOf(template.data);
  if (tcp < 0 || template.data[ip]! >> 4 !== 4) throw new Error('the template must be an IPv4 TCP frame');
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const first = Math.min(...extra.map((p) => p.micros)) - 1e6;
  const span = Math.max(...extra.map((p) => p.micros)) + 1e6 - first;
  const frame = (src: number, dst: number, sport: number, dport: number, flags: number, micros: number): Packet => {
    const data = template.data.slice();
    const v = new DataView(data.buffer);
    v.setUint32(ip + 12, src);
    v.setUint32(ip + 16, dst);
    v.setUint16(tcp, sport);
    v.setUint16(tcp + 2, dport);
    v.setUint32(tcp + 4, (random() * 2 ** 32) >>> 0);
    data[tcp + 13] = flags;
    return { micros, data, originalLength: template.originalLength };
  };
  const flood: Packet[] = [];
  let refused = 0;
  for (let i = 0; i < tuples; i++) {
    const src = (0x64400000 + (i >>> 4)) >>> 0;
    const sport = 40000 + (i & 15);
    const dst = (0xc0000200 + 1 + Math.floor(random() * 254)) >>> 0;
    const dport = 1 + Math.floor(random() * 65535);
    const micros = Math.floor(first + (i / tuples) * span);
    flood.push(frame(src, dst, sport, dport, 0x02, micros));
    if (random() < 0.25) {
      refused++;
      flood.push(frame(dst, src, dport, sport, 0x14, micros + 50));
    }
  }
  // Stable: at equal times the capture's own packets keep their order and come first.
  const packets = [...extra, ...flood].sort((a, b) => a.micros - b.micros);
  return { packets, refused };
}
