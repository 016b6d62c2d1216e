/**
 * A seeded, structure-aware mutator for capture files, for the hostile-input fuzz test
 * (fuzz.test.ts) and the long fuzz run (bench/fuzz.ts).
 *
 * It indexes a capture on its own (records of classic pcap, blocks of pcapng, and in each packet
 * the IP and TCP headers), independently of src/capture and src/decode, so that its idea of where
 * the length fields are does not share a bug with the code under test. Mutations are chosen to reach
 * the code behind each check: random bit flips and truncation, but also length fields set to the
 * values that sit on either side of each bound, blocks spliced, repeated and swapped, and header
 * fields of IPv4, IPv6 and TCP set to the values the decoder must refuse.
 *
 * Every case is a pure function of (seed, case index): a failure is replayed from those two numbers.
 */

/** Mulberry32: small, fast, identical everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform integer in [0, n); 0 when n <= 0. */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.next() * n);
  }
  u32(): number {
    return (this.next() * 4294967296) >>> 0;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** The seed of one case: a mix of the run's seed and the case index. */
export function caseSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

export type UnitKind = 'header' | 'record' | 'block';

export interface Unit {
  /** Offset of the record or block in the file. */
  at: number;
  length: number;
  kind: UnitKind;
  /** pcapng block type; 0 for classic pcap. */
  type: number;
  /** Offset and captured length of the packet bytes; -1 when the unit holds no packet. */
  data: number;
  dataLength: number;
  /** Offset of the field holding the captured length (pcap record, EPB, OPB); -1 otherwise. */
  caplenAt: number;
  /** Offset of the original-length field; -1 when there is none. */
  origlenAt: number;
  /** Offset of the timestamp (two 32-bit words); -1 when there is none (SPB). */
  timeAt: number;
}

export interface Layout {
  format: 'pcap' | 'pcapng' | 'unknown';
  littleEndian: boolean;
  /** Link type of classic pcap, or of the first interface block. */
  linkType: number;
  units: Unit[];
}

const SHB = 0x0a0d0d0a;

function u32(b: Uint8Array, at: number, le: boolean): number {
  if (at < 0 || at + 4 > b.length) return 0;
  return le
    ? (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0
    : ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function u16(b: Uint8Array, at: number, le: boolean): number {
  if (at < 0 || at + 2 > b.length) return 0;
  return le ? b[at]! | (b[at + 1]! << 8) : (b[at]! << 8) | b[at + 1]!;
}

export function setU32(b: Uint8Array, at: number, value: number, le: boolean): void {
  if (at < 0 || at + 4 > b.length) return;
  const v = value >>> 0;
  if (le) {
    b[at] = v & 0xff; b[at + 1] = (v >>> 8) & 0xff; b[at + 2] = (v >>> 16) & 0xff; b[at + 3] = v >>> 24;
  } else {
    b[at] = v >>> 24; b[at + 1] = (v >>> 16) & 0xff; b[at + 2] = (v >>> 8) & 0xff; b[at + 3] = v & 0xff;
  }
}

export function setU16(b: Uint8Array, at: number, value: number, le: boolean): void {
  if (at < 0 || at + 2 > b.length) return;
  if (le) {
    b[at] = value & 0xff; b[at + 1] = (value >>> 8) & 0xff;
  } else {
    b[at] = (value >>> 8) & 0xff; b[at + 1] = value & 0xff;
  }
}

/** Indexes a capture as far as its structure holds together. Never throws. */
export function layout(b: Uint8Array): Layout {
  const none: Layout = { format: 'unknown', littleEndian: true, linkType: 1, units: [] };
  if (b.length < 4) return none;
  const magic = u32(b, 0, true);
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d || magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) {
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    const out: Layout = { format: 'pcap', littleEndian: le, linkType: u32(b, 20, le) & 0xffff, units: [] };
    if (b.length < 24 || u16(b, 4, le) !== 2) return out;
    out.units.push({ at: 0, length: 24, kind: 'header', type: 0, data: -1, dataLength: 0, caplenAt: -1, origlenAt: -1, timeAt: -1 });
    // Before 2.3 the two length fields were written in the other order.
    const swapped = u16(b, 4, le) === 2 && u16(b, 6, le) < 3;
    let at = 24;
    while (at + 16 <= b.length) {
      const capAt = at + (swapped ? 12 : 8);
      const caplen = u32(b, capAt, le);
      if (caplen > b.length - at - 16) break;
      out.units.push({
        at, length: 16 + caplen, kind: 'record', type: 0, data: at + 16, dataLength: caplen,
        caplenAt: capAt, origlenAt: at + (swapped ? 8 : 12), timeAt: at,
      });
      at += 16 + caplen;
    }
    return out;
  }
  if (magic !== SHB || b.length < 12) return none;
  let le = u32(b, 8, true) === 0x1a2b3c4d;
  const out: Layout = { format: 'pcapng', littleEndian: le, linkType: -1, units: [] };
  let at = 0;
  while (at + 12 <= b.length) {
    if (u32(b, at, true) === SHB) {
      le = u32(b, at + 8, true) === 0x1a2b3c4d;
      if (u16(b, at + 12, le) !== 1) break;
    }
    const type = u32(b, at, le);
    const length = u32(b, at + 4, le);
    if (length < 12 || length % 4 !== 0 || length > b.length - at) break;
    const unit: Unit = { at, length, kind: 'block', type, data: -1, dataLength: 0, caplenAt: -1, origlenAt: -1, timeAt: -1 };
    if ((type === 6 || type === 2) && length >= 32) {
      unit.caplenAt = at + 20;
      unit.origlenAt = at + 24;
      unit.timeAt = at + 12;
      unit.data = at + 28;
      unit.dataLength = Math.min(u32(b, at + 20, le), length - 32);
    } else if (type === 3 && length >= 16) {
      unit.origlenAt = at + 8;
      unit.data = at + 12;
      unit.dataLength = length - 16;
    } else if (type === 1 && length >= 20 && out.linkType < 0) {
      out.linkType = u16(b, at + 8, le);
    }
    out.units.push(unit);
    at += length;
  }
  out.littleEndian = u32(b, 8, true) === 0x1a2b3c4d;
  if (out.linkType < 0) out.linkType = 1;
  return out;
}

/** Where the IP header of a packet starts, for the link types the lab and corpus use; -1 if unknown. */
export function ipOffset(b: Uint8Array, unit: Unit, linkType: number): number {
  if (unit.data < 0) return -1;
  const d = unit.data;
  const end = d + unit.dataLength;
  let at: number;
  switch (linkType) {
    case 1: {
      at = d + 12;
      let type = u16(b, at, false);
      while ((type === 0x8100 || type === 0x88a8 || type === 0x9100) && at + 6 <= end) {
        at += 4;
        type = u16(b, at, false);
      }
      if (type !== 0x0800 && type !== 0x86dd) return -1;
      at += 2;
      break;
    }
    case 113:
      at = d + 16;
      break;
    case 276:
      at = d + 20;
      break;
    case 0:
    case 108:
      at = d + 4;
      break;
    case 12:
    case 14:
    case 101:
    case 228:
    case 229:
      at = d;
      break;
    default:
      return -1;
  }
  return at < end ? at : -1;
}

/** Where the TCP header after the IP header at `ip` starts; -1 when the packet is not plain TCP. */
export function tcpOffset(b: Uint8Array, ip: number, end: number): number {
  if (ip < 0 || ip >= end) return -1;
  const version = b[ip]! >> 4;
  if (version === 4 && ip + 20 <= end && b[ip + 9] === 6) return ip + ((b[ip]! & 0x0f) << 2);
  if (version === 6 && ip + 40 <= end && b[ip + 6] === 6) return ip + 40;
  return -1;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Length values on either side of every bound the reader and decoder check. */
function lengthValue(rng: Rng, current: number): number {
  return rng.pick([
    0, 1, 2, 3, 4, 7, 8, 11, 12, 13, 14, 15, 16, 19, 20, 24, 27, 28, 31, 32, 33,
    current - 4, current - 1, current + 1, current + 2, current + 3, current + 4, current * 2,
    65535, 65536, 262143, 262144, 262145, 0x00ffffff, 0x01000000, 0x01000004, 0x01000001,
    0x40000000, 0x7fffffff, 0x7ffffff0, 0xfffffff0, 0xfffffffc, 0xffffffff,
    rng.u32(), rng.int(256), rng.int(70000),
  ]) >>> 0;
}

const LINK_TYPES = [0, 1, 9, 10, 12, 14, 101, 105, 108, 113, 127, 228, 229, 239, 276, 284, 285, 0xffff, 0x8000];

export interface Seed {
  name: string;
  bytes: Uint8Array;
}

type Mutation = (rng: Rng, b: Uint8Array, l: Layout, seeds: readonly Seed[]) => Uint8Array;

/** Packets of a layout, with where their IP and TCP headers are (-1 when not found). */
function packets(b: Uint8Array, l: Layout): { unit: Unit; ip: number; tcp: number }[] {
  const out: { unit: Unit; ip: number; tcp: number }[] = [];
  for (const unit of l.units) {
    if (unit.data < 0) continue;
    const ip = ipOffset(b, unit, l.linkType);
    out.push({ unit, ip, tcp: tcpOffset(b, ip, unit.data + unit.dataLength) });
  }
  return out;
}

const bitFlips: Mutation = (rng, b) => {
  const out = b.slice();
  for (let n = 1 + rng.int(rng.chance(0.2) ? 64 : 8); n > 0 && out.length > 0; n--) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
};

const byteSets: Mutation = (rng, b) => {
  const out = b.slice();
  for (let n = 1 + rng.int(6); n > 0 && out.length > 0; n--) out[rng.int(out.length)] = rng.pick([0, 1, 0x7f, 0x80, 0xfe, 0xff, rng.int(256)]);
  return out;
};

const truncate: Mutation = (rng, b, l) => {
  if (rng.chance(0.5) && l.units.length > 1) {
    // Near a unit boundary: inside a header, just before or after its length field (rarely the
    // file header, which only makes an unreadable file).
    const unit = rng.chance(0.05) ? l.units[0]! : l.units[1 + rng.int(l.units.length - 1)]!;
    return b.slice(0, Math.max(0, Math.min(b.length, unit.at + rng.int(40) - 4)));
  }
  return b.slice(0, rng.chance(0.05) ? rng.int(b.length + 1) : 24 + rng.int(Math.max(0, b.length - 23)));
};

const lengthField: Mutation = (rng, b, l) => {
  const out = b.slice();
  const le = l.littleEndian;
  const units = l.units.filter((u) => u.kind !== 'header');
  if (units.length === 0) return bitFlips(rng, b, l, []);
  const unit = rng.pick(units);
  const value = lengthValue(rng, unit.length);
  if (l.format === 'pcap') {
    const field = rng.chance(0.6) ? unit.caplenAt : unit.origlenAt;
    setU32(out, field, lengthValue(rng, unit.dataLength), le);
    if (rng.chance(0.3)) setU32(out, unit.origlenAt, lengthValue(rng, unit.dataLength), le);
    return out;
  }
  switch (rng.int(5)) {
    case 0: // leading length only
      setU32(out, unit.at + 4, value, le);
      return out;
    case 1: // trailing length only
      setU32(out, unit.at + unit.length - 4, value, le);
      return out;
    case 2: // both, so the trailer check passes and the next check is reached
      setU32(out, unit.at + 4, value, le);
      setU32(out, unit.at + unit.length - 4, value, le);
      return out;
    case 3: {
      // A consistent block shorter than its fixed header: length 12..28 with the trailer after it.
      const shorter = 12 + 4 * rng.int(5);
      if (shorter >= unit.length) return out;
      setU32(out, unit.at + 4, shorter, le);
      setU32(out, unit.at + shorter - 4, shorter, le);
      return out;
    }
    default: // packet block: captured or original length
      if (unit.caplenAt >= 0 && rng.chance(0.6)) setU32(out, unit.caplenAt, lengthValue(rng, unit.dataLength), le);
      else if (unit.origlenAt >= 0) setU32(out, unit.origlenAt, lengthValue(rng, unit.dataLength), le);
      return out;
  }
};

const splice: Mutation = (rng, b, l, seeds) => {
  const units = l.units.filter((u) => u.kind !== 'header');
  if (units.length === 0) return truncate(rng, b, l, seeds);
  const unit = rng.pick(units);
  const bytes = b.subarray(unit.at, unit.at + unit.length);
  const before = b.subarray(0, unit.at);
  const after = b.subarray(unit.at + unit.length);
  switch (rng.int(6)) {
    case 0: // delete
      return concat(before, after);
    case 1: // duplicate
      return concat(before, bytes, bytes, after);
    case 2: { // repeat many times (a block loop as a writer bug would leave it)
      const parts = [before];
      for (let n = 2 + rng.int(200); n > 0; n--) parts.push(bytes);
      parts.push(after);
      return concat(...parts);
    }
    case 3: { // swap with another unit
      const other = rng.pick(units);
      if (other === unit) return b.slice();
      const [x, y] = other.at < unit.at ? [other, unit] : [unit, other];
      return concat(b.subarray(0, x.at), b.subarray(y.at, y.at + y.length), b.subarray(x.at + x.length, y.at),
        b.subarray(x.at, x.at + x.length), b.subarray(y.at + y.length));
    }
    case 4: { // a unit of another capture (maybe another format or byte order) spliced in
      const seed = rng.pick(seeds);
      const sl = layout(seed.bytes);
      if (sl.units.length === 0) return b.slice();
      const donor = rng.pick(sl.units);
      return concat(before, seed.bytes.subarray(donor.at, donor.at + donor.length), bytes, after);
    }
    default: { // the tail of another capture, whole headers included (cat of two files)
      const seed = rng.pick(seeds);
      return concat(b.subarray(0, unit.at + unit.length), seed.bytes.subarray(0, rng.int(seed.bytes.length + 1)));
    }
  }
};

const ipField: Mutation = (rng, b, l) => {
  const candidates = packets(b, l).filter((p) => p.ip >= 0);
  if (candidates.length === 0) return byteSets(rng, b, l, []);
  const out = b.slice();
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const { ip, unit } = rng.pick(candidates);
    const end = unit.data + unit.dataLength;
    if (ip + 1 > end) continue;
    if (out[ip]! >> 4 === 4) {
      switch (rng.int(6)) {
        case 0: out[ip] = (rng.chance(0.8) ? 0x40 : rng.int(16) << 4) | rng.pick([0, 1, 2, 3, 4, 5, 6, 15, rng.int(16)]); break;
        case 1: setU16(out, ip + 2, rng.pick([0, 1, 19, 20, 21, 39, 40, 41, 0xffff, rng.int(0x10000)]), false); break;
        case 2: out[ip + 9] = rng.pick([6, 4, 41, 47, 17, 0, 1, 255]); break;
        case 3: setU16(out, ip + 6, rng.pick([0x2000, 0x2001, 0x0001, 0x1fff, 0x4000, rng.int(0x10000)]), false); break;
        case 4: out[ip + 8] = rng.pick([0, 1, 64, 128, 255]); break;
        default: setU16(out, ip + 4, rng.int(0x10000), false);
      }
    } else {
      const ext = ip + 40;
      switch (rng.int(4)) {
        case 0: setU16(out, ip + 4, rng.pick([0, 1, 7, 8, 20, 0xffff, rng.int(0x10000)]), false); break;
        case 1:
          // An extension header that names itself as the next one: a loop if followed naively.
          out[ip + 6] = rng.pick([0, 43, 44, 51, 60]);
          if (ext + 2 <= end) {
            out[ext] = rng.chance(0.7) ? out[ip + 6]! : rng.pick([0, 6, 43, 44, 51, 60, 59]);
            out[ext + 1] = rng.pick([0, 1, 255, rng.int(256)]);
          }
          break;
        case 2: out[ip + 6] = rng.pick([6, 4, 41, 47, 58, 59, rng.int(256)]); break;
        default: out[ip] = rng.int(256);
      }
    }
  }
  return out;
};

const tcpField: Mutation = (rng, b, l) => {
  const candidates = packets(b, l).filter((p) => p.tcp >= 0);
  if (candidates.length === 0) return ipField(rng, b, l, []);
  const out = b.slice();
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const { tcp, unit } = rng.pick(candidates);
    const end = unit.data + unit.dataLength;
    if (tcp + 20 > end) continue;
    switch (rng.int(8)) {
      case 0: out[tcp + 12] = (rng.pick([0, 1, 4, 5, 6, 8, 15, rng.int(16)]) << 4) | (out[tcp + 12]! & 0x0f); break;
      case 1: out[tcp + 13] = rng.pick([0x02, 0x12, 0x10, 0x04, 0x14, 0x01, 0x11, 0x18, 0xff, 0x00, 0x03, 0x07, rng.int(256)]); break;
      case 2: setU32(out, tcp + 4, rng.pick([0, 0xffffffff, 0x7fffffff, 0x80000000, rng.u32()]), false); break;
      case 3: setU32(out, tcp + 8, rng.pick([0, 0xffffffff, 0x80000000, rng.u32()]), false); break;
      case 4: setU16(out, tcp + 14, rng.pick([0, 1, 0xffff]), false); break;
      case 5: setU16(out, tcp + rng.pick([0, 2]), rng.pick([0, 1, 80, 443, 65535, rng.int(65536)]), false); break;
      case 6: {
        // Options: a kind with length 0, 1, 2 or one running past the header.
        const hl = (out[tcp + 12]! >> 4) << 2;
        const opt = tcp + 20 + rng.int(Math.max(1, hl - 20));
        if (opt + 2 <= end) {
          out[opt] = rng.pick([2, 3, 4, 5, 8, 30, 34, rng.int(256)]);
          out[opt + 1] = rng.pick([0, 1, 2, 3, 4, 10, 18, 34, 40, 255]);
        }
        break;
      }
      default: // SACK blocks with random edges
        if (tcp + 32 <= end && out[tcp + 12]! >> 4 >= 8) {
          out[tcp + 20] = 5;
          out[tcp + 21] = 10;
          setU32(out, tcp + 22, rng.u32(), false);
          setU32(out, tcp + 26, rng.u32(), false);
        }
    }
  }
  return out;
};

const timestamps: Mutation = (rng, b, l) => {
  const units = l.units.filter((u) => u.timeAt >= 0);
  if (units.length === 0) return bitFlips(rng, b, l, []);
  const out = b.slice();
  const le = l.littleEndian;
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const unit = rng.pick(units);
    const words = [0, 1, 999999, 1000000, 999999999, 1000000000, 0x7fffffff, 0x80000000, 0xffffffff, rng.u32()];
    setU32(out, unit.timeAt + 4 * rng.int(2), rng.pick(words), le);
    // Backwards in time: a copy of an earlier packet's timestamp
    if (rng.chance(0.3)) {
      const earlier = units[rng.int(units.indexOf(unit) + 1)]!;
      out.copyWithin(unit.timeAt, earlier.timeAt, earlier.timeAt + 8);
    }
  }
  return out;
};

