import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CaptureError } from '../../src/capture/record.js';
import { corpusDir, corpusMissing, fixture, parseFile, type Parsed } from './helpers.js';

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
