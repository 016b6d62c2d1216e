import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatAddress } from '../../src/decode/address.js';
import { DecodeStatus } from '../../src/decode/packet.js';
import {
  concat, decodeBytes, ether, greHeader, ipOf, outerIpv4, samples, setU16, u16, u32,
} from './helpers/packets.js';

/**
 * Link layers and encapsulations, each wrapped around real captured IPv4/IPv6 segments (the
 * corpus and make-captures.sh cover the same link types with whole captures, in
 * reference.test.ts; these also cover the byte orders and variants no capture here has).
 */

function v4(): Uint8Array {
  return ipOf(samples().v4Data);
}

function v6(): Uint8Array {
  return ipOf(samples().v6Data);
}

/** Decodes and checks the inner segment is the sample's, whatever it was wrapped in. */
function assertSegment(bytes: Uint8Array, linkType: number, version: 4 | 6, what: string): void {
  const { status, seg } = decodeBytes(bytes, linkType);
  assert.equal(status, DecodeStatus.Tcp, what);
  const plain = decodeBytes(version === 4 ? samples().v4Data : samples().v6Data).seg;
  assert.equal(seg.ipVersion, version, what);
  assert.equal(seg.seq, plain.seq, what);
  assert.equal(seg.payloadLength, plain.payloadLength, what);
  assert.equal(seg.capturedPayload, plain.capturedPayload, what);
  assert.deepEqual(seg.srcAddr, plain.srcAddr, what);
}

test('raw IP link types: 101, and DLT_RAW 12 and 14 as old writers stored them', () => {
  for (const linkType of [101, 12, 14]) {
    assertSegment(v4(), linkType, 4, `link type ${linkType}, IPv4`);
    assertSegment(v6(), linkType, 6, `link type ${linkType}, IPv6`);
    assert.equal(decodeBytes(concat([0x50], v4().slice(1)), linkType).status, DecodeStatus.Malformed);
  }
  assertSegment(v4(), 228, 4, 'LINKTYPE_IPV4');
  assertSegment(v6(), 229, 6, 'LINKTYPE_IPV6');
});

test('BSD loopback: address family in either byte order, every BSD AF_INET6', () => {
  const le = (af: number): number[] => [af, 0, 0, 0];
  const be = (af: number): number[] => [0, 0, 0, af];
  for (const linkType of [0, 108]) {
    for (const order of [le, be]) {
      assertSegment(concat(order(2), v4()), linkType, 4, `link ${linkType} AF_INET ${order.name}`);
      for (const af of [24, 28, 30]) assertSegment(concat(order(af), v6()), linkType, 6, `link ${linkType} AF ${af} ${order.name}`);
      assert.equal(decodeBytes(concat(order(7), v4()), linkType).status, DecodeStatus.NotTcp);
    }
  }
});

function sll(arphrd: number, protocol: number, payload: Uint8Array): Uint8Array {
  return concat(u16(0), u16(arphrd), u16(6), [2, 0, 0, 0, 0, 1, 0, 0], u16(protocol), payload);
}

function sll2(arphrd: number, protocol: number, payload: Uint8Array): Uint8Array {
  return concat(u16(protocol), u16(0), u32(1), u16(arphrd), [0, 6], [2, 0, 0, 0, 0, 1, 0, 0], payload);
}

const SNAP_IPV4 = [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];

test('Linux cooked v1 and v2', () => {
  assertSegment(sll(1, 0x0800, v4()), 113, 4, 'SLL IPv4');
  assertSegment(sll(772, 0x86dd, v6()), 113, 6, 'SLL IPv6 on loopback');
  assertSegment(sll(1, 0x0004, concat(SNAP_IPV4, v4())), 113, 4, 'SLL 802.2 LLC with SNAP');
  assertSegment(sll(1, 0x8100, concat([0, 5], u16(0x0800), v4())), 113, 4, 'SLL with a VLAN tag left in');
  assert.equal(decodeBytes(sll(824, 0x0800, v4()), 113).status, DecodeStatus.NotTcp, 'netlink');
  assert.equal(decodeBytes(sll(1, 0x0003, v4()), 113).status, DecodeStatus.NotTcp, 'ETH_P_ALL pseudo-protocol');
  assertSegment(sll2(1, 0x0800, v4()), 276, 4, 'SLL2 IPv4');
  assertSegment(sll2(1, 0x86dd, v6()), 276, 6, 'SLL2 IPv6');
  assert.equal(decodeBytes(sll2(824, 0x0800, v4()), 276).status, DecodeStatus.NotTcp, 'SLL2 netlink');
  assert.equal(decodeBytes(sll2(1, 0x0800, v4()).slice(0, 19), 276).status, DecodeStatus.Malformed);
});

