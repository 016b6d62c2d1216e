/**
 * The bounded fuzz run: a fixed seed, a few thousand mutants of real captures through the whole
 * pipeline (reader, decoder, tracker, detectors, every report format). The long run with any seed is
 * `npm run fuzz -- <cases> --seed <n>` (bench/fuzz.ts), which writes each failing input to a file;
 * once fixed, that file goes to test/hostile/regressions/, which crafted.test.ts runs every time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSeeds, makeCase, runCase, type FuzzCase } from './harness.js';

const SEED = 20240901;
const CASES = 1500;


const seeds = loadSeeds();

interface Failure {
  c: FuzzCase;
  error: unknown;
}

function describeFailure({ c, error }: Failure): string {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return `case ${c.index} (from ${c.origin.join(' + ')}, ${c.mutations.join(', ')}): ${message.split('\n').slice(0, 4).join(' | ')}`;
}

test('the seeds themselves analyse cleanly', async () => {
  assert.ok(seeds.length >= 10, `${seeds.length} seed captures`);
  for (const seed of seeds) {
    const c: FuzzCase = {
      index: 0, origin: [seed.name], mutations: [], inputs: [seed.bytes], chunkSizes: [1 << 20], gzip: false,
      maxConversations: undefined, maxStoredConversations: undefined, port: undefined,
    };
    const result = await runCase(c);
    // libpcap's test files have deliberately invalid headers (see the corpus README).
    if (seed.name.includes('libpcap/tests/')) continue;
    assert.equal(result.inputs[0]!.error, null, seed.name);
    assert.ok(result.summary.packets > 0, seed.name);
  }
});

test(`${CASES} mutated captures: no exception, every result well-formed`, { timeout: 600_000 }, async () => {
  const failures: Failure[] = [];
  // What the mutants reached, so that a mutator gone blind (every case rejected at the file header,
  // say) fails the test instead of passing it vacuously: each in at least 0.5% of the cases.
  const reached = { unreadable: 0, damagedStructure: 0, malformedPackets: 0, tcp: 0, findings: 0, evicted: 0, merged: 0 };
  for (let i = 0; i < CASES; i++) {
    const c = makeCase(seeds, SEED, i);
    try {
      const result = await runCase(c);
      const warnings = result.inputs.flatMap((input) => input.warnings).join('\n');
      if (result.inputs.some((input) => input.error !== null)) reached.unreadable++;
      if (result.inputs.some((input) => input.truncated)) reached.damagedStructure++;
      if (/malformed packets? skipped/.test(warnings)) reached.malformedPackets++;
      if (result.summary.tcpPackets > 0) reached.tcp++;
      if (result.findings.length > 0) reached.findings++;
      if (result.summary.evicted > 0) reached.evicted++;
      if (result.inputs.length > 1) reached.merged++;
    } catch (error) {
      failures.push({ c, error });
    }
  }
  assert.deepEqual(failures.map(describeFailure), [], `seed ${SEED}`);
  for (const [what, count] of Object.entries(reached)) {
    assert.ok(count >= CASES / 200, `only ${count} of ${CASES} cases reached ${what}: ${JSON.stringify(reached)}`);
  }
  // Most mutants must still be captures with TCP in them, or the detectors are barely exercised.
  assert.ok(reached.tcp > CASES / 2, JSON.stringify(reached));
});