const headers: Mutation = (rng, b, l) => {
  const out = b.slice();
  const le = l.littleEndian;
  if (l.format === 'pcap') {
    switch (rng.int(4)) {
      case 0: setU32(out, 20, rng.chance(0.7) ? rng.pick(LINK_TYPES) : rng.u32(), le); break;
      case 1: setU32(out, 16, lengthValue(rng, 65535), le); break;
      case 2: setU16(out, 6, rng.pick([0, 1, 2, 3, 4, 0xffff]), le); break;
      default: if (rng.chance(0.2)) setU16(out, 4, rng.pick([1, 3]), le);
    }
    return out;
  }
  const idbs = l.units.filter((u) => u.type === 1 && u.length >= 20);
  const shbs = l.units.filter((u) => u.type === SHB);
  if (idbs.length > 0 && rng.chance(0.8)) {
    const idb = rng.pick(idbs);
    switch (rng.int(4)) {
      case 0: setU16(out, idb.at + 8, rng.pick(LINK_TYPES), le); break;
      case 1: setU32(out, idb.at + 12, lengthValue(rng, 65535), le); break;
      default: {
        // Replace the option list: if_tsresol (any byte) and if_tsoffset (any 64-bit value).
        const room = idb.length - 20;
        const opt = idb.at + 16;
        if (room >= 8) {
          setU16(out, opt, 9, le);
          setU16(out, opt + 2, rng.chance(0.8) ? 1 : rng.int(0x10000), le);
          out[opt + 4] = rng.pick([0, 1, 3, 6, 9, 10, 19, 20, 30, 63, 64, 127, 0x80, 0x94, 0x9e, 0xbf, 0xff, rng.int(256)]);
        }
        if (room >= 20 && rng.chance(0.6)) {
          setU16(out, opt + 8, 14, le);
          setU16(out, opt + 10, 8, le);
          setU32(out, opt + 12, rng.pick([0, 0x7fffffff, 0xffffffff, rng.u32()]), true);
          setU32(out, opt + 16, rng.pick([0, 0x7fffffff, 0x80000000, 0xffffffff, rng.u32()]), true);
        }
      }
    }
    return out;
  }
  if (shbs.length > 0) {
    const shb = rng.pick(shbs);
    switch (rng.int(3)) {
      case 0: setU16(out, shb.at + 12, rng.pick([0, 1, 1, 1, 2]), le); setU16(out, shb.at + 14, rng.int(0x10000), le); break;
      case 1: setU32(out, shb.at + 8, rng.pick([0x1a2b3c4d, 0x4d3c2b1a, 0, rng.u32()]), true); break;
      default: setU16(out, shb.at + 26, rng.int(0x10000), le);
    }
  }
  return out;
};

