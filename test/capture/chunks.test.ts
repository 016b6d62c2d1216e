import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CaptureError } from '../../src/capture/record.js';
import { corpusDir, corpusMissing, fixture, parseBytes, parseFile, type Parsed } from './helpers.js';

function outcome(file: string, chunkSize?: number): Parsed | string {
  try {
    return parseFile(file, chunkSize);
  } catch (err) {
    if (err instanceof CaptureError) return `CaptureError: ${err.message}`;
    throw err;
  }
}

const files = [
  ...readdirSync(fixture('.'))
    .filter((f) => /\.(pcap|pcapng|html)$/.test(f))
    .map((f) => fixture(f)),
  ...(corpusMissing
    ? []
    : [
        'gopacket/pcapgo/tests/be/test202.pcapng',
        'gopacket/pcapgo/tests/le/test006.pcapng',
        'gopacket/pcapgo/tests/le/test901.pcapng',
        'zeek/testing/btest/Traces/trunc/trunc-hdr.pcap',
        'derived/reassembly-cut-mid-record.pcap',
      ].map((f) => path.join(corpusDir, f))),
];

describe('chunk boundaries do not change the result', () => {
  for (const file of files) {
    it(path.basename(file), () => {
      const whole = outcome(file);
      // Records, warnings (with their byte offsets) and errors must all be the same.
      for (const size of [1, 7, 4096]) assert.deepEqual(outcome(file, size), whole, `chunks of ${size}`);
    });
  }
});

it('damaged bytes anywhere: a CaptureError or a result, the same for any chunking', () => {
  const sources = readdirSync(fixture('.'))
    .filter((f) => /^pcap.*\.(pcap|pcapng)$/.test(f))
    .map((f) => readFileSync(fixture(f)));
  // A fixed linear congruential generator: the same mutations on every run.
  let seed = 1;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const run = (bytes: Uint8Array, chunkSize: number): Parsed | string => {
    try {
      return parseBytes('mutant', bytes, chunkSize);
    } catch (err) {
      if (err instanceof CaptureError) return err.message;
      throw err;
    }
  };
  for (let i = 0; i < 300; i++) {
    const bytes = Buffer.from(sources[random(sources.length)]!);
    for (let k = 1 + random(8); k > 0; k--) bytes[random(bytes.length)] = random(256);
    const whole = run(bytes, bytes.length);
    if (typeof whole !== 'string') {
      for (const r of whole.records) assert.ok(r.tsNsec >= 0 && r.tsNsec < 1e9 && Number.isInteger(r.tsNsec));
    }
    assert.deepEqual(run(bytes, 1 + random(64)), whole, `mutant ${i}`);
  }
});
