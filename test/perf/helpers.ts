import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AnalysisResult } from '../../src/core/session.js';
import { writeJsonReport } from '../../src/report/json.js';

/** A scratch directory removed by the returned function. */
export function scratchDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Splits a classic pcap file into `parts` files of consecutive records (the last takes the rest),
 * each with the original file header, as `tcpdump -C` or `editcap -c` would. Returns the paths.
 * Parses only what splitting needs, independently of the capture reader under test.
 */
export function splitPcap(path: string, parts: number, dir: string): string[] {
  const data = readFileSync(path);
  const magic = data.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && magic !== 0xd4c3b2a1 && magic !== 0x4d3cb2a1) throw new Error(`${path}: not a classic pcap file`);
  const header = data.subarray(0, 24);
  const offsets: number[] = [];
  for (let o = 24; o + 16 <= data.length;) {
    offsets.push(o);
    const caplen = le ? data.readUInt32LE(o + 8) : data.readUInt32BE(o + 8);
    o += 16 + caplen;
  }
  offsets.push(data.length);
  const records = offsets.length - 1;
  const per = Math.ceil(records / parts);
  const paths: string[] = [];
  for (let p = 0; p < parts && p * per < records; p++) {
    const from = offsets[p * per];
    const to = offsets[Math.min(records, (p + 1) * per)];
    const out = join(dir, `part${String(p).padStart(3, '0')}.pcap`);
    writeFileSync(out, Buffer.concat([header, data.subarray(from, to)]));
    paths.push(out);
  }
  return paths;
}

/** The JSON report exactly as `connscope analyze --json` writes it. */
export async function jsonReport(result: AnalysisResult): Promise<string> {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  await writeJsonReport(result, sink);
  return chunks.join('');
}