/** Claims of huge packets that are not there: original lengths near 4 GiB with IP total length 0. */
const hugeClaims: Mutation = (rng, b, l) => {
  const out = b.slice();
  const le = l.littleEndian;
  for (const p of packets(b, l)) {
    if (!rng.chance(0.3)) continue;
    setU32(out, p.unit.origlenAt, rng.pick([0xffffffff, 0xfffffff0, 0x80000000, 0x10000, 70000]), le);
    if (p.ip >= 0 && out[p.ip]! >> 4 === 4 && rng.chance(0.6)) setU16(out, p.ip + 2, 0, false);
    if (p.ip >= 0 && out[p.ip]! >> 4 === 6 && rng.chance(0.6)) setU16(out, p.ip + 4, 0, false);
  }
  return out;
};

/** A small flood: packets moved to random 4-tuples, so eviction runs on a small conversation cap. */
const scatterTuples: Mutation = (rng, b, l) => {
  const out = b.slice();
  for (const p of packets(b, l)) {
    if (p.tcp < 0 || !rng.chance(0.5)) continue;
    setU16(out, p.tcp, rng.int(65536), false);
    if (p.ip >= 0 && out[p.ip]! >> 4 === 4) setU32(out, p.ip + 12, rng.u32(), false);
    if (p.ip >= 0 && out[p.ip]! >> 4 === 6) setU32(out, p.ip + 20, rng.u32(), false);
  }
  return out;
};

