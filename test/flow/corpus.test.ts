import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import { CORPUS_DIR, corpusRows } from '../helpers/paths.js';

/**
 * The flow tracker against an independent implementation: tshark's TCP analysis over public
 * captures written by other projects (../shared/corpus/expected.tsv). TCP packet counts must agree
 * exactly; conversation counts agree except where the two trackers follow different, documented
 * rules, each listed here with the reason and the count connscope is expected to give.
 */
const CONVERSATION_DIFFERENCES: Record<string, { conversations: number; why: string }> = {};

const rows = corpusRows().filter((row) => row.tshark_error === '');

test('corpus is beside the repository', { skip: rows.length === 0 ? 'no ../shared/corpus here' : false }, () => {
  assert.ok(rows.length > 30);
});

for (const row of rows) {
  test(`tracker agrees with tshark: ${row.path}`, async () => {
    const { result, errors } = await analyzeFiles([join(CORPUS_DIR, row.path)]);
    assert.deepEqual(errors, []);
    assert.equal(result.summary.packets, row.packets, 'packets');
    assert.equal(result.summary.tcpPackets, row.tcp_packets, 'TCP packets');
    const difference = CONVERSATION_DIFFERENCES[row.path];
    assert.equal(result.summary.conversations, difference ? difference.conversations : row.tcp_streams, difference?.why ?? 'conversations = tshark tcp.stream count');
  });
}
