import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaptureRecord } from '../../src/capture/record.js';
import { PacketDecoder } from '../../src/decode/decoder.js';
import { DecodeStatus, DecodedPacket } from '../../src/decode/packet.js';
import { concat, decodeBytes, samples, setU16, u32, withExtension } from './helpers/packets.js';

/**
 * Damage made by mutating real captured packets (see helpers/packets.ts): the decoder must sort
 * each into its DecodeStatus, count it, and never throw. Offsets: Ethernet 14 bytes, then IPv4
 * (TCP at 34) or IPv6 (TCP at 54).
 */

function mutate(frame: Uint8Array, change: (b: Uint8Array) => void): Uint8Array {
  const copy = frame.slice();
  change(copy);
  return copy;
}

test('the unmutated samples decode as TCP', () => {
  for (const [name, frame] of Object.entries(samples())) {
    assert.equal(decodeBytes(frame).status, DecodeStatus.Tcp, name);
  }
});

test('IPv4 header length below 5 words is malformed', () => {
  const { status, decoder } = decodeBytes(mutate(samples().v4Syn, (b) => { b[14] = 0x44; }));
  assert.equal(status, DecodeStatus.Malformed);
  assert.equal(decoder.stats.malformed, 1);
});

test('IPv4 total length shorter than its header is malformed', () => {
  assert.equal(decodeBytes(mutate(samples().v4Syn, (b) => setU16(b, 16, 19))).status, DecodeStatus.Malformed);
  // IHL 15 (60 bytes) in a 52-byte packet
  assert.equal(decodeBytes(mutate(samples().v4Syn, (b) => { b[14] = 0x4f; })).status, DecodeStatus.Malformed);
});

test('a version other than 4 under ethertype IPv4 is malformed', () => {
  assert.equal(decodeBytes(mutate(samples().v4Syn, (b) => { b[14] = 0x55; })).status, DecodeStatus.Malformed);
});

test('TCP data offset below 5 words is malformed', () => {
  const { status, decoder } = decodeBytes(mutate(samples().v4Syn, (b) => { b[34 + 12] = 0x30; }));
  assert.equal(status, DecodeStatus.Malformed);
  assert.deepEqual(decoder.stats.byStatus[DecodeStatus.Tcp], 0);
});

test('TCP data offset past the IP payload is malformed', () => {
  // 60-byte header claimed, 32 bytes of TCP in the packet
  assert.equal(decodeBytes(mutate(samples().v4Syn, (b) => { b[34 + 12] = 0xf0; })).status, DecodeStatus.Malformed);
  // IP total length leaves room for 16 bytes of TCP only
  assert.equal(decodeBytes(mutate(samples().v4Syn, (b) => setU16(b, 16, 36))).status, DecodeStatus.Malformed);
});

test('option length 0 stops option parsing but keeps the segment', () => {
  // MSS, NOP, NOP, then SACK-permitted with length 0
  const { status, seg, decoder } = decodeBytes(mutate(samples().v4Syn, (b) => { b[54 + 7] = 0; }));
  assert.equal(status, DecodeStatus.Tcp);
  assert.equal(seg.mss, 1460, 'options before the damage are kept');
  assert.equal(seg.sackPermitted, false);
  assert.equal(seg.windowScale, -1, 'options after the damage cannot be located');
  assert.equal(decoder.stats.damagedOptions, 1);
});

test('option length 1 stops option parsing but keeps the segment', () => {
  const { status, seg, decoder } = decodeBytes(mutate(samples().v4Syn, (b) => { b[54 + 1] = 1; }));
  assert.equal(status, DecodeStatus.Tcp);
  assert.equal(seg.mss, -1);
  assert.equal(seg.windowScale, -1);
  assert.equal(seg.seq, decodeBytes(samples().v4Syn).seg.seq);
  assert.equal(decoder.stats.damagedOptions, 1);
});

test('an option running past the TCP header is damage; one cut by snaplen is not', () => {
  const past = decodeBytes(mutate(samples().v4Syn, (b) => { b[54 + 10] = 5; }));
  assert.equal(past.status, DecodeStatus.Tcp);
  assert.equal(past.seg.mss, 1460);
  assert.equal(past.seg.sackPermitted, true);
  assert.equal(past.seg.windowScale, -1);
  assert.equal(past.decoder.stats.damagedOptions, 1);

  // Snaplen cut inside the window scale option: the wire had it whole
  const syn = samples().v4Syn;
  const cut = decodeBytes(syn.slice(0, 64), 1, syn.length);
  assert.equal(cut.status, DecodeStatus.Tcp);
  assert.equal(cut.seg.sackPermitted, true);
  assert.equal(cut.seg.windowScale, -1);
  assert.equal(cut.decoder.stats.damagedOptions, 0);
});

