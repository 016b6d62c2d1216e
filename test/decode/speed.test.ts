import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PacketDecoder } from '../../src/decode/decoder.js';
import { DecodedPacket } from '../../src/decode/packet.js';
import { CORPUS_DIR } from '../helpers/paths.js';
import { readRecords } from './helpers/capture-file.js';

/**
 * Decode speed, measured on request only (timing has no place in a pass/fail suite):
 *   CONNSCOPE_BENCH=1 node --test dist/test/decode/speed.test.js
 * Records are read into memory first, so only the decoder is timed, for about two seconds per
 * capture; packets/s is reported as a test diagnostic. CONNSCOPE_BENCH_FILES (colon-separated)
 * replaces the default, zeek's echo-connections.pcap.gz (82,582 TCP packets over Ethernet).
 */
const files = process.env.CONNSCOPE_BENCH_FILES?.split(':')
  ?? [join(CORPUS_DIR, 'zeek/testing/btest/Traces/echo-connections.pcap.gz')];
const skip = process.env.CONNSCOPE_BENCH === undefined ? 'set CONNSCOPE_BENCH=1 to measure' : false;

for (const file of files) {
  test(`decode speed: ${file}`, { skip: skip || (existsSync(file) ? false : 'capture not here') }, (t) => {
    const records = readRecords(file);
    const decoder = new PacketDecoder();
    const out = new DecodedPacket();
    let decoded = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < 2) {
      for (let i = 0; i < records.length; i++) decoder.decode(records[i], out);
      decoded += records.length;
      elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    }
    const perSecond = Math.round(decoded / elapsed);
    t.diagnostic(`${records.length.toLocaleString('en-US')} packets in the capture, ` +
      `${perSecond.toLocaleString('en-US')} packets/s (${(1e9 / perSecond).toFixed(0)} ns/packet)`);
  });
}
