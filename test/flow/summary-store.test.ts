import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeFiles } from '../../src/core/analyze.js';
import type { Conversation } from '../../src/flow/conversation.js';
import { type ConversationSummary, summarize } from '../../src/flow/summary.js';
import { capture } from '../helpers/paths.js';

/**
 * The session keeps finished conversations as compact facts (SummaryStore) and builds their
 * summaries at the end: they must be exactly the summaries of the live conversations.
 */
for (const name of ['healthy-mix.pcap', 'conn-churn.ipv6.pcap', 'timewait-collision.pcap', 'forged-rst-client.pcap']) {
  test(`stored summaries equal the live conversations' summaries: ${name}`, async () => {
    const live: ConversationSummary[] = [];
    const { result } = await analyzeFiles([capture(name)], {
      segmentObserver: {
        onSegment() {},
        onFinalize(conv: Conversation) {
          live.push(summarize(conv));
        },
      },
    });
    live.sort((a, b) => a.id - b.id);
    assert.ok(live.length > 0);
    assert.deepEqual(result.conversations, live);
  });
}