test('SACK option with a length that is not 2 + 8n is skipped, not trusted', () => {
  const { status, seg } = decodeBytes(mutate(samples().v4Sack, (b) => { b[54 + 3] = 0x21; }));
  assert.equal(status, DecodeStatus.Tcp);
  assert.deepEqual(seg.sack, []);
});

test('snaplen: payload length comes from IP, captured payload from the capture', () => {
  const data = samples().v4Data;
  const full = decodeBytes(data);
  const cut = decodeBytes(data.slice(0, 96), 1, data.length);
  assert.equal(cut.status, DecodeStatus.Tcp);
  assert.equal(cut.seg.payloadLength, 1460);
  assert.equal(cut.seg.capturedPayload, 96 - 14 - full.seg.headerLength - 20);
  assert.equal(cut.seg.seq, full.seg.seq);
});

test('snaplen inside the TCP or IP header is truncation; the same bytes uncut are damage', () => {
  const data = samples().v4Data;
  for (const length of [40, 53, 20, 14, 5]) {
    const { status, decoder } = decodeBytes(data.slice(0, length), 1, data.length);
    assert.equal(status, DecodeStatus.Truncated, `cut at ${length}`);
    assert.equal(decoder.stats.truncated, 1);
    assert.equal(decodeBytes(data.slice(0, length)).status, DecodeStatus.Malformed, `${length} bytes, not cut`);
  }
});

test('Ethernet padding is not payload', () => {
  const syn = samples().v4Syn;
  const { status, seg } = decodeBytes(concat(syn, new Array<number>(10).fill(0xee)));
  assert.equal(status, DecodeStatus.Tcp);
  assert.equal(seg.payloadLength, 0);
  assert.equal(seg.capturedPayload, 0);
});

test('a frame shorter than its IP length: the IP length is believed and counted', () => {
  // As in zeek's reassembly.pcap: 8 payload bytes gone from a frame that says it is whole
  const data = samples().v4Data;
  const { status, seg, decoder } = decodeBytes(data.slice(0, data.length - 8));
  assert.equal(status, DecodeStatus.Tcp);
  assert.equal(seg.payloadLength, 1460);
  assert.equal(seg.capturedPayload, 1452);
  assert.equal(decoder.stats.shortFrames, 1);
});

test('IPv4 total length 0 (segmentation offload, BIG TCP) uses the wire length', () => {
  const { status, seg } = decodeBytes(mutate(samples().v4Data, (b) => setU16(b, 16, 0)));
  assert.equal(status, DecodeStatus.Tcp);
  assert.equal(seg.payloadLength, 1460);
});

test('IPv4 fragments: non-first ones and tiny first ones hold no TCP header', () => {
  const data = samples().v4Data;
  const first = decodeBytes(mutate(data, (b) => { b[20] = 0x20; }));
  assert.equal(first.status, DecodeStatus.Tcp, 'first fragment, MF set');
  assert.equal(first.seg.payloadLength, 1460, "this fragment's share");

  const later = decodeBytes(mutate(data, (b) => setU16(b, 20, 0x2000 | 185)));
  assert.equal(later.status, DecodeStatus.Fragment);
  assert.equal(later.decoder.stats.fragments, 1);

  const last = decodeBytes(mutate(data, (b) => setU16(b, 20, 185)));
  assert.equal(last.status, DecodeStatus.Fragment, 'last fragment, MF clear');

  // 8 bytes of TCP in the first fragment: the header goes on in the next one
  const tiny = mutate(data.slice(0, 14 + 28), (b) => { setU16(b, 16, 28); b[20] = 0x20; });
  assert.equal(decodeBytes(tiny).status, DecodeStatus.Fragment);
});

test('IPv6 extension headers are walked to TCP', () => {
  const data = samples().v6Data;
  const plain = decodeBytes(data).seg;
  for (const [type, length] of [[0, 8], [60, 16], [43, 8], [51, 16]]) {
    // AH counts its length in 4-byte words minus 2; the helper writes 8-byte units minus 1
    const frame = withExtension(data, type, length);
    if (type === 51) frame[54 + 1] = length / 4 - 2;
    const { status, seg } = decodeBytes(frame);
    assert.equal(status, DecodeStatus.Tcp, `extension ${type}`);
    assert.equal(seg.payloadLength, plain.payloadLength);
    assert.equal(seg.seq, plain.seq);
  }
  const chained = withExtension(withExtension(withExtension(data, 60, 8), 43, 8), 0, 8);
  assert.equal(decodeBytes(chained).status, DecodeStatus.Tcp, 'hop-by-hop, routing, destination options');
});

