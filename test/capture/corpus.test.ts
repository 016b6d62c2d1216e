import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { readCapture } from '../../src/capture/read.js';
import { CaptureError } from '../../src/capture/record.js';
import {
  assertMatchesTshark,
  copyRecord,
  corpusDir,
  corpusMissing,
  tsharkFrames,
  tsharkMissing,
  type Rec,
} from './helpers.js';

type Row = Record<string, string>;

function expectedRows(): Row[] {
  if (corpusMissing) return [];
  const [header, ...lines] = readFileSync(path.join(corpusDir, 'expected.tsv'), 'utf8').trimEnd().split('\n');
  const names = header!.split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    return Object.fromEntries(names.map((n, i) => [n, cells[i] ?? '']));
  });
}

/**
 * Files where the right answer is not "same as tshark", each with the reason. A file not listed
 * must read cleanly and agree with expected.tsv on container, byte order, link types and packets.
 */
type Verdict =
  | { kind: 'error'; message: RegExp; why: string }
  | { kind: 'stopped'; warning: RegExp; linkTypes: (tsv: number[]) => number[]; why: string }
  | { kind: 'read'; packets: (tsv: number) => number | undefined; warning?: RegExp; why: string };

const verdicts: Record<string, Verdict> = {
  'derived/reassembly-cut-mid-record.pcap': {
    kind: 'stopped',
    warning: /^capture truncated at byte \d+ \(record \d+ incomplete\)$/,
    linkTypes: (tsv) => tsv,
    why: 'cut by head -c: every complete record is kept, as tshark does',
  },
  'gopacket/pcapgo/tests/le/test901.pcapng': {
    kind: 'stopped',
    warning: /unsupported pcapng version 2\.0 in section 2/,
    // expected.tsv lists every interface block in the file, including those of the sections after
    // the one we (like tshark) refuse to read; we report the interfaces we actually read.
    linkTypes: (tsv) => tsv.slice(0, 1),
    why: 'section 2 declares pcapng 2.0, whose blocks we cannot trust; section 1 and its packet are kept',
  },
  'libpcap/tests/linktype-reserved-field-not-zero.pcap': {
    kind: 'read',
    packets: (tsv) => tsv,
    warning: /reserved bits/,
    why: 'header-only file; tshark rejects the reserved bits, we mask them to the link type and warn',
  },
  'libpcap/tests/pcap-invalid-version-1.pcap': {
    kind: 'error',
    message: /unsupported pcap version 1\.4/,
    why: 'pcap major version 1 does not exist (libpcap and tshark refuse it too)',
  },
  'libpcap/tests/pcapng-invalid-vers-1.pcapng': {
    kind: 'error',
    message: /unsupported pcapng version 0\.1/,
    why: 'the first section header declares a pcapng version other than 1.x',
  },
  'libpcap/tests/shb-option-too-long.pcapng': {
    kind: 'error',
    message: /bad pcapng section header at byte 0/,
    why: 'the first section header is inconsistent (an option and the trailing length run past it)',
  },
  'tcpdump/tests/dsa.pcap': {
    kind: 'read',
    // tshark stops because it has no dissector for link type 284 (DSA tags), not because the file is
    // damaged: the file is intact and we read all of it. The count is checked against pcap-parser
    // in pcap-parser.test.ts.
    packets: () => undefined,
    why: 'tshark cannot dissect link type 284; the records themselves are fine',
  },
  'gopacket/pcapgo/tests/be/test202.pcapng': {
    kind: 'read',
    // tshark lists the three custom blocks (0x00000BAD at byte 216, 0x40000BAD at bytes 1412 and
    // 2468) as frames; they hold no packet.
    packets: (tsv) => tsv - 3,
    why: 'custom blocks are not packets',
  },
};

function inflatedSize(file: string): number {
  const bytes = readFileSync(file);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).length : bytes.length;
}

describe('corpus: agreement with expected.tsv', { skip: corpusMissing }, () => {
  for (const row of expectedRows()) {
    const file = path.join(corpusDir, row['path']!);
    const verdict = verdicts[row['path']!];
    it(`${row['path']}${verdict ? ` (${verdict.why})` : ''}`, async () => {
      const tsvLinkTypes = row['linktypes']!.split(',').map(Number);
      const tsvPackets = Number(row['packets']);
      if (verdict?.kind === 'error') {
        await assert.rejects(readCapture(file, () => {}), (err: Error) => {
          assert.ok(err instanceof CaptureError, `expected CaptureError, got ${err}`);
          assert.match(err.message, verdict.message);
          assert.doesNotMatch(err.message, /\n/);
          return true;
        });
        return;
      }
      assert.ok(row['tshark_error'] === '' || verdict, `tshark failed on ${row['path']}: add a verdict`);
      const seen: Array<[frame: number, linkType: number, interfaceId: number]> = [];
      const info = await readCapture(file, (r) => {
        seen.push([r.frame, r.linkType, r.interfaceId]);
      });
      const delivered = seen.length;
      seen.forEach(([frame, linkType, id], i) => {
        assert.equal(frame, i + 1);
        assert.equal(linkType, info.linkTypes[id]);
      });
      assert.equal(info.format, row['container']);
      assert.equal(info.byteOrder, row['byte_order']);
      assert.equal(info.packets, delivered);
      if (verdict?.kind === 'stopped') {
        assert.deepEqual(info.linkTypes, verdict.linkTypes(tsvLinkTypes));
        assert.equal(info.packets, tsvPackets);
        assert.equal(info.truncated, true);
        assert.equal(info.warnings.length, 1);
        assert.match(info.warnings[0]!, verdict.warning);
        return;
      }
      assert.deepEqual(info.linkTypes, tsvLinkTypes);
      assert.equal(info.truncated, false);
      assert.equal(info.bytesRead, inflatedSize(file));
      if (verdict?.kind === 'read') {
        const packets = verdict.packets(tsvPackets);
        if (packets !== undefined) assert.equal(info.packets, packets);
        if (verdict.warning) assert.match(info.warnings.join('\n'), verdict.warning);
      } else {
        assert.equal(info.packets, tsvPackets);
      }
    });
  }
});

const tsharkSkip = corpusMissing || tsharkMissing;

/** Per-frame timestamps and lengths against tshark, for every file tshark reads whole. */
describe('corpus: per-frame agreement with tshark', { skip: tsharkSkip }, () => {
  for (const row of expectedRows()) {
    if (row['tshark_error'] !== '') continue;
    const file = path.join(corpusDir, row['path']!);
    it(row['path']!, async () => {
      const records: Rec[] = [];
      await readCapture(file, (r) => records.push(copyRecord(r)));
      assertMatchesTshark(records, tsharkFrames(file));
    });
  }
});
