import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateCapture } from '../../bench/generate.js';
import { analyzeFiles } from '../../src/core/analyze.js';
import type { AnalysisResult } from '../../src/core/session.js';
import { scratchDir, splitPcap } from './helpers.js';

/**
 * One capture analysed in one piece and the same capture split into consecutive files analysed with
 * --merge (what tcpdump -C / -G rotation produces) must describe the same traffic: the same
 * conversations, findings and totals. Only what names the input files may differ.
 */
const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'captures');
const scratch = scratchDir('connscope-split-');
after(() => scratch.remove());
let findingsCompared = 0;

/** Conversations without the index of the file each was first seen in (that differs by design). */
function comparable(result: AnalysisResult) {
  const { inputs: _inputs, ...summary } = result.summary;
  return {
    summary,
    conversations: result.conversations.map(({ input: _input, ...rest }) => rest),
    findings: result.findings,
  };
}

async function checkSplit(path: string, parts: number[]): Promise<AnalysisResult> {
  const whole = (await analyzeFiles([path])).result;
  for (const count of parts) {
    const dir = join(scratch.dir, `${count}-${path.replace(/\W/g, '_')}`);
    mkdirSync(dir, { recursive: true });
    const files = splitPcap(path, count, dir);
    assert.equal(files.length, count, 'the capture has enough packets for every part');
    const outcome = await analyzeFiles(files, { merge: true });
    assert.deepEqual(outcome.errors, []);
    assert.equal(outcome.result.inputs.length, count);
    assert.deepStrictEqual(comparable(outcome.result), comparable(whole), `${path} split in ${count}`);
  }
  findingsCompared += whole.findings.length;
  return whole;
}

test('generated traffic: whole capture and its parts give the same conversations and findings', async () => {
  const path = join(scratch.dir, 'generated.pcap');
  // Few flows over many packets: every conversation crosses several file boundaries.
  const generated = generateCapture({ output: path, packets: 40_000, flows: 300, seed: 7 });
  const whole = await checkSplit(path, [2, 5, 13]);
  // Independent facts from the generator: every connection it started is one conversation.
  assert.equal(whole.summary.packets, generated.packets);
  assert.equal(whole.summary.conversations, generated.connections);
  assert.ok(whole.conversations.length > 300);
});

test('generated SYN flood: whole capture and its parts agree, with the conversation cap evicting', async () => {
  const path = join(scratch.dir, 'flood.pcap');
  const generated = generateCapture({ output: path, mode: 'flood', tuples: 20_000, seed: 8 });
  const whole = (await analyzeFiles([path], { tracker: { maxConversations: 5000 } })).result;
  assert.equal(whole.summary.conversations, generated.connections);
  assert.ok(whole.summary.evicted > 0, 'the cap was reached');
  const dir = join(scratch.dir, 'flood-parts');
  mkdirSync(dir);
  const files = splitPcap(path, 4, dir);
  const merged = (await analyzeFiles(files, { merge: true, tracker: { maxConversations: 5000 } })).result;
  assert.deepStrictEqual(comparable(merged), comparable(whole));
});

for (const name of ['idle-timeout-storm', 'timewait-collision', 'conn-churn', 'healthy-mix', 'keepalive-race']) {
  const path = join(FIXTURES, `${name}.pcap`);
  test(`fixture ${name}: whole capture and its parts agree`, { skip: !existsSync(path) && 'fixture not present' }, async () => {
    const facts = JSON.parse(readFileSync(join(FIXTURES, `${name}.facts.json`), 'utf8')) as { frames: number };
    const whole = await checkSplit(path, [2, 3]);
    assert.equal(whole.summary.packets, facts.frames);
  });
}

test('the comparisons above covered findings, not only conversations', () => {
  assert.ok(findingsCompared > 0);
});
