/**
 * A SYN flood merged into a real failure capture, analysed with a small conversation cap: memory
 * stays bounded by the cap (the table never holds more), every flood conversation is still counted
 * (evicted ones as `timeout-evicted`), and the failure is diagnosed exactly as without the flood.
 *
 * The 1M-distinct-tuple memory figure is measured by the benchmark script, not here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readCapture } from '../../src/capture/read.js';
import { AnalysisSession, type AnalysisResult } from '../../src/core/session.js';
import { capture, CLI, facts } from '../helpers/paths.js';
import { connscope, floodAround, headersOf, packetsOf, tempCapture, writePcap } from './craft.js';
import { checkResult } from './harness.js';

const CAP = 1000;
const TUPLES = 20_000;

interface StormFacts {
  conversations: { client: string; server: string; frames_client_to_server: number; frames_server_to_client: number }[];
  storm: { client: string; server: string; idle_gap_before: number; retransmissions: { epoch: number }[] };
}

const stormFacts = facts<StormFacts>('idle-timeout-storm');
const { linkType, packets: stormPackets } = packetsOf(new Uint8Array(readFileSync(capture('idle-timeout-storm.pcap'))));
const template = stormPackets.find((p) => {
  const { tcp } = headersOf(p.data);
  return tcp >= 0 && p.data[tcp + 13] === 0x02;
})!;
// The flood spans the whole storm capture, its 7 s idle gap included: at this rate the cap is
// reached many times over while the storm's conversation sits idle, the most idle in the table.
const { packets, refused } = floodAround(template, stormPackets, TUPLES, 7);
const path = tempCapture(writePcap(linkType, packets), 'flood.pcap');
const unanswered = TUPLES - refused;
/** A smaller flood for the text report, whose table drawing is slow: enough rows for two pieces. */
const SMALL_TUPLES = 2500;
const small = tempCapture(writePcap(linkType, floodAround(template, stormPackets, SMALL_TUPLES, 11).packets), 'flood-small.pcap');

const hostPort = (e: { ip: string; port: number } | null): string => `${e?.ip}:${e?.port}`;

function assertDiagnosed(result: AnalysisResult): void {
  checkResult(result, { inputs: [new Uint8Array(0)], port: undefined });
  const { summary } = result;
  // Each flood tuple is one conversation, and the capture's two are still two: none was cut in pieces.
  assert.equal(summary.conversations, TUPLES + stormFacts.conversations.length);
  // Unanswered SYNs are evicted once the cap is reached; at most CAP of them are still live at the end.
  assert.ok(summary.evicted >= unanswered - CAP && summary.evicted <= unanswered, `evicted ${summary.evicted} of ${unanswered} unanswered`);
  for (const expected of stormFacts.conversations) {
    const conv = result.conversations.find((c) => hostPort(c.client) === expected.client && hostPort(c.server) === expected.server);
    assert.ok(conv, expected.client);
    assert.equal(conv.packets.client, expected.frames_client_to_server);
    assert.equal(conv.packets.server, expected.frames_server_to_client);
    assert.notEqual(conv.close.kind, 'timeout-evicted');
  }
  const { storm } = stormFacts;
  const storms = result.findings.filter((f) => f.detector === 'retransmit-storm' && hostPort(f.client) === storm.client);
  assert.equal(storms.length, 1, 'one storm, reported once');
  const evidence = storms[0]!.evidence as { retransmissions: number; times: number[]; idleBeforeSeconds: number };
  assert.equal(evidence.retransmissions, storm.retransmissions.length);
  assert.deepEqual(evidence.times.map((t) => t.toFixed(6)), storm.retransmissions.map((r) => r.epoch.toFixed(6)));
  assert.equal(evidence.idleBeforeSeconds.toFixed(3), storm.idle_gap_before.toFixed(3));
  const idle = result.findings.find((f) => f.detector === 'idle-timeout' && hostPort(f.server) === storm.server);
  assert.ok(idle, 'the idle timeout is diagnosed');
  assert.equal((idle.evidence as { upperBoundSeconds: number }).upperBoundSeconds.toFixed(3), storm.idle_gap_before.toFixed(3));
}

describe(`a ${TUPLES.toLocaleString('en-US')}-tuple SYN flood merged into idle-timeout-storm, --max-conversations ${CAP}`, () => {
  it('the table never holds more than the cap', async () => {
    const session = new AnalysisSession({ tracker: { maxConversations: CAP } });
    let peak = 0;
    session.beginInput(path);
    const info = await readCapture(path, (rec) => {
      session.record(rec);
      if (session.liveConversations > peak) peak = session.liveConversations;
    });
    session.endInput(info);
    assert.ok(peak <= CAP, `peak ${peak} live conversations`);
    assert.ok(peak > CAP * 0.9, `the cap was reached (peak ${peak})`);
    assertDiagnosed(session.finish());
  });

  it('CLI: the failure is diagnosed as without the flood, the evicted are counted', () => {
    const run = connscope(['analyze', path, '--max-conversations', String(CAP), '--json']);
    assert.equal(run.code, 0, run.stderr);
    assertDiagnosed(JSON.parse(run.stdout) as AnalysisResult);
  });
});

/**
 * `connscope analyze big.pcap --json | head`: the reader goes away after the first chunk. The run
 * must end as it would have (its own exit code, nothing on stderr but its warnings), not die on an
 * unhandled EPIPE with a stack trace.
 */
function readFirstChunkThenClose(args: string[]): Promise<{ code: number | null; stderr: string; got: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined } });
    let stderr = '';
    let got = 0;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.once('data', (chunk: Buffer) => {
      got = chunk.length;
      child.stdout.destroy();
    });
    child.on('close', (code) => resolve({ code, stderr, got }));
  });
}

describe('the reader of the report going away (| head)', () => {
  for (const format of ['json', 'ndjson', 'text']) {
    it(`${format}: the run ends with its own exit code, no EPIPE crash`, async () => {
      // --fail-on info: findings exist (the storm), so the run's own exit code is 1, not 0. The
      // reports are far larger than a pipe holds, so later writes do meet the closed pipe.
      const run = await readFirstChunkThenClose(['analyze', format === 'text' ? small : path, '--format', format, '--flows', 'all', '--fail-on', 'info']);
      assert.ok(run.got > 0);
      assert.doesNotMatch(run.stderr, /EPIPE|\n\s+at /, run.stderr);
      assert.equal(run.code, 1, run.stderr);
    });
  }
});

describe('text report, --flows all on thousands of conversations', () => {
  it('one table: drawn in pieces (the table library fails on 100,000 rows), aligned, one top and one bottom border', () => {
    const run = connscope(['analyze', small, '--flows', 'all']);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.split('\n');
    const start = lines.findIndex((l) => l.startsWith('CONVERSATIONS'));
    const end = lines.findIndex((l, i) => i > start && l.startsWith('└'));
    const table = lines.slice(start + 1, end + 1);
    assert.equal(table.filter((l) => l.startsWith('┌')).length, 1);
    assert.equal(table.filter((l) => /^│ \d+\*? +│/.test(l)).length, SMALL_TUPLES + stormFacts.conversations.length, 'a row per conversation');
    assert.equal(new Set(table.map((l) => l.length)).size, 1, 'every line as wide as the others');
  });
});
