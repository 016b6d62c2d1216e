import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createGunzip } from 'node:zlib';
import pcapParser from 'pcap-parser';
import { readCapture } from '../../src/capture/read.js';
import { CaptureError } from '../../src/capture/record.js';
import { bytesOf, corpusDir, corpusMissing } from './helpers.js';

interface Seen {
  header: pcapParser.PacketHeader;
  data: Buffer;
}

/** pcap-parser reads classic microsecond pcap only; gzip is handed to it already inflated. */
function referenceRead(file: string): Promise<Seen[]> {
  return new Promise((resolve, reject) => {
    const input = createReadStream(file);
    const parser = pcapParser.parse(file.endsWith('.gz') ? input.pipe(createGunzip()) : input);
    const packets: Seen[] = [];
    parser.on('packet', (p: pcapParser.Packet) => packets.push({ header: p.header, data: Buffer.from(p.data) }));
    parser.on('error', reject);
    parser.on('end', () => resolve(packets));
  });
}

function classicMicrosecondFiles(): string[] {
  if (corpusMissing) return [];
  const [header, ...lines] = readFileSync(path.join(corpusDir, 'expected.tsv'), 'utf8').trimEnd().split('\n');
  const col = header!.split('\t').indexOf('path');
  const files = lines.map((l) => path.join(corpusDir, l.split('\t')[col]!));
  return files.filter((f) => {
    const head = readFileSync(f).subarray(0, 4);
    // Gzip input: decided after inflating, in the test itself.
    return head[0] === 0x1f || ['d4c3b2a1', 'a1b2c3d4'].includes(head.toString('hex'));
  });
}

describe('differential against pcap-parser (classic microsecond pcap)', { skip: corpusMissing }, () => {
  for (const file of classicMicrosecondFiles()) {
    it(path.relative(corpusDir, file), async (t) => {
      const ours: Array<{ sec: number; nsec: number; caplen: number; len: number; data: Buffer }> = [];
      let info;
      try {
        info = await readCapture(file, (r) => {
          ours.push({ sec: r.tsSec, nsec: r.tsNsec, caplen: r.capturedLength, len: r.originalLength, data: Buffer.from(bytesOf(r)) });
        });
      } catch (err) {
        if (!(err instanceof CaptureError)) throw err;
        // pcap-parser's version check is looser; the refusal itself is checked in corpus.test.ts.
        t.skip(`not a readable capture: ${err.message}`);
        return;
      }
      if (info.nanosecond) {
        t.skip('nanosecond pcap: pcap-parser reads microsecond files only');
        return;
      }
      const theirs = await referenceRead(file);
      assert.equal(ours.length, theirs.length, 'packet count');
      ours.forEach((r, i) => {
        const { header, data } = theirs[i]!;
        const where = `record ${i + 1}`;
        assert.equal(r.sec, header.timestampSeconds, `${where} seconds`);
        assert.equal(r.nsec, header.timestampMicroseconds * 1000, `${where} fraction`);
        assert.equal(r.caplen, header.capturedLength, `${where} captured length`);
        assert.equal(r.len, header.originalLength, `${where} original length`);
        assert.ok(r.data.equals(data), `${where} bytes`);
      });
    });
  }
});