/** New gaps between packets: bursts, idle periods of minutes to years, steps back in time. */
const retime: Mutation = (rng, b, l) => {
  const units = l.units.filter((u) => u.timeAt >= 0);
  if (units.length === 0) return timestamps(rng, b, l, []);
  const out = b.slice();
  const le = l.littleEndian;
  const micro = l.format === 'pcap' && (u32(b, 0, true) === 0xa1b2c3d4 || u32(b, 0, true) === 0xd4c3b2a1);
  let sec = u32(b, units[0]!.timeAt, le);
  for (const unit of units) {
    if (l.format !== 'pcap') {
      // pcapng: move the 64-bit count by a random amount in its own units
      if (rng.chance(0.2)) setU32(out, unit.timeAt + 4, rng.u32(), le);
      if (rng.chance(0.05)) setU32(out, unit.timeAt, u32(out, unit.timeAt, le) + rng.pick([1, 0xffffffff, rng.int(16)]), le);
      continue;
    }
    sec = (sec + rng.pick([0, 0, 0, 1, 2, 5, 30, 121, 3600, 86400 * 365, -1, -60, rng.int(1000)])) >>> 0;
    setU32(out, unit.timeAt, sec, le);
    setU32(out, unit.timeAt + 4, rng.int(micro ? 1000000 : 1000000000), le);
  }
  return out;
};

