import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeWarnings } from '../../src/decode/decoder.js';
import { DecodeStatus } from '../../src/decode/packet.js';
import { CORPUS_DIR, corpusRows } from '../helpers/paths.js';
import { decodeFile } from './helpers/decode-all.js';

/**
 * TCP packet counts against tshark's (`tcp_packets` in ../shared/corpus/expected.tsv), for every
 * capture tshark reads whole. A difference must be a principled one, listed here with its reason
 * and the count the decoder gives instead.
 */
const DIFFERENCES: Record<string, { tcp: number; why: string }> = {
  'tcpdump/tests/tcp_header_heapoverflow.pcap': {
    tcp: 0,
    why: 'a fuzzer-made frame with 8 of the 20 fixed TCP header bytes: tshark counts a frame once its ' +
      'TCP dissector has read the ports; the decoder needs the whole fixed header (sequence numbers, ' +
      'flags) and reports it Truncated',
  },
};

const rows = corpusRows();
const readable = rows.filter((row) => row.tshark_error === '');

test('corpus is beside the repository', { skip: rows.length === 0 ? 'no ../shared/corpus here' : false }, () => {
  assert.ok(readable.length > 30);
});

for (const row of readable) {
  test(`TCP count agrees with tshark: ${row.path}`, () => {
    const { decoder } = decodeFile(join(CORPUS_DIR, row.path));
    const difference = DIFFERENCES[row.path];
    assert.equal(decoder.stats.tcp, difference ? difference.tcp : row.tcp_packets, difference?.why ?? 'tshark tcp_packets');
  });
}

/** Files tshark cannot read whole still decode, without a throw, as far as they go. */
for (const row of rows.filter((r) => r.tshark_error !== '')) {
  test(`decodes what it can of: ${row.path}`, () => {
    const { decoder } = decodeFile(join(CORPUS_DIR, row.path));
    assert.equal(decoder.stats.malformed, 0);
  });
}

function corpusTest(path: string, fn: (file: string) => void): void {
  const present = rows.some((row) => row.path === path);
  test(path, { skip: present ? false : 'corpus not here' }, () => fn(join(CORPUS_DIR, path)));
}

corpusTest('zeek/testing/btest/Traces/ipv4/fragmented-4.pcap', (file) => {
  // tshark reassembles and shows the TCP header in the frame completing the datagram (frame 5);
  // the decoder reads it in the first fragment (frame 2). One datagram either way, so the counts
  // agree; the payload reported is the first fragment's share, 4 bytes
  const { statuses, segments } = decodeFile(file);
  assert.deepEqual(statuses.slice(1), [
    DecodeStatus.Tcp, DecodeStatus.Tcp, DecodeStatus.Fragment, DecodeStatus.Fragment, DecodeStatus.Fragment,
    DecodeStatus.Tcp,
  ]);
  assert.equal(segments.get(2)?.payloadLength, 4);
});

corpusTest('zeek/testing/btest/Traces/erspan.pcap', (file) => {
  // Mirrored traffic in GRE: the TCP counted is the mirrored conversation's, as in tshark. The
  // envelope of large frames is fragmented: the second fragments are Fragment, not malformed
  const { decoder } = decodeFile(file);
  assert.equal(decoder.stats.tcp, 106);
  assert.equal(decoder.stats.fragments, 39);
  assert.equal(decoder.stats.malformed, 0);
});

corpusTest('zeek/testing/btest/Traces/tcp/reassembly.pcap', (file) => {
  const { decoder } = decodeFile(file);
  assert.equal(decoder.stats.shortFrames, 5, 'five frames with 8 bytes cut out of the middle');
  assert.deepEqual(decodeWarnings(decoder.stats), [
    '5 TCP packets shorter than their IP length (bytes lost in capture): lengths taken from the IP header',
  ]);
});

corpusTest('zeek/testing/btest/Traces/trunc/trunc-hdr.pcap', (file) => {
  const { decoder } = decodeFile(file);
  assert.equal(decoder.stats.truncated, 1, '8 bytes of a 78-byte frame');
});

corpusTest('zeek/testing/btest/Traces/tcp/truncated-header.pcap', (file) => {
  // Snaplen 68 cut frame 1 inside its options: the fixed header is whole, so it is a segment
  const { segments } = decodeFile(file);
  const syn = segments.get(1);
  assert.equal(syn?.mss, 1460);
  assert.equal(syn?.sackPermitted, true);
  assert.equal(syn?.hasTimestamp, false, 'the timestamp option is past the cut');
});

corpusTest('tcpdump/tests/bigtcp-ipv4.pcap', (file) => {
  const { segments } = decodeFile(file);
  assert.equal(segments.get(1)?.payloadLength, 80000, 'IPv4 total length 0, 80,066-byte frame');
});

corpusTest('tcpdump/tests/dsa.pcap', (file) => {
  // tshark has no dissector for link type 284; tcpdump reads 8 ICMP echoes through the DSA tag
  const { decoder } = decodeFile(file);
  assert.equal(decoder.stats.byStatus[DecodeStatus.NotTcp], 8);
  assert.equal(decoder.stats.unsupportedLinkTypes.size, 0);
});

corpusTest('zeek/testing/btest/Traces/vlan-qinqinq.pcap', (file) => {
  const { decoder } = decodeFile(file);
  assert.equal(decoder.stats.vlanTagged, 14);
});
