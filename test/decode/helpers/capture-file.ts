import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { CaptureRecord } from '../../../src/capture/record.js';

/**
 * A minimal pcap/pcapng reader for the decoder's tests, independent of src/capture so that a
 * reader bug cannot hide a decoder bug (or the other way round). Like the project reader, it
 * reuses one CaptureRecord; it stops quietly at the first damaged or incomplete block.
 */
export function forEachRecord(path: string, sink: (rec: CaptureRecord) => void): void {
  let file = readFileSync(path);
  if (file[0] === 0x1f && file[1] === 0x8b) file = gunzipSync(file);
  // A plain Uint8Array view: Buffer's slice() shares memory, where tests expect a copy
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rec = new CaptureRecord();
  rec.data = bytes;
  if (view.byteLength >= 4 && view.getUint32(0, false) === 0x0a0d0d0a) readPcapng(view, rec, sink);
  else readPcap(view, rec, sink);
}

/** Every record of a file, copied: for tests that need packets side by side. */
export function readRecords(path: string): CaptureRecord[] {
  const records: CaptureRecord[] = [];
  forEachRecord(path, (rec) => {
    const copy = new CaptureRecord();
    Object.assign(copy, rec);
    copy.data = rec.data.slice(rec.offset, rec.offset + rec.capturedLength);
    copy.offset = 0;
    records.push(copy);
  });
  return records;
}

function readPcap(view: DataView, rec: CaptureRecord, sink: (rec: CaptureRecord) => void): void {
  if (view.byteLength < 24) return;
  const magic = view.getUint32(0, true);
  let le: boolean;
  let nano: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else return;
  nano = view.getUint32(0, le) === 0xa1b23c4d;
  // The top bits of the link type field carry FCS information, not the type
  rec.linkType = view.getUint32(20, le) & 0xffff;
  let p = 24;
  while (p + 16 <= view.byteLength) {
    const captured = view.getUint32(p + 8, le);
    if (p + 16 + captured > view.byteLength) return;
    rec.frame++;
    rec.tsSec = view.getUint32(p, le);
    rec.tsNsec = view.getUint32(p + 4, le) * (nano ? 1 : 1000);
    rec.capturedLength = captured;
    rec.originalLength = view.getUint32(p + 12, le);
    rec.offset = p + 16;
    sink(rec);
    p += 16 + captured;
  }
}

function readPcapng(view: DataView, rec: CaptureRecord, sink: (rec: CaptureRecord) => void): void {
  let le = true;
  let linkTypes: number[] = [];
  let p = 0;
  while (p + 12 <= view.byteLength) {
    if (view.getUint32(p, true) === 0x0a0d0d0a) {
      le = view.getUint32(p + 8, true) === 0x1a2b3c4d;
      linkTypes = [];
    }
    const type = view.getUint32(p, le);
    const length = view.getUint32(p + 4, le);
    if (length < 12 || p + length > view.byteLength) return;
    if (type === 1) {
      linkTypes.push(view.getUint16(p + 8, le));
    } else if (type === 6 || type === 2) {
      const iface = type === 6 ? view.getUint32(p + 8, le) : view.getUint16(p + 8, le);
      deliver(rec, sink, linkTypes[iface], iface, view.getUint32(p + 20, le), view.getUint32(p + 24, le), p + 28);
    } else if (type === 3) {
      const original = view.getUint32(p + 8, le);
      deliver(rec, sink, linkTypes[0], 0, Math.min(original, length - 16), original, p + 12);
    }
    p += length;
  }
}

function deliver(rec: CaptureRecord, sink: (rec: CaptureRecord) => void, linkType: number | undefined,
                 iface: number, captured: number, original: number, offset: number): void {
  if (linkType === undefined) return;
  rec.frame++;
  rec.linkType = linkType;
  rec.interfaceId = iface;
  rec.capturedLength = captured;
  rec.originalLength = original;
  rec.offset = offset;
  sink(rec);
}