/** Packets of the same conversations with their flags rewritten: resets, SYNs and FINs mid-stream. */
const flagsMany: Mutation = (rng, b, l) => {
  const out = b.slice();
  const flags = [0x02, 0x12, 0x04, 0x14, 0x01, 0x11, 0x19, 0x10, 0x18, 0x06, 0x03, 0x00, 0x29, 0xc2];
  const rate = rng.pick([0.02, 0.1, 0.5]);
  for (const p of packets(b, l)) {
    if (p.tcp >= 0 && p.tcp + 14 <= p.unit.data + p.unit.dataLength && rng.chance(rate)) out[p.tcp + 13] = rng.pick(flags);
  }
  return out;
};

/** Neighbouring records swapped: reordering as a capture on several CPUs or a merge leaves it. */
const reorder: Mutation = (rng, b, l) => {
  const units = l.units.filter((u) => u.data >= 0);
  if (units.length < 2) return bitFlips(rng, b, l, []);
  let out = b;
  for (let n = 1 + rng.int(8); n > 0; n--) {
    const ul = layout(out).units.filter((u) => u.data >= 0);
    if (ul.length < 2) break;
    const i = rng.int(ul.length - 1);
    const x = ul[i]!;
    const y = ul[i + 1]!;
    if (x.at + x.length !== y.at) continue;
    out = concat(out.subarray(0, x.at), out.subarray(y.at, y.at + y.length), out.subarray(x.at, x.at + x.length), out.subarray(y.at + y.length));
  }
  return out === b ? b.slice() : out;
};