test('IPv6 fragment header: first, later and atomic fragments', () => {
  const data = samples().v6Data;
  const frame = withExtension(data, 44, 8);
  u32(0xdeadbeef).forEach((b, i) => { frame[54 + 4 + i] = b; });
  const atomic = decodeBytes(frame);
  assert.equal(atomic.status, DecodeStatus.Tcp, 'offset 0, M clear');
  assert.equal(atomic.seg.ipId, 0xdeadbeef);

  const first = decodeBytes(mutate(frame, (b) => setU16(b, 54 + 2, 1)));
  assert.equal(first.status, DecodeStatus.Tcp);
  const later = decodeBytes(mutate(frame, (b) => setU16(b, 54 + 2, (100 << 3) | 1)));
  assert.equal(later.status, DecodeStatus.Fragment);
});

test('IPv6 header chains: bounded, hop-by-hop first only, inside the payload', () => {
  const data = samples().v6Data;
  // Every header consumes at least 8 bytes, so a chain cannot truly loop; a header that names
  // its own type as next, again and again, is a long chain, and the bound cuts it short
  let loop = data;
  for (let i = 0; i < 9; i++) loop = withExtension(loop, 60, 8);
  assert.equal(decodeBytes(loop).status, DecodeStatus.Malformed, 'nine destination options headers');

  let eight = data;
  for (let i = 0; i < 8; i++) eight = withExtension(eight, 60, 8);
  assert.equal(decodeBytes(eight).status, DecodeStatus.Tcp, 'eight is still within the bound');

  const hopLater = withExtension(withExtension(data, 0, 8), 60, 8);
  assert.equal(decodeBytes(hopLater).status, DecodeStatus.Malformed, 'hop-by-hop after destination options');

  const tooLong = mutate(withExtension(data, 60, 8), (b) => { b[54 + 1] = 255; });
  assert.equal(decodeBytes(tooLong).status, DecodeStatus.Malformed, 'extension header longer than the payload');
});

test('IPv6 payload length 0: jumbo option, or the wire length', () => {
  const data = samples().v6Data;
  const plain = decodeBytes(data).seg;
  const withHop = withExtension(data, 0, 8);
  const tcpLength = withHop.length - 14 - 40 - 8;
  // Jumbo Payload option (0xC2, length 4) after the hop-by-hop header's first two bytes
  const jumbo = mutate(withHop, (b) => {
    setU16(b, 14 + 4, 0);
    b.set([0xc2, 4, ...u32(8 + tcpLength)], 54 + 2);
  });
  const j = decodeBytes(jumbo);
  assert.equal(j.status, DecodeStatus.Tcp);
  assert.equal(j.seg.payloadLength, plain.payloadLength);

  const bigTcp = decodeBytes(mutate(data, (b) => setU16(b, 14 + 4, 0)));
  assert.equal(bigTcp.status, DecodeStatus.Tcp);
  assert.equal(bigTcp.seg.payloadLength, plain.payloadLength);
});

test('never throws, always answers a status: random damage to real packets', () => {
  // Deterministic PRNG (xorshift32), so a failure can be replayed
  let state = 0x2545f491;
  const random = (n: number): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
  const linkTypes = [0, 1, 10, 12, 101, 108, 113, 228, 229, 239, 276, 284, 285];
  const bases = Object.values(samples());
  const seen = new Set<number>();
  for (let i = 0; i < 20000; i++) {
    const frame = bases[random(bases.length)].slice();
    const changes = 1 + random(6);
    for (let c = 0; c < changes; c++) frame[random(Math.min(frame.length, 120))] = random(256);
    const length = random(4) === 0 ? random(frame.length) : frame.length;
    const linkType = random(3) === 0 ? linkTypes[random(linkTypes.length)] : 1;
    const { status } = decodeBytes(frame.slice(0, length), linkType, random(2) === 0 ? frame.length : length);
    assert.ok(status >= DecodeStatus.Tcp && status <= DecodeStatus.Truncated, `status ${status}`);
    seen.add(status);
  }
  assert.equal(seen.size, 5, 'every status except UnsupportedLink turns up');
});

test('a record claiming more bytes than its buffer holds is read as cut, not past the end', () => {
  const syn = samples().v4Syn;
  const rec = new CaptureRecord();
  rec.linkType = 1;
  rec.data = syn.slice(0, 40);
  rec.capturedLength = syn.length;
  rec.originalLength = syn.length;
  assert.equal(new PacketDecoder().decode(rec, new DecodedPacket()), DecodeStatus.Truncated);
});
