import { CaptureError, CaptureRecord, type CaptureInfo, type RecordSink } from './record.js';

const SNIFF = 0;
const PCAP = 1;
const PCAPNG = 2;

const PCAP_HEADER = 24;
const PCAP_RECORD_HEADER = 16;
/** libpcap's and Wireshark's ceiling for one packet on ordinary link types (max_snaplen_for_dlt). */
const MAX_PCAP_CAPLEN = 262144;
/**
 * The most we agree to buffer for one record or block, whatever a length field claims. A pcap
 * header snaplen above 256 KiB (USB, D-Bus captures) raises the per-record ceiling up to this.
 */
const MAX_BLOCK = 16 * 1024 * 1024;

const SHB = 0x0a0d0d0a;
const IDB = 1;
const OPB = 2;
const SPB = 3;
const EPB = 6;
const BOM = 0x1a2b3c4d;
const BOM_SWAPPED = 0x4d3c2b1a;

/** Bits 16-25 (Reserved3) and 27 (R) of the pcap LinkType field; FCS length (28-31) and P (26) are legal. */
const LINKTYPE_RESERVED = 0x0bff0000;

const TWO_32 = 4294967296;
const TWO_21 = 2097152;

/**
 * Push parser for classic pcap and pcapng. Feed it chunks of any size in order; it delivers every
 * complete packet to the sink as soon as the chunk holding its last byte arrives. Records are read
 * in place from the chunk; only a record split across chunks is copied (into a small carry buffer).
 */
export class CaptureParser {
  private readonly info: CaptureInfo;
  private readonly record = new CaptureRecord();
  private state = SNIFF;
  private le = true;
  private done = false;
  /** Absolute offset of the first byte of the chunk being pushed. */
  private base = 0;
  /** Absolute offset of index 0 of the buffer being parsed (chunk or carry), for messages. */
  private origin = 0;

  private carry = new Uint8Array(65536);
  private carryView = new DataView(this.carry.buffer);
  private carryLen = 0;
  private carryAt = 0;

  // Classic pcap, fixed by the file header.
  private linkType = 0;
  private tsScale = 1000;
  private capOff = 8;
  private lenOff = 12;
  private maybeSwapped = false;
  private snaplen = 0;
  private maxCaplen = MAX_PCAP_CAPLEN;
  /** Captured length above which to note the header's snaplen was wrong; Infinity once noted. */
  private warnAbove = Infinity;

  // pcapng: interfaces are numbered across the whole file; a section's ids start at sectionBase.
  private sections = 0;
  private sectionBase = 0;
  private sectionIfs = 0;
  /** Timestamp units per second, or 0 when too fine for exact double arithmetic (see ifUnitsBig). */
  private readonly ifUnits: number[] = [];
  private readonly ifUnitsBig: bigint[] = [];
  private readonly ifNsPerUnit: number[] = [];
  private readonly ifOffset: number[] = [];
  private readonly ifSnaplen: number[] = [];

  constructor(
    private readonly path: string,
    private readonly sink: RecordSink,
  ) {
    this.info = {
      path,
      format: 'unknown',
      byteOrder: 'unknown',
      nanosecond: false,
      linkTypes: [],
      snaplen: 0,
      packets: 0,
      bytesRead: 0,
      truncated: false,
      warnings: [],
    };
  }

  /** True once reading has ended early: later input would be ignored, so a source may stop reading. */
  get stopped(): boolean {
    return this.done;
  }

