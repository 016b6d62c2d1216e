import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { PacketDecoder } from '../../src/decode/decoder.js';
import { DecodedPacket } from '../../src/decode/packet.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { readRecords } from './helpers/capture-file.js';

/**
 * The hot path allocates nothing per packet. Garbage collection only starts when allocation fills
 * the young generation (at most 16 MiB), so three million decodes allocating even one 12-byte heap
 * number each would cause at least two collections. One is allowed: the setup may have left the
 * young generation nearly full, and a one-off allocation (optimizing a new path) can tip it over.
 * Records of several link types keep the code paths mixed.
 */
test('decoding allocates nothing per packet', async () => {
  const captures = join(REPO_ROOT, 'test', 'decode', 'captures');
  const records = ['sack-blocks.pcap', 'sll2-any.pcap', 'sll-any.pcap', 'snaplen-96.pcap']
    .flatMap((name) => readRecords(join(captures, name)));
  const decoder = new PacketDecoder();
  const out = new DecodedPacket();
  const rounds = Math.ceil(3_000_000 / records.length);
  const run = (n: number): number => {
    let tcp = 0;
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < records.length; i++) if (decoder.decode(records[i], out) === 0) tcp++;
    }
    return tcp;
  };
  run(50);

  const collections: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collections.push(entry.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
  const from = performance.now();
  const tcp = run(rounds);
  const to = performance.now();
  // GC entries are delivered asynchronously; only those that started during the loop count
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  const during = collections.filter((t) => t >= from && t <= to).length;
  assert.ok(tcp > 2_900_000);
  assert.ok(during <= 1, `${during} garbage collections during ${rounds * records.length} decodes`);
});
