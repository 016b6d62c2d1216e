import { closeSync, fsyncSync, write } from 'node:fs';
import type { CaptureRecord } from '../capture/record.js';

/** Snapshot length written in headers: tcpdump's default, above anything libpcap captures here. */
export const PCAP_SNAPLEN = 262_144;

/** Classic pcap global header (little-endian), microsecond or nanosecond timestamps. */
export function pcapHeader(linkType: number, nanosecond: boolean, snaplen = PCAP_SNAPLEN): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeInt32LE(0, 8); // thiszone
  header.writeUInt32LE(0, 12); // sigfigs
  header.writeUInt32LE(snaplen, 16);
  header.writeUInt32LE(linkType, 20);
  return header;
}

/**
 * Appends classic pcap records to large chunks and hands out each finished run as a view, so a busy
 * capture costs one copy per packet and one write per burst rather than one write per packet. A
 * chunk is never written to again below the last hand-out, so the views stay valid while the
 * consumer's asynchronous write holds them.
 */
export class PcapEncoder {
  private chunk: Buffer;
  private pos = 0;
  private start = 0;

  constructor(
    private readonly nanosecond: boolean,
    private readonly emit: (bytes: Buffer) => void,
    private readonly chunkSize = 1 << 20,
  ) {
    this.chunk = Buffer.allocUnsafe(chunkSize);
  }

  /** Bytes appended and not handed out yet. */
  get pending(): number {
    return this.pos - this.start;
  }

  append(tsSec: number, tsNsec: number, data: Uint8Array, offset: number, capturedLength: number, originalLength: number): void {
    const need = 16 + capturedLength;
    if (this.pos + need > this.chunk.length) {
      this.flush();
      this.chunk = Buffer.allocUnsafe(Math.max(this.chunkSize, need));
      this.pos = 0;
      this.start = 0;
    }
    const chunk = this.chunk;
    const p = this.pos;
    chunk.writeUInt32LE(tsSec, p);
    chunk.writeUInt32LE(this.nanosecond ? tsNsec : Math.floor(tsNsec / 1000), p + 4);
    chunk.writeUInt32LE(capturedLength, p + 8);
    chunk.writeUInt32LE(Math.max(originalLength, capturedLength), p + 12);
    chunk.set(data.subarray(offset, offset + capturedLength), p + 16);
    this.pos = p + need;
  }

  /** Hands out everything appended since the last flush. */
  flush(): void {
    if (this.pos === this.start) return;
    const run = this.chunk.subarray(this.start, this.pos);
    this.start = this.pos;
    this.emit(run);
  }
}

/**
 * `-w FILE`: every captured packet as classic pcap, written incrementally in the background (the
 * capture never waits for the disk) and flushed at least once a second, so the file is readable
 * (tshark, `connscope analyze`) while the capture runs and complete after close().
 */
export class PcapFileWriter {
  private readonly encoder: PcapEncoder;
  private headerWritten = false;
  private tail: Promise<void> = Promise.resolve();
  private closed = false;
  /** The close in progress: a second caller (an abort racing the normal end) waits for the same one. */
  private closing: Promise<void> | null = null;
  /** The first write error (disk full, ...); writing stops there. */
  error: string | null = null;
  packets = 0;
  /** Bytes handed to the kernel so far. */
  bytesWritten = 0;

  constructor(
    private readonly fd: number,
    readonly path: string,
    private readonly nanosecond: boolean,
  ) {
    this.encoder = new PcapEncoder(nanosecond, (bytes) => this.enqueue(bytes));
  }

  add(rec: CaptureRecord): void {
    if (this.error !== null || this.closed) return;
    if (!this.headerWritten) this.writeHeader(rec.linkType);
    this.packets++;
    this.encoder.append(rec.tsSec, rec.tsNsec, rec.data, rec.offset, rec.capturedLength, rec.originalLength);
    // Keep the background queue to a few chunks' worth per write.
    if (this.encoder.pending >= 256 * 1024) this.encoder.flush();
  }

  /** Hands buffered packets to the disk (called about once a second). */
  flush(): void {
    if (!this.closed) this.encoder.flush();
  }

  /**
   * Flushes, waits for every write, syncs and closes the file. `linkType` is used if no packet came.
   * Every caller waits for the writes to finish: a process that exits before then can leave half a
   * record at the end of the file.
   */
  close(linkType: number): Promise<void> {
    this.closing ??= this.finishFile(linkType);
    return this.closing;
  }

  private async finishFile(linkType: number): Promise<void> {
    if (!this.headerWritten && this.error === null) this.writeHeader(linkType);
    this.encoder.flush();
    this.closed = true;
    await this.tail;
    try {
      fsyncSync(this.fd);
    } catch {
      // Not every file supports fsync (pipes, /dev/null); the data was written.
    }
    closeSync(this.fd);
  }

  private writeHeader(linkType: number): void {
    this.headerWritten = true;
    this.enqueue(pcapHeader(linkType, this.nanosecond));
  }

  private enqueue(bytes: Buffer): void {
    if (this.error !== null) return;
    // Writes are chained, so each starts at the file position the previous one left (this also
    // works for a FIFO or /dev/stdout, where positioned writes fail).
    this.tail = this.tail.then(() => this.writeAll(bytes));
  }

  private async writeAll(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length && this.error === null) {
      try {
        const n = await new Promise<number>((resolve, reject) => {
          write(this.fd, bytes, done, bytes.length - done, null, (err, written) => (err ? reject(err) : resolve(written)));
        });
        done += n;
        this.bytesWritten += n;
      } catch (err) {
        this.error = `cannot write ${this.path}: ${(err as Error).message}`;
      }
    }
  }
}
