import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaptureParser } from '../../src/capture/parser.js';
import type { CaptureInfo, CaptureRecord } from '../../src/capture/record.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const fixture = (name: string): string => path.join(repoRoot, 'fixtures', 'formats', name);

/** The shared corpus sits beside the repository (CI clones main next to shared/). */
export const corpusDir = process.env['CONNSCOPE_CORPUS'] ?? path.resolve(repoRoot, '..', 'shared', 'corpus');
export const corpusMissing = existsSync(path.join(corpusDir, 'expected.tsv'))
  ? false
  : `corpus not found at ${corpusDir} (set CONNSCOPE_CORPUS)`;

/** A record copied out of the reader's reused CaptureRecord; data as a digest to keep it small. */
export interface Rec {
  frame: number;
  linkType: number;
  interfaceId: number;
  tsSec: number;
  tsNsec: number;
  capturedLength: number;
  originalLength: number;
  data: string;
}

export function bytesOf(r: CaptureRecord): Uint8Array {
  return r.data.subarray(r.offset, r.offset + r.capturedLength);
}

export function copyRecord(r: CaptureRecord): Rec {
  return {
    frame: r.frame,
    linkType: r.linkType,
    interfaceId: r.interfaceId,
    tsSec: r.tsSec,
    tsNsec: r.tsNsec,
    capturedLength: r.capturedLength,
    originalLength: r.originalLength,
    data: createHash('sha1').update(bytesOf(r)).digest('hex'),
  };
}

export interface Parsed {
  info: CaptureInfo;
  records: Rec[];
}

/** Pushes the bytes through a CaptureParser in chunks of the given size. */
export function parseBytes(name: string, bytes: Uint8Array, chunkSize = bytes.length || 1): Parsed {
  const records: Rec[] = [];
  const parser = new CaptureParser(name, (r) => records.push(copyRecord(r)));
  for (let o = 0; o < bytes.length; o += chunkSize) parser.push(bytes.subarray(o, o + chunkSize));
  return { info: parser.finish(), records };
}

export function parseFile(file: string, chunkSize?: number): Parsed {
  return parseBytes(path.basename(file), readFileSync(file), chunkSize);
}

/** Seconds and nanoseconds as tshark prints frame.time_epoch. */
export function epoch(r: Pick<Rec, 'tsSec' | 'tsNsec'>): string {
  return `${r.tsSec}.${String(r.tsNsec).padStart(9, '0')}`;
}

function hasTool(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const tsharkMissing: string | false = hasTool('tshark') ? false : 'tshark not installed';

export interface TsharkFrame {
  /** frame.time_epoch, '' for a simple packet block (no timestamp). */
  time: string;
  len: number;
  caplen: number;
}

/** tshark's view of the packets in a file; pcapng custom blocks, which it lists as frames, left out. */
export function tsharkFrames(file: string): TsharkFrame[] {
  const fields = ['frame.interface_id', 'frame.time_epoch', 'frame.len', 'frame.cap_len'];
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 1 << 28,
  });
  const pcapng = out.length > 0 && readFileSync(file).readUInt32LE(0) === 0x0a0d0d0a;
  return out
    .split('\n')
    .map((line) => line.split('\t'))
    .filter((f) => f.length === 4 && (!pcapng || f[0] !== ''))
    .map(([, time, len, caplen]) => ({ time: time!, len: Number(len), caplen: Number(caplen) }));
}

/** Asserts that records match tshark frame by frame (a missing timestamp reads as 0). */
export function assertMatchesTshark(records: Rec[], frames: TsharkFrame[]): void {
  assert.equal(records.length, frames.length, 'packet count');
  records.forEach((r, i) => {
    const f = frames[i]!;
    assert.equal(f.time === '' ? '0.000000000' : f.time, epoch(r), `frame ${r.frame} time`);
    assert.equal(f.len, r.originalLength, `frame ${r.frame} length`);
    assert.equal(f.caplen, r.capturedLength, `frame ${r.frame} captured length`);
  });
}
