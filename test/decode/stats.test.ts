import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeStats, decodeWarnings } from '../../src/decode/decoder.js';
import { linkTypeName } from '../../src/decode/link-types.js';
import { DecodeStatus } from '../../src/decode/packet.js';
import { decodeBytes, samples } from './helpers/packets.js';

test('warnings name what was skipped and why', () => {
  const stats = new DecodeStats();
  stats.unsupportedLinkTypes.set(105, 1204);
  stats.unsupportedLinkTypes.set(999, 1);
  stats.byStatus[DecodeStatus.Malformed] = 3;
  stats.byStatus[DecodeStatus.Truncated] = 1;
  stats.byStatus[DecodeStatus.Fragment] = 2;
  stats.damagedOptions = 1;
  assert.deepEqual(decodeWarnings(stats), [
    '1,204 packets of link type 105 (IEEE802_11) skipped',
    '1 packet of link type 999 skipped',
    '3 malformed packets skipped',
    "1 packet skipped: cut by the capture's snaplen before the end of their TCP header",
    '2 packets skipped: IP fragments without a TCP header (no reassembly)',
    '1 TCP packet with a damaged option list: options after the damage ignored',
  ]);
  stats.reset();
  assert.deepEqual(decodeWarnings(stats), []);
  assert.equal(stats.unsupportedLinkTypes.size, 0);
});

test('the decoder counts every packet under its status', () => {
  const { decoder } = decodeBytes(samples().v4Data);
  const stats = decoder.stats;
  assert.equal(stats.packets, 1);
  assert.equal(stats.tcp, 1);
  assert.equal(stats.byStatus.reduce((a, b) => a + b, 0), 1);
  assert.deepEqual(decodeWarnings(stats), []);
});

test('link type names', () => {
  assert.equal(linkTypeName(1), 'ETHERNET');
  assert.equal(linkTypeName(276), 'LINUX_SLL2');
  assert.equal(linkTypeName(4242), '4242');
});
