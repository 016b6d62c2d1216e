import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import type { AnalysisResult } from '../../src/core/session.js';
import { CORPUS_DIR, type CorpusRow, corpusRows } from '../helpers/paths.js';

/**
 * The flow tracker against an independent implementation: tshark's TCP analysis over public
 * captures written by other projects (../shared/corpus/expected.tsv). Counts must agree exactly
 * except where the two trackers follow different rules on purpose; each such case is listed here
 * with the reason and the value connscope must give instead.
 */
type Fact = 'packets' | 'tcp_packets' | 'tcp_streams' | 'syn' | 'rst' | 'retransmission' | 'keep_alive' | 'zero_window';

const DIFFERENCES: Record<string, Partial<Record<Fact, { value: number; why: string }>>> = {
  'gopacket/pcapgo/tests/be/test202.pcapng': {
    packets: { value: 8, why: 'tshark counts the file\'s 3 custom blocks as frames; they hold no packet' },
  },
  'tcpdump/tests/tcp_header_heapoverflow.pcap': {
    tcp_packets: {
      value: 0,
      why: 'the frame holds 8 of the 20 bytes of the fixed TCP header: no sequence numbers or flags to track; ' +
        'tshark shows it as a (malformed) TCP packet',
    },
    tcp_streams: { value: 0, why: 'see tcp_packets' },
    syn: { value: 0, why: 'see tcp_packets: the flags byte is not in the capture' },
  },
  'zeek/testing/btest/Traces/llc.pcap': {
    tcp_streams: {
      value: 389,
      why: '1,333 lone RSTs on one tuple, one a minute for a day: a reset conversation is finished 120 s after its ' +
        'RST, so a stray RST after a longer silence is a new (midstream) conversation; tshark keeps one stream per ' +
        'tuple until a SYN with a new ISN',
    },
  },
  'zeek/testing/btest/Traces/echo-connections.pcap.gz': {
    retransmission: {
      value: 263,
      why: 'tshark labels 23 one-byte segments re-sent after an RTO while unacknowledged as keep-alives (same shape: ' +
        'seq = next - 1, length 1); a keep-alive is sent with nothing outstanding, so connscope calls them ' +
        'retransmissions (241 + 22; one more is a tshark keep-alive that really is one, see keep_alive)',
    },
    keep_alive: { value: 0, why: 'see retransmission: the 23 are retransmissions of unacknowledged data' },
  },
  'zeek/testing/btest/Traces/vlan-collisions.pcap': {
    keep_alive: {
      value: 2,
      why: 'every segment is in the capture twice (two VLANs, a mirror port): tshark tracks the copies as one ' +
        'stream and calls two pure ACKs of the first copy keep-alives; connscope agrees on the two of the second copy',
    },
  },
};

function measured(result: AnalysisResult): Record<Fact, number> {
  const flags = Object.entries(result.summary.flags);
  const sum = (pick: (c: AnalysisResult['conversations'][number]) => number) =>
    result.conversations.reduce((n, c) => n + pick(c), 0);
  return {
    packets: result.summary.packets,
    tcp_packets: result.summary.tcpPackets,
    tcp_streams: result.summary.conversations,
    syn: flags.filter(([f]) => f.includes('S') && !f.includes('.')).reduce((n, [, v]) => n + v, 0),
    rst: flags.filter(([f]) => f.includes('R')).reduce((n, [, v]) => n + v, 0),
    retransmission: result.summary.retransmissions,
    keep_alive: sum((c) => c.keepAlives.client + c.keepAlives.server),
    zero_window: sum((c) => c.zeroWindows.client + c.zeroWindows.server),
  };
}

const rows = corpusRows().filter((row) => row.tshark_error === '');

test('corpus is beside the repository', { skip: rows.length === 0 ? 'no ../shared/corpus here' : false }, () => {
  assert.ok(rows.length > 30);
});

for (const row of rows) {
  test(`tracker agrees with tshark: ${row.path}`, async () => {
    const { result, errors } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    assert.deepEqual(errors, []);
    const ours = measured(result);
    for (const fact of Object.keys(ours) as Fact[]) {
      const difference = DIFFERENCES[row.path]?.[fact];
      const expected = difference ? difference.value : (row[fact as keyof CorpusRow] as number);
      assert.equal(ours[fact], expected, `${fact}: ${difference?.why ?? 'tshark count'}`);
    }
  });
}
