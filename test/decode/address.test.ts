import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAddress } from '../../src/decode/address.js';

function v6(text: string): number[] {
  const groups = text.split(':').map((g) => parseInt(g, 16));
  return [0, 1, 2, 3].map((i) => ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0);
}

test('IPv4 from the mapped form', () => {
  assert.equal(formatAddress(new Uint32Array([0, 0, 0xffff, 0x0a000001]), 4), '10.0.0.1');
  assert.equal(formatAddress([0, 0, 0xffff, 0xffffffff], 4), '255.255.255.255');
});

test('IPv6 per RFC 5952', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
    ['fe80:0000:0000:0000:0000:0000:0000:0000', 'fe80::'],
    // One zero group is not compressed (section 4.2.2)
    ['2001:0db8:0000:0001:0001:0001:0001:0001', '2001:db8:0:1:1:1:1:1'],
    // The longest run is compressed (4.2.3)...
    ['2001:0000:0000:0001:0000:0000:0000:0001', '2001:0:0:1::1'],
    // ...and the first of equal runs
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:0DB8:AAAA:BBBB:CCCC:DDDD:EEEE:0001', '2001:db8:aaaa:bbbb:cccc:dddd:eeee:1'],
    // IPv4-mapped keeps its dotted tail (section 5)
    ['0000:0000:0000:0000:0000:ffff:c000:0201', '::ffff:192.0.2.1'],
  ];
  for (const [full, expected] of cases) assert.equal(formatAddress(Uint32Array.from(v6(full)), 6), expected, full);
});