  /** Parses a chunk. Throws CaptureError only while the file header is still being read. */
  push(chunk: Uint8Array): void {
    if (this.done || chunk.length === 0) return;
    let o = 0;
    if (this.carryLen > 0) {
      o = this.fillCarry(chunk);
      if (o < 0) {
        this.base += chunk.length;
        return;
      }
    }
    if (o < chunk.length) {
      this.origin = this.base;
      const end = this.run(chunk, new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength), o, chunk.length);
      if (!this.done && end < chunk.length) {
        // The tail is shorter than the unit it starts, whose length was validated: bounded.
        this.ensureCarry(chunk.length - end);
        this.carry.set(chunk.subarray(end), 0);
        this.carryLen = chunk.length - end;
        this.carryAt = this.base + end;
      }
    }
    this.base += chunk.length;
  }

  /** Ends the input: reports a partial last record, or throws CaptureError if no header was read. */
  finish(): CaptureInfo {
    const info = this.info;
    if (this.done) return info;
    this.done = true;
    info.bytesRead = this.base;
    if (this.state === SNIFF) {
      if (this.base === 0) throw new CaptureError(`${this.path}: empty file`);
      const head = this.carry.subarray(0, this.carryLen);
      if (this.carryLen >= 4 && this.carryView.getUint32(0, true) === SHB) {
        throw new CaptureError(`${this.path}: truncated pcapng section header (${this.carryLen} bytes)`);
      }
      if (this.carryLen >= 4) {
        throw new CaptureError(`${this.path}: truncated pcap header (${this.carryLen} of ${PCAP_HEADER} bytes)`);
      }
      throw this.notCapture(head);
    }
    if (this.carryLen > 0) {
      info.truncated = true;
      let what = `record ${info.packets + 1} incomplete`;
      if (this.state === PCAPNG && this.carryLen >= 4) {
        const type = this.carryView.getUint32(0, this.le);
        if (type !== EPB && type !== SPB && type !== OPB) {
          what = `block of type 0x${type.toString(16)} at byte ${this.carryAt} incomplete`;
        }
      }
      info.warnings.push(`capture truncated at byte ${this.base} (${what})`);
    }
    return info;
  }

  private run(b: Uint8Array, v: DataView, o: number, end: number): number {
    while (!this.done) {
      if (this.state === PCAP) return this.pcapLoop(b, v, o, end);
      if (this.state === PCAPNG) return this.pcapngLoop(b, v, o, end);
      const size = this.unitSize(v, o, end - o, b);
      if (size <= 0 || size > end - o) return o;
      this.unit(b, v, o, size);
      o += size;
    }
    return end;
  }

  /** Completes the unit held in the carry from the front of the chunk. Returns where to go on, or -1. */
  private fillCarry(chunk: Uint8Array): number {
    this.origin = this.carryAt;
    let o = 0;
    for (;;) {
      const have = this.carryLen;
      const size = this.unitSize(this.carryView, 0, have, this.carry);
      if (this.done) return -1;
      const want = size < 0 ? -size : size;
      if (have < want) {
        const take = Math.min(want - have, chunk.length - o);
        if (take === 0) return -1;
        this.ensureCarry(want);
        this.carry.set(chunk.subarray(o, o + take), have);
        this.carryLen = have + take;
        o += take;
        continue;
      }
      this.unit(this.carry, this.carryView, 0, size);
      this.carryLen = 0;
      return this.done ? -1 : o;
    }
  }

  private ensureCarry(n: number): void {
    if (this.carry.length >= n) return;
    const next = new Uint8Array(Math.max(n, Math.min(this.carry.length * 2, MAX_BLOCK)));
    next.set(this.carry.subarray(0, this.carryLen));
    this.carry = next;
    this.carryView = new DataView(next.buffer);
  }

  /**
   * Length of the unit (header, record or block) at o, or minus the number of bytes needed to know
   * it, or 0 when the length is invalid (reading has then stopped).
   */
  private unitSize(v: DataView, o: number, avail: number, b: Uint8Array): number {
    if (this.state === PCAP) {
      if (avail < PCAP_RECORD_HEADER) return -PCAP_RECORD_HEADER;
      const caplen = this.pcapCaplen(v, o);
      if (caplen > this.maxCaplen) return this.badCaplen(o, caplen);
      return PCAP_RECORD_HEADER + caplen;
    }
    if (this.state === PCAPNG) return this.blockSize(v, o, avail);
    if (avail < 4) return -4;
    switch (v.getUint32(o, true)) {
      case 0xa1b2c3d4:
      case 0xd4c3b2a1:
      case 0xa1b23c4d:
      case 0x4d3cb2a1:
        return PCAP_HEADER;
      case SHB:
        return this.blockSize(v, o, avail);
      default:
        throw this.notCapture(b.subarray(o, o + 4));
    }
  }

  private unit(b: Uint8Array, v: DataView, o: number, size: number): void {
    if (this.state === PCAP) this.pcapRecord(b, v, o, size - PCAP_RECORD_HEADER);
    else if (this.state === PCAPNG || v.getUint32(o, true) === SHB) this.block(b, v, o, size);
    else this.pcapHeader(v, o);
  }

  /**
   * Damage: in the file header it means the input is unreadable; after it, reading stops at byte
   * `at`, which becomes bytesRead so that the result does not depend on how the input was chunked.
   */
  private damaged(at: number, message: string): void {
    if (this.state === SNIFF) throw new CaptureError(`${this.path}: ${message}`);
    this.info.bytesRead = at;
    this.info.truncated = true;
    this.info.warnings.push(`${message}; stopped reading`);
    this.done = true;
  }

  private notCapture(head: Uint8Array): CaptureError {
    const text = String.fromCharCode(...head);
    const shown = /^[\x20-\x7e\t\r\n]*$/.test(text)
      ? JSON.stringify(text)
      : `bytes ${Array.from(head, (x) => x.toString(16).padStart(2, '0')).join(' ')}`;
    return new CaptureError(`${this.path}: not a pcap or pcapng file (starts with ${shown})`);
  }

  // ---- classic pcap ----

  private pcapHeader(v: DataView, o: number): void {
    const magic = v.getUint32(o, true);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    const major = v.getUint16(o + 4, le);
    const minor = v.getUint16(o + 6, le);
    if (major !== 2) {
      throw new CaptureError(`${this.path}: unsupported pcap version ${major}.${minor} (only 2.x is defined)`);
    }
    // libpcap: before 2.3 the two length fields were written in the other order; 2.3 files exist
    // in both orders, told apart per record by caplen <= len.
    if (minor < 3) {
      this.capOff = 12;
      this.lenOff = 8;
    }
    this.maybeSwapped = minor === 3;
    const snaplen = v.getUint32(o + 16, le);
    const field = v.getUint32(o + 20, le);
    this.le = le;
    this.tsScale = magic === 0xa1b23c4d || magic === 0x4d3cb2a1 ? 1 : 1000;
    this.linkType = field & 0xffff;
    this.snaplen = snaplen;
    this.warnAbove = snaplen === 0 ? Infinity : snaplen;
    this.maxCaplen = snaplen > MAX_PCAP_CAPLEN && snaplen <= MAX_BLOCK ? snaplen : MAX_PCAP_CAPLEN;
    this.state = PCAP;
    const info = this.info;
    info.format = 'pcap';
    info.byteOrder = le ? 'little' : 'big';
    info.nanosecond = this.tsScale === 1;
    info.linkTypes.push(this.linkType);
    info.snaplen = snaplen;
    if ((field & LINKTYPE_RESERVED) !== 0) {
      info.warnings.push(
        `link-type field 0x${field.toString(16).padStart(8, '0')} has reserved bits set; using link type ${this.linkType}`,
      );
    }
  }

  private pcapCaplen(v: DataView, o: number): number {
    const caplen = v.getUint32(o + this.capOff, this.le);
    return this.maybeSwapped ? Math.min(caplen, v.getUint32(o + this.lenOff, this.le)) : caplen;
  }

  private pcapLoop(b: Uint8Array, v: DataView, o: number, end: number): number {
    const max = this.maxCaplen;
    while (end - o >= PCAP_RECORD_HEADER) {
      const caplen = this.pcapCaplen(v, o);
      if (caplen > max) {
        this.badCaplen(o, caplen);
        return end;
      }
      if (end - o - PCAP_RECORD_HEADER < caplen) break;
      this.pcapRecord(b, v, o, caplen);
      o += PCAP_RECORD_HEADER + caplen;
    }
    return o;
  }

  private badCaplen(o: number, caplen: number): number {
    this.damaged(
      this.origin + o,
      `corrupt record ${this.info.packets + 1} at byte ${this.origin + o}: captured length ${caplen} ` +
        `exceeds the ${this.maxCaplen}-byte maximum`,
    );
    return 0;
  }

  private pcapRecord(b: Uint8Array, v: DataView, o: number, caplen: number): void {
    const le = this.le;
    const rec = this.record;
    const sec = v.getUint32(o, le);
    const frac = v.getUint32(o + 4, le) * this.tsScale;
    const other = v.getUint32(o + this.lenOff, le);
    rec.frame = ++this.info.packets;
    rec.linkType = this.linkType;
    rec.interfaceId = 0;
    if (frac < 1e9) {
      rec.tsSec = sec;
      rec.tsNsec = frac;
    } else {
      rec.tsSec = sec + Math.floor(frac / 1e9);
      rec.tsNsec = frac % 1e9;
    }
    rec.capturedLength = caplen;
    // caplen > len is tolerated, as libpcap and Wireshark do: the record is still well-formed.
    rec.originalLength = this.maybeSwapped ? Math.max(other, v.getUint32(o + this.capOff, le)) : other;
    rec.data = b;
    rec.offset = o + PCAP_RECORD_HEADER;
    if (caplen > this.warnAbove) this.warnSnaplen(o, caplen);
    this.sink(rec);
  }

  /**
   * Writers are known to put a too-small snaplen in the header (zeek's trunc-hdr.pcap: snaplen 1,
   * an 8-byte packet) and libpcap and Wireshark read such records, so this is a note, not damage.
   */
  private warnSnaplen(o: number, caplen: number): void {
    this.warnAbove = Infinity;
    this.info.warnings.push(
      `record ${this.info.packets} at byte ${this.origin + o}: captured length ${caplen} exceeds the ` +
        `file's snaplen ${this.snaplen}`,
    );
  }

  // ---- pcapng ----

  private pcapngLoop(b: Uint8Array, v: DataView, o: number, end: number): number {
    while (!this.done) {
      const avail = end - o;
      const size = this.blockSize(v, o, avail);
      if (size <= 0 || size > avail) break;
      this.block(b, v, o, size);
      o += size;
    }
    return o;
  }

  private blockSize(v: DataView, o: number, avail: number): number {
    if (avail < 8) return -8;
    let le = this.le;
    const type = v.getUint32(o, le);
    if (type === SHB) {
      if (avail < 12) return -12;
      const bom = v.getUint32(o + 8, true);
      if (bom !== BOM && bom !== BOM_SWAPPED) {
        this.damaged(this.origin + o, `bad pcapng section header at byte ${this.origin + o}: byte-order magic 0x${bom.toString(16)}`);
        return 0;
      }
      le = bom === BOM;
    }
    const len = v.getUint32(o + 4, le);
    let problem = '';
    if (len < 12) problem = 'is below the 12-byte minimum';
    else if (len % 4 !== 0) problem = 'is not a multiple of 4';
    else if (len > MAX_BLOCK) problem = `exceeds the ${MAX_BLOCK}-byte limit`;
    if (problem === '') return len;
    this.damaged(this.origin + o, `bad pcapng block at byte ${this.origin + o}: block length ${len} ${problem}`);
    return 0;
  }

  private block(b: Uint8Array, v: DataView, o: number, len: number): void {
    const le = this.le;
    const type = v.getUint32(o, le);
    if (type === SHB) {
      this.sectionHeader(v, o, len);
      return;
    }
    const trailer = v.getUint32(o + len - 4, le);
    if (trailer !== len) {
      this.damaged(
        this.origin + o,
        `bad pcapng block at byte ${this.origin + o}: trailing length ${trailer} differs from leading length ${len}`,
      );
      return;
    }
    if (type === EPB || type === OPB) this.packetBlock(b, v, o, len, type);
    else if (type === SPB) this.simplePacket(b, v, o, len);
    else if (type === IDB) this.interfaceBlock(v, o, len);
    // Other blocks (statistics, name resolution, secrets, custom...) carry no packets.
  }

  private sectionHeader(v: DataView, o: number, len: number): void {
    const at = this.origin + o;
    const le = v.getUint32(o + 8, true) === BOM;
    if (len < 28) {
      this.damaged(at, `bad pcapng section header at byte ${at}: block length ${len} is below the 28-byte minimum`);
      return;
    }
    const trailer = v.getUint32(o + len - 4, le);
    if (trailer !== len) {
      this.damaged(at, `bad pcapng section header at byte ${at}: trailing length ${trailer} differs from leading length ${len}`);
      return;
    }
    const major = v.getUint16(o + 12, le);
    const minor = v.getUint16(o + 14, le);
    // A new major version means the blocks themselves changed: nothing after this can be trusted.
    if (major !== 1) {
      this.damaged(at, `unsupported pcapng version ${major}.${minor} in section ${this.sections + 1} at byte ${at}`);
      return;
    }
    if (!this.optionsFit(v, o + 24, o + len - 4, le, at, 'section header')) return;
    this.le = le;
    this.sections++;
    this.sectionBase = this.info.linkTypes.length;
    this.sectionIfs = 0;
    if (this.state === SNIFF) {
      this.state = PCAPNG;
      this.info.format = 'pcapng';
      this.info.byteOrder = le ? 'little' : 'big';
    }
  }

  /** Walks an option list; false (and reading stopped) if an option runs past the block. */
  private optionsFit(v: DataView, p: number, end: number, le: boolean, at: number, what: string): boolean {
    while (end - p >= 4) {
      const code = v.getUint16(p, le);
      if (code === 0) break;
      const next = p + 4 + ((v.getUint16(p + 2, le) + 3) & ~3);
      if (next > end) {
        const olen = v.getUint16(p + 2, le);
        this.damaged(at, `bad pcapng ${what} at byte ${at}: option ${code} of length ${olen} runs past the block`);
        return false;
      }
      p = next;
    }
    return true;
  }

  private interfaceBlock(v: DataView, o: number, len: number): void {
    const le = this.le;
    const at = this.origin + o;
    if (len < 20) {
      this.damaged(at, `bad pcapng interface block at byte ${at}: block length ${len} is below the 20-byte minimum`);
      return;
    }
    const end = o + len - 4;
    if (!this.optionsFit(v, o + 16, end, le, at, 'interface block')) return;
    let resol = 6;
    let offset = 0;
    for (let p = o + 16; end - p >= 4; ) {
      const code = v.getUint16(p, le);
      const olen = v.getUint16(p + 2, le);
      if (code === 0) break;
      if (code === 9 && olen === 1) resol = v.getUint8(p + 4);
      else if (code === 14 && olen === 8) offset = Number(v.getBigInt64(p + 4, le));
      p += 4 + ((olen + 3) & ~3);
    }
    // if_tsresol: high bit set means a negative power of 2, else a negative power of 10.
    const exp = resol & 0x7f;
    const pow2 = (resol & 0x80) !== 0;
    const units = pow2 ? 2 ** exp : 10 ** exp;
    // Below 2^31 units/s the split into seconds stays within 2^53 (see setTime); 1e9/units is then
    // exact enough that rem * it floors to the right nanosecond (2^-k: 1953125 * 2^(9-k) exactly).
    const exact = units < 2 ** 31;
    this.ifUnits.push(exact ? units : 0);
    this.ifUnitsBig.push(pow2 ? 1n << BigInt(exp) : 10n ** BigInt(exp));
    this.ifNsPerUnit.push(1e9 / units);
    this.ifOffset.push(offset);
    const snaplen = v.getUint32(o + 12, le);
    this.ifSnaplen.push(snaplen);
    const info = this.info;
    if (info.linkTypes.length === 0) {
      info.snaplen = snaplen;
      info.nanosecond = units > 1e6;
    }
    info.linkTypes.push(v.getUint16(o + 8, le));
    this.sectionIfs++;
  }

  private packetBlock(b: Uint8Array, v: DataView, o: number, len: number, type: number): void {
    const le = this.le;
    if (len < 32) {
      this.badPacket(o, `block length ${len} is below the 32-byte minimum`);
      return;
    }
    const id = type === EPB ? v.getUint32(o + 8, le) : v.getUint16(o + 8, le);
    if (id >= this.sectionIfs) {
      this.badPacket(o, `interface ${id} is not defined in its section (${this.sectionIfs} defined)`);
      return;
    }
    const caplen = v.getUint32(o + 20, le);
    if (caplen > len - 32) {
      this.badPacket(o, `captured length ${caplen} exceeds its ${len}-byte block`);
      return;
    }
    const g = this.sectionBase + id;
    const rec = this.record;
    rec.frame = ++this.info.packets;
    rec.linkType = this.info.linkTypes[g]!;
    rec.interfaceId = g;
    // The high word comes first whatever the byte order.
    this.setTime(v.getUint32(o + 12, le), v.getUint32(o + 16, le), g);
    rec.capturedLength = caplen;
    rec.originalLength = v.getUint32(o + 24, le);
    rec.data = b;
    rec.offset = o + 28;
    this.sink(rec);
  }

  private simplePacket(b: Uint8Array, v: DataView, o: number, len: number): void {
    if (len < 16) {
      this.badPacket(o, `block length ${len} is below the 16-byte minimum`);
      return;
    }
    if (this.sectionIfs === 0) {
      this.badPacket(o, 'simple packet block before any interface block in its section');
      return;
    }
    const g = this.sectionBase;
    const origlen = v.getUint32(o + 8, this.le);
    const snaplen = this.ifSnaplen[g]!;
    // The block holds min(original length, snaplen) bytes plus padding.
    let caplen = Math.min(origlen, len - 16);
    if (snaplen !== 0 && snaplen < caplen) caplen = snaplen;
    const rec = this.record;
    rec.frame = ++this.info.packets;
    rec.linkType = this.info.linkTypes[g]!;
    rec.interfaceId = g;
    // Simple packet blocks carry no timestamp.
    rec.tsSec = 0;
    rec.tsNsec = 0;
    rec.capturedLength = caplen;
    rec.originalLength = origlen;
    rec.data = b;
    rec.offset = o + 12;
    this.sink(rec);
  }

  private badPacket(o: number, problem: string): void {
    this.damaged(this.origin + o, `corrupt record ${this.info.packets + 1} at byte ${this.origin + o}: ${problem}`);
  }

  /** Splits a 64-bit count of interface g's units into seconds and nanoseconds without BigInt. */
  private setTime(hi: number, lo: number, g: number): void {
    const rec = this.record;
    const units = this.ifUnits[g]!;
    let sec: number;
    let rem: number;
    if (units === 0) {
      const big = this.ifUnitsBig[g]!;
      const t = (BigInt(hi) << 32n) | BigInt(lo);
      rec.tsSec = Number(t / big) + this.ifOffset[g]!;
      rec.tsNsec = Number(((t % big) * 1_000_000_000n) / big);
      return;
    }
    if (hi < TWO_21) {
      const t = hi * TWO_32 + lo;
      sec = Math.floor(t / units);
      rem = t - sec * units;
    } else {
      // Long division in digits of 32, 21 and 11 bits keeps every intermediate below 2^53.
      const q1 = Math.floor(hi / units);
      rem = hi - q1 * units;
      let cur = rem * TWO_21 + (lo >>> 11);
      let q2 = Math.floor(cur / units);
      rem = cur - q2 * units;
      if (rem < 0) {
        q2--;
        rem += units;
      }
      cur = rem * 2048 + (lo & 0x7ff);
      const q3 = Math.floor(cur / units);
      rem = cur - q3 * units;
      sec = (q1 * TWO_21 + q2) * 2048 + q3;
    }
    // The floating quotient can round up across an integer, never down.
    if (rem < 0) {
      sec--;
      rem += units;
    }
    rec.tsSec = sec + this.ifOffset[g]!;
    rec.tsNsec = Math.floor(rem * this.ifNsPerUnit[g]!);
  }
}
