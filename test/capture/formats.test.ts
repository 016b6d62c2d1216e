import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { readCapture } from '../../src/capture/read.js';
import {
  assertMatchesTshark,
  copyRecord,
  fixture,
  parseFile,
  tsharkFrames,
  tsharkMissing,
  type Parsed,
  type Rec,
} from './helpers.js';

async function read(name: string): Promise<Parsed> {
  const records: Rec[] = [];
  const info = await readCapture(fixture(name), (r) => records.push(copyRecord(r)));
  return { info, records };
}

/** Every fixture below is derived from this capture (zeek's handshake-reorder.pcap). */
const reference = parseFile(fixture('pcap-le-usec.pcap'));

describe('formats (fixtures/formats)', () => {
  it('the reference: little-endian microsecond pcap', () => {
    const { info, records } = reference;
    assert.equal(info.format, 'pcap');
    assert.equal(info.byteOrder, 'little');
    assert.equal(info.nanosecond, false);
    assert.deepEqual(info.linkTypes, [1]);
    assert.equal(info.truncated, false);
    assert.ok(records.length > 10);
    assert.ok(records.every((r) => r.tsNsec % 1000 === 0 && r.tsSec > 1.3e9));
  });

  it('big-endian pcap', async () => {
    const { info, records } = await read('pcap-be-usec.pcap');
    assert.equal(info.byteOrder, 'big');
    assert.deepEqual(info.linkTypes, [1]);
    assert.equal(info.packets, records.length);
    // Sane values in every field prove the byte order was applied to each of them.
    assert.ok(records.every((r) => r.tsSec > 9e8 && r.tsSec < 2e9 && r.tsNsec < 1e9));
    assert.ok(records.every((r) => r.capturedLength <= r.originalLength && r.originalLength < 1600));
  });

  for (const [name, format, nanosecond] of [
    ['pcap-le-nsec.pcap', 'pcap', true],
    ['pcapng-le-usec.pcapng', 'pcapng', false],
    ['pcapng-le-nsec.pcapng', 'pcapng', true],
    ['pcap-le-usec.pcap.gz', 'pcap', false],
    ['pcapng-le-usec.pcapng.gz', 'pcapng', false],
  ] as const) {
    it(`${name}: the reference's packets`, async () => {
      const { info, records } = await read(name);
      assert.equal(info.format, format);
      assert.equal(info.nanosecond, nanosecond);
      assert.deepEqual(info.linkTypes, [1]);
      assert.equal(info.truncated, false);
      assert.deepEqual(info.warnings, []);
      assert.deepEqual(records, reference.records);
    });
  }

  it('gzip is undone before parsing: bytesRead counts capture bytes', async () => {
    const { info } = await read('pcapng-le-usec.pcapng.gz');
    assert.equal(info.bytesRead, gunzipSync(readFileSync(fixture('pcapng-le-usec.pcapng.gz'))).length);
  });

  it('pcapng with two sections: interface ids restart per section, records number the whole file', async () => {
    const { info, records } = await read('pcapng-two-sections.pcapng');
    const n = reference.records.length;
    assert.deepEqual(info.linkTypes, [1, 1]);
    assert.equal(info.nanosecond, false, 'resolution of the first interface');
    assert.deepEqual(records.slice(0, n), reference.records);
    // The second section is the nanosecond copy, on the file's second interface.
    assert.deepEqual(
      records.slice(n),
      reference.records.map((r) => ({ ...r, frame: r.frame + n, interfaceId: 1 })),
    );
  });

  it('pcapng with if_tsresol 2^-20 and if_tsoffset', async () => {
    const { info, records } = await read('pcapng-pow2-tsoffset.pcapng');
    assert.equal(info.nanosecond, true);
    assert.equal(records.length, reference.records.length);
    records.forEach((r, i) => {
      const ref = reference.records[i]!;
      assert.deepEqual({ ...r, tsSec: 0, tsNsec: 0 }, { ...ref, tsSec: 0, tsNsec: 0 });
      // Converting microseconds to 2^-20 s units floors, by less than one unit (954 ns).
      const lostNs = (ref.tsSec - r.tsSec) * 1e9 + (ref.tsNsec - r.tsNsec);
      assert.ok(lostNs >= 0 && lostNs < 954, `record ${r.frame}: ${lostNs} ns off`);
    });
  });

  for (const name of ['pcap-v2.2-snapped.pcap', 'pcap-v2.3-snapped.pcap']) {
    it(`${name}: old length-field order, as libpcap reads it`, async () => {
      const original = parseFile(fixture('pcap-snapped.pcap'));
      assert.ok(original.records.some((r) => r.capturedLength < r.originalLength), 'needs snapped packets');
      const { info, records } = await read(name);
      assert.deepEqual(info.warnings, []);
      assert.deepEqual(records, original.records);
    });
  }

  it('pcapng with obsolete and simple packet blocks', async () => {
    const { info, records } = await read('pcapng-spb-opb.pcapng');
    assert.equal(info.truncated, false);
    assert.equal(records.length, reference.records.length);
    records.forEach((r, i) => {
      const ref = reference.records[i]!;
      // make.sh turns every third packet into a simple packet block, which has no timestamp.
      const expected = i % 3 === 2 ? { ...ref, tsSec: 0, tsNsec: 0 } : ref;
      assert.deepEqual(r, expected);
    });
  });
});

const readable = readdirSync(fixture('.')).filter(
  (f) => /\.pcap(ng)?(\.gz)?$/.test(f) && !/^(truncated|corrupt|empty)/.test(f),
);

describe('fixtures against tshark, frame by frame', { skip: tsharkMissing }, () => {
  for (const name of readable) {
    it(name, async () => {
      const { records } = await read(name);
      assertMatchesTshark(records, tsharkFrames(fixture(name)));
    });
  }
});