export const MUTATIONS: readonly [Mutation, number][] = [
  [bitFlips, 14],
  [byteSets, 8],
  [truncate, 8],
  [lengthField, 16],
  [splice, 12],
  [ipField, 14],
  [tcpField, 14],
  [timestamps, 6],
  [headers, 6],
  [hugeClaims, 3],
  [scatterTuples, 3],
  [retime, 5],
  [flagsMany, 5],
  [reorder, 5],
];
const TOTAL_WEIGHT = MUTATIONS.reduce((n, [, w]) => n + w, 0);

function pickMutation(rng: Rng): Mutation {
  let r = rng.int(TOTAL_WEIGHT);
  for (const [m, w] of MUTATIONS) {
    if (r < w) return m;
    r -= w;
  }
  return bitFlips;
}

/** One to four mutations of a copy of `seed`; `seeds` give material for splicing. */
export function mutate(rng: Rng, seed: Uint8Array, seeds: readonly Seed[], trace?: string[]): Uint8Array {
  let bytes = seed;
  for (let n = 1 + rng.int(rng.chance(0.2) ? 4 : 2); n > 0; n--) {
    const mutation = pickMutation(rng);
    trace?.push(mutation.name);
    bytes = mutation(rng, bytes, layout(bytes), seeds);
  }
  return bytes === seed ? seed.slice() : bytes;
}

/**
 * The first `maxUnits` records or blocks of a capture (with the headers and interface blocks that
 * come first), so that large lab captures make quick seeds.
 */
export function crop(bytes: Uint8Array, maxUnits: number): Uint8Array {
  const l = layout(bytes);
  if (l.units.length <= maxUnits) return bytes;
  const last = l.units[maxUnits - 1]!;
  return bytes.slice(0, last.at + last.length);
}