/** An NFLOG record: header, packet-header, prefix and payload attributes, in the given byte order. */
function nflog(payload: Uint8Array, littleEndian: boolean): Uint8Array {
  const tl = (length: number, type: number): number[] =>
    littleEndian ? [length & 0xff, length >> 8, type & 0xff, type >> 8] : [...u16(length), ...u16(type)];
  const pad = (n: number): number[] => new Array<number>((4 - (n % 4)) % 4).fill(0);
  const prefix = [...Buffer.from('drop', 'latin1'), 0];
  return concat(
    [2, 0, 0, 0],
    tl(8, 1), [8, 0, 3, 0],
    tl(4 + prefix.length, 10), prefix, pad(prefix.length),
    tl(4 + payload.length, 9), payload, pad(payload.length),
  );
}

test('NFLOG: attributes in either byte order, payload cut by the copy range', () => {
  assertSegment(nflog(v4(), true), 239, 4, 'little-endian host');
  assertSegment(nflog(v4(), false), 239, 4, 'big-endian host');
  assertSegment(nflog(v6(), true), 239, 6, 'IPv6');
  // --nflog-size 80: the packet is cut and NFLOG does not record how long it was
  const cut = decodeBytes(nflog(v4().slice(0, 80), true), 239);
  assert.equal(cut.status, DecodeStatus.Tcp);
  assert.equal(cut.seg.payloadLength, 1460);
  assert.equal(cut.seg.capturedPayload, 80 - 20 - 20);
  assert.equal(decodeBytes(nflog(v4().slice(0, 30), true), 239).status, DecodeStatus.Truncated);
  const noPayload = concat([2, 0, 0, 0], [8, 0, 1, 0, 8, 0, 3, 0]);
  assert.equal(decodeBytes(noPayload, 239).status, DecodeStatus.NotTcp, 'a message without a packet');
});

test('FDDI, 802.3 with LLC/SNAP, and Marvell DSA/EDSA switch tags', () => {
  const macs = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
  assertSegment(concat([0x50], macs, SNAP_IPV4, v4()), 10, 4, 'FDDI');
  // An 802.3 length field caps the frame at 1,500 bytes: the SYN fits
  const syn = ipOf(samples().v4Syn);
  const llc = decodeBytes(concat(macs, u16(8 + syn.length), SNAP_IPV4, syn));
  assert.equal(llc.status, DecodeStatus.Tcp, '802.3 length, LLC, SNAP');
  assert.equal(llc.seg.mss, 1460);
  assert.equal(decodeBytes(concat(macs, u16(38), [0x42, 0x42, 0x03], new Array<number>(35).fill(0))).status,
    DecodeStatus.NotTcp, 'spanning tree over LLC');
  assertSegment(concat(macs, [0xc0, 0x0a, 0, 0], u16(0x0800), v4()), 284, 4, 'DSA');
  assertSegment(concat(macs, [0xda, 0xda, 0, 0, 0xc0, 0x0a, 0, 0], u16(0x0800), v4()), 285, 4, 'EDSA');
});

test('VLAN tags: 802.1Q, 802.1ad, 0x9100 and stacks, counted once per packet', () => {
  const tag = (type: number, vid: number): number[] => [...u16(type), ...u16(vid)];
  const stacks: [string, number[]][] = [
    ['802.1Q', tag(0x8100, 5)],
    ['Q-in-Q', [...tag(0x88a8, 100), ...tag(0x8100, 5)]],
    ['0x9100 Q-in-Q-in-Q', [...tag(0x9100, 7), ...tag(0x88a8, 100), ...tag(0x8100, 5)]],
  ];
  for (const [name, tags] of stacks) {
    const frame = concat([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], tags, u16(0x0800), v4());
    assertSegment(frame, 1, 4, name);
    assert.equal(decodeBytes(frame).decoder.stats.vlanTagged, 1, name);
  }
  assert.equal(decodeBytes(samples().v4Data).decoder.stats.vlanTagged, 0);
});

test('MPLS label stacks and PPPoE sessions', () => {
  const label = (value: number, bottom: boolean): number[] => u32((value << 12) | (bottom ? 0x100 : 0) | 64);
  assertSegment(ether(0x8847, concat(label(16, false), label(17, true), v4())), 1, 4, 'MPLS, 2 labels, IPv4');
  assertSegment(ether(0x8847, concat(label(16, true), v6())), 1, 6, 'MPLS, IPv6');
  assert.equal(decodeBytes(ether(0x8847, concat(label(16, true), [0, 0, 0, 0], samples().v4Data))).status,
    DecodeStatus.NotTcp, 'Ethernet pseudowire with control word');
  const pppoe = (protocol: number, payload: Uint8Array): Uint8Array =>
    ether(0x8864, concat([0x11, 0, 0, 1], u16(payload.length + 2), u16(protocol), payload));
  assertSegment(pppoe(0x0021, v4()), 1, 4, 'PPPoE IPv4');
  assertSegment(pppoe(0x0057, v6()), 1, 6, 'PPPoE IPv6');
  assert.equal(decodeBytes(pppoe(0xc021, v4())).status, DecodeStatus.NotTcp, 'PPPoE LCP');
});

