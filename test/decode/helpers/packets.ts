import { join } from 'node:path';
import { CaptureRecord } from '../../../src/capture/record.js';
import { PacketDecoder } from '../../../src/decode/decoder.js';
import { DecodeStatus, DecodedPacket, TcpFlag } from '../../../src/decode/packet.js';
import { REPO_ROOT } from '../../helpers/paths.js';
import { readRecords } from './capture-file.js';
import { type Segment, snapshot } from './decode-all.js';

/**
 * Real packets to mutate: tcpdump's capture of a lossy download over loopback (Ethernet link
 * type, IPv4 and IPv6, no TCP timestamps, SACK blocks), from make-captures.sh.
 */
export interface Samples {
  /** IPv4 SYN with MSS, SACK-permitted, NOP, window scale. */
  v4Syn: Uint8Array;
  /** IPv4 segment with 1,460 payload bytes. */
  v4Data: Uint8Array;
  /** IPv4 ACK carrying four SACK blocks. */
  v4Sack: Uint8Array;
  v6Syn: Uint8Array;
  v6Data: Uint8Array;
}

let cached: Samples | null = null;

export function samples(): Samples {
  if (cached !== null) return cached;
  const decoder = new PacketDecoder();
  const out = new DecodedPacket();
  const found: Partial<Samples> = {};
  for (const rec of readRecords(join(REPO_ROOT, 'test', 'decode', 'captures', 'sack-blocks.pcap'))) {
    if (decoder.decode(rec, out) !== DecodeStatus.Tcp) continue;
    const bytes = rec.data.slice(rec.offset, rec.offset + rec.capturedLength);
    const v4 = out.ipVersion === 4;
    if (out.flags === TcpFlag.SYN) found[v4 ? 'v4Syn' : 'v6Syn'] ??= bytes;
    else if (out.payloadLength === 1460 && v4) found.v4Data ??= bytes;
    else if (out.payloadLength > 1000 && !v4) found.v6Data ??= bytes;
    else if (out.sackCount === 4 && v4) found.v4Sack ??= bytes;
  }
  for (const key of ['v4Syn', 'v4Data', 'v4Sack', 'v6Syn', 'v6Data'] as const) {
    if (found[key] === undefined) throw new Error(`sack-blocks.pcap has no ${key}`);
  }
  cached = found as Samples;
  return cached;
}

export interface Outcome {
  status: DecodeStatus;
  /** Fields of the packet as decoded (meaningful for Tcp, partly for Fragment). */
  seg: Segment;
  decoder: PacketDecoder;
}

/** Decodes one packet, placed at a nonzero offset in a larger buffer as the reader delivers it. */
export function decodeBytes(bytes: Uint8Array, linkType = 1, originalLength = bytes.length): Outcome {
  const rec = new CaptureRecord();
  rec.data = new Uint8Array(bytes.length + 37);
  rec.data.set(bytes, 29);
  rec.offset = 29;
  rec.frame = 1;
  rec.linkType = linkType;
  rec.capturedLength = bytes.length;
  rec.originalLength = originalLength;
  const decoder = new PacketDecoder();
  const out = new DecodedPacket();
  const status = decoder.decode(rec, out);
  return { status, seg: snapshot(1, out), decoder };
}

export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return bytes;
}

export function setU16(bytes: Uint8Array, at: number, value: number): Uint8Array {
  bytes[at] = value >> 8;
  bytes[at + 1] = value & 0xff;
  return bytes;
}

export function getU16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

export function u16(value: number): number[] {
  return [value >> 8, value & 0xff];
}

export function u32(value: number): number[] {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

/** The frame after its 14-byte Ethernet header: the IP packet. */
export function ipOf(frame: Uint8Array): Uint8Array {
  return frame.slice(14);
}

/** An Ethernet header (made-up addresses) with the given type, then `payload`. */
export function ether(type: number, payload: Uint8Array): Uint8Array {
  return concat([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], u16(type), payload);
}

/** A 20-byte IPv4 header 192.0.2.1 → 192.0.2.2 around `payload`. */
export function outerIpv4(protocol: number, payload: Uint8Array): Uint8Array {
  return concat([0x45, 0], u16(20 + payload.length), [0, 7, 0, 0, 33, protocol, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2], payload);
}

/** A GRE header with the given flag word and protocol, each present optional field zero. */
export function greHeader(flags: number, protocol: number): number[] {
  const optional = ((flags & 0x8000) !== 0 ? 4 : 0) + ((flags & 0x2000) !== 0 ? 4 : 0) + ((flags & 0x1000) !== 0 ? 4 : 0);
  return [...u16(flags), ...u16(protocol), ...new Array<number>(optional).fill(0)];
}

/**
 * Inserts an IPv6 extension header of `length` bytes (a multiple of 8, zero-filled options) with
 * protocol number `type` straight after the fixed header of the IPv6 packet in an Ethernet frame,
 * fixing the next-header chain and payload length.
 */
export function withExtension(frame: Uint8Array, type: number, length: number): Uint8Array {
  const ext = new Array<number>(length).fill(0);
  ext[0] = frame[14 + 6];
  ext[1] = length / 8 - 1;
  const out = concat(frame.slice(0, 54), ext, frame.slice(54));
  out[14 + 6] = type;
  setU16(out, 14 + 4, getU16(frame, 14 + 4) + length);
  return out;
}
