import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatAddress } from '../../src/decode/address.js';
import { DecodeStatus } from '../../src/decode/packet.js';
import { CORPUS_DIR, REPO_ROOT } from '../helpers/paths.js';
import { type Segment, decodeFile } from './helpers/decode-all.js';

/**
 * Field-by-field agreement with tshark on every TCP header of the test captures. The reference
 * files are tshark's output, made by make-reference.sh (which documents the command), so this
 * runs without tshark.
 */
const DECODE_DIR = join(REPO_ROOT, 'test', 'decode');
const REFERENCE_DIR = join(DECODE_DIR, 'reference');

/**
 * Frames tshark shows a TCP header for that the decoder rightly does not decode, by file.
 */
const NOT_DECODED: Record<string, { frames: Record<number, DecodeStatus>; why: string }> = {
  'tcp_header_heapoverflow.pcap': {
    frames: { 1: DecodeStatus.Truncated },
    why: 'a fuzzer-made frame cut 12 bytes into the TCP header: tshark reads the ports before it runs ' +
      'out of bytes, but a segment without sequence numbers and flags is no use to the analysis',
  },
};

interface Reference {
  label: string;
  path: string | null;
  rows: Record<string, string>[];
}

function loadReference(file: string): Reference {
  const [comment, header, ...lines] = readFileSync(join(REFERENCE_DIR, file), 'utf8').trimEnd().split('\n');
  const label = comment.replace(/^# /, '');
  const [kind, name] = label.split(': ');
  const path = kind === 'corpus' ? join(CORPUS_DIR, name) : join(DECODE_DIR, 'captures', name);
  const names = header.split('\t');
  const rows = lines.map((line) => {
    const cells = line.split('\t');
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
  return { label, path: existsSync(path) ? path : null, rows };
}

/** The innermost value of a field repeated by tunnels ("outer,inner"). */
function last(cell: string): string {
  const parts = cell.split(',');
  return parts[parts.length - 1];
}

function numbers(cell: string): number[] {
  return cell === '' ? [] : cell.split(',').map(Number);
}

/** Compares one decoded segment with one tshark row; returns the differences. */
function differences(row: Record<string, string>, seg: Segment): string[] {
  const protocols = row['frame.protocols'].split(':');
  const tcpAt = protocols.indexOf('tcp');
  const innerIp = protocols.slice(0, tcpAt).reverse().find((p) => p === 'ip' || p === 'ipv6');
  const v6 = innerIp === 'ipv6';
  const expected: Record<string, unknown> = {
    ipVersion: v6 ? 6 : 4,
    src: last(row[v6 ? 'ipv6.src' : 'ip.src']),
    dst: last(row[v6 ? 'ipv6.dst' : 'ip.dst']),
    ttl: Number(last(row[v6 ? 'ipv6.hlim' : 'ip.ttl'])),
    srcPort: Number(row['tcp.srcport']),
    dstPort: Number(row['tcp.dstport']),
    seq: Number(row['tcp.seq_raw']),
    ack: Number(row['tcp.ack_raw']),
    flags: parseInt(row['tcp.flags'], 16) & 0xff,
    window: Number(row['tcp.window_size_value']),
    headerLength: Number(row['tcp.hdr_len']),
    mss: row['tcp.options.mss_val'] === '' ? -1 : Number(row['tcp.options.mss_val']),
    windowScale: row['tcp.options.wscale.shift'] === '' ? -1 : Number(row['tcp.options.wscale.shift']),
    sackPermitted: row['tcp.options.sack_perm'] !== '',
    sack: numbers(row['tcp.options.sack_le']).flatMap((le, i) => [le, numbers(row['tcp.options.sack_re'])[i]]),
    hasTimestamp: row['tcp.options.timestamp.tsval'] !== '',
    tsVal: row['tcp.options.timestamp.tsval'] === '' ? 0 : Number(row['tcp.options.timestamp.tsval']),
    tsEcr: row['tcp.options.timestamp.tsecr'] === '' ? 0 : Number(row['tcp.options.timestamp.tsecr']),
  };
  if (!v6) expected.ipId = parseInt(last(row['ip.id']), 16);
  // tshark's tcp.len counts the bytes the frame holds when that is fewer than the IP length says
  // (a frame that lost bytes, a packet inside a fragment). The decoder believes the IP header,
  // which keeps the sequence space whole: in reassembly.pcap the next segment starts where the IP
  // length says, and erspan.pcap's inner packets are as long as tshark says once it reassembles.
  // What the frame holds is capturedPayload, which must then agree with tcp.len.
  const ipLength = v6 ? 0 : Number(last(row['ip.len']));
  if (ipLength > 0) {
    expected.payloadLength = ipLength - Number(last(row['ip.hdr_len'])) - Number(row['tcp.hdr_len']);
  } else if (row['tcp.len'] !== '') {
    expected.payloadLength = Number(row['tcp.len']);
  }
  if (row['frame.len'] === row['frame.cap_len'] && row['tcp.len'] !== '') expected.capturedPayload = Number(row['tcp.len']);
  const actual: Record<string, unknown> = {
    ...seg,
    src: formatAddress(seg.srcAddr, seg.ipVersion),
    dst: formatAddress(seg.dstAddr, seg.ipVersion),
  };
  return Object.keys(expected)
    .filter((key) => JSON.stringify(actual[key]) !== JSON.stringify(expected[key]))
    .map((key) => `${key}: decoded ${JSON.stringify(actual[key])}, tshark ${JSON.stringify(expected[key])}`);
}

const files = readdirSync(REFERENCE_DIR).filter((f) => f.endsWith('.tsv')).sort();

test('reference files are present', () => {
  assert.ok(files.length >= 40, `${files.length} reference files`);
});

for (const file of files) {
  const ref = loadReference(file);
  test(`fields agree with tshark: ${ref.label}`, { skip: ref.path === null ? 'capture not here' : false }, () => {
    const { statuses, segments } = decodeFile(ref.path as string);
    const name = file.replace(/\.tsv$/, '');
    const exceptions = NOT_DECODED[name]?.frames ?? {};
    const problems: string[] = [];
    const seen = new Set<number>();
    for (const row of ref.rows) {
      const frame = Number(row['frame.number']);
      seen.add(frame);
      if (exceptions[frame] !== undefined) {
        assert.equal(statuses[frame], exceptions[frame], `frame ${frame}: ${NOT_DECODED[name].why}`);
        continue;
      }
      const seg = segments.get(frame);
      if (seg === undefined) {
        problems.push(`frame ${frame}: tshark sees TCP, decoder says status ${statuses[frame]}`);
        continue;
      }
      for (const d of differences(row, seg)) problems.push(`frame ${frame}: ${d}`);
    }
    for (const frame of segments.keys()) {
      if (!seen.has(frame)) problems.push(`frame ${frame}: decoded as TCP, tshark sees none`);
    }
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} differences`);
  });
}
