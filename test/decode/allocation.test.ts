import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { test } from 'node:test';
import { PacketDecoder } from '../../src/decode/decoder.js';
import { DecodedPacket } from '../../src/decode/packet.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { readRecords } from './helpers/capture-file.js';

/**
 * The hot path allocates nothing per packet. Garbage collection only starts when allocation fills
 * the young generation, so a million decodes that allocate even a few bytes each would trigger
 * scavenges; none may happen. Records of several link types keep the code paths mixed.
 */
test('decoding allocates nothing per packet', async () => {
  const captures = join(REPO_ROOT, 'test', 'decode', 'captures');
  const records = ['sack-blocks.pcap', 'sll2-any.pcap', 'sll-any.pcap', 'snaplen-96.pcap']
    .flatMap((name) => readRecords(join(captures, name)));
  const decoder = new PacketDecoder();
  const out = new DecodedPacket();
  const rounds = Math.ceil(1_000_000 / records.length);
  const run = (n: number): number => {
    let tcp = 0;
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < records.length; i++) if (decoder.decode(records[i], out) === 0) tcp++;
    }
    return tcp;
  };
  run(50);

  let collections = 0;
  const observer = new PerformanceObserver((list) => { collections += list.getEntries().length; });
  observer.observe({ entryTypes: ['gc'] });
  const tcp = run(rounds);
  // GC entries are delivered asynchronously
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  assert.ok(tcp > 900_000);
  assert.equal(collections, 0, `${collections} garbage collections during ${rounds * records.length} decodes`);
});