test('tunnels: the innermost IP header is the one reported', () => {
  const inner = decodeBytes(samples().v4Data).seg;
  for (const flags of [0x0000, 0x2000, 0xb000]) {
    const frame = ether(0x0800, outerIpv4(47, concat(greHeader(flags, 0x0800), v4())));
    assertSegment(frame, 1, 4, `GRE flags ${flags.toString(16)}`);
    const { seg } = decodeBytes(frame);
    assert.equal(formatAddress(seg.srcAddr, 4), formatAddress(inner.srcAddr, 4));
    assert.equal(seg.ttl, inner.ttl);
  }
  assertSegment(ether(0x0800, outerIpv4(47, concat(greHeader(0, 0x86dd), v6()))), 1, 6, 'IPv6 in GRE');
  assertSegment(ether(0x0800, outerIpv4(47, concat(greHeader(0x2000, 0x6558), samples().v4Data))), 1, 4, 'GRE bridging');
  assert.equal(decodeBytes(ether(0x0800, outerIpv4(47, concat([0x30, 0x01], u16(0x880b), [0, 0, 0, 0], v4())))).status,
    DecodeStatus.NotTcp, 'PPTP enhanced GRE');
  assert.equal(decodeBytes(ether(0x0800, outerIpv4(47, concat(greHeader(0x4000, 0x0800), v4())))).status,
    DecodeStatus.NotTcp, 'RFC 1701 routing');
  assertSegment(ether(0x0800, outerIpv4(4, v4())), 1, 4, 'IPv4 in IPv4');
  assertSegment(ether(0x0800, outerIpv4(41, v6())), 1, 6, 'IPv6 in IPv4 (6in4)');
});

test('ERSPAN types I, II and III: the mirrored frame is decoded', () => {
  const mirrored = samples().v4Data;
  const typeII = concat(greHeader(0x1000, 0x88be), [0x10, 5, 0, 1, 0, 0, 0, 0], mirrored);
  assertSegment(ether(0x0800, outerIpv4(47, typeII)), 1, 4, 'type II');
  assertSegment(ether(0x0800, outerIpv4(47, concat(greHeader(0, 0x88be), mirrored))), 1, 4, 'type I');
  const headerIII = [0x20, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
  assertSegment(ether(0x0800, outerIpv4(47, concat(greHeader(0x1000, 0x22eb), headerIII, mirrored))), 1, 4, 'type III');
  const withSubheader = headerIII.slice();
  withSubheader[11] = 1;
  const iii = concat(greHeader(0x1000, 0x22eb), withSubheader, new Array<number>(8).fill(0), mirrored);
  assertSegment(ether(0x0800, outerIpv4(47, iii)), 1, 4, 'type III with platform subheader');
});

test('a fragmented tunnel: the inner packet in the first fragment keeps its own length', () => {
  // As in zeek's erspan.pcap: the envelope is fragmented, the inner segment is whole on its own
  const gre = concat(greHeader(0x2000, 0x6558), samples().v4Data);
  const firstPart = gre.slice(0, 600);
  const first = outerIpv4(47, firstPart);
  first[6] = 0x20;
  const { status, seg } = decodeBytes(ether(0x0800, first));
  assert.equal(status, DecodeStatus.Tcp);
  assert.equal(seg.payloadLength, 1460);
  assert.equal(seg.capturedPayload, 600 - 8 - 14 - 20 - 20);
  const second = outerIpv4(47, gre.slice(600));
  setU16(second, 6, 600 / 8);
  assert.equal(decodeBytes(ether(0x0800, second)).status, DecodeStatus.Fragment);
});

test('nesting is bounded', () => {
  let packet = v4();
  for (let i = 0; i < 12; i++) packet = outerIpv4(47, concat(greHeader(0, 0x0800), packet));
  assert.equal(decodeBytes(ether(0x0800, packet)).status, DecodeStatus.Malformed);
  let fewer = v4();
  for (let i = 0; i < 3; i++) fewer = outerIpv4(47, concat(greHeader(0, 0x0800), fewer));
  assertSegment(ether(0x0800, fewer), 1, 4, 'three tunnels deep');
});

test('not TCP: ARP, UDP, ICMP', () => {
  assert.equal(decodeBytes(ether(0x0806, new Uint8Array(28))).status, DecodeStatus.NotTcp);
  const udp = v4();
  udp[9] = 17;
  assert.equal(decodeBytes(ether(0x0800, udp)).status, DecodeStatus.NotTcp);
  const icmp6 = v6();
  icmp6[6] = 58;
  assert.equal(decodeBytes(ether(0x86dd, icmp6)).status, DecodeStatus.NotTcp);
});

test('unsupported link types are counted by type', () => {
  const { status, decoder } = decodeBytes(samples().v4Data, 105);
  assert.equal(status, DecodeStatus.UnsupportedLink);
  assert.deepEqual([...decoder.stats.unsupportedLinkTypes], [[105, 1]]);
});
