import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateCapture } from '../../bench/generate.js';
import { analyzeFiles } from '../../src/core/analyze.js';
import { analyzeFilesParallel, canRunInParallel } from '../../src/core/parallel.js';
import { jsonReport, scratchDir } from './helpers.js';

/**
 * Separate captures analysed on worker threads must give the report the sequential run gives, byte
 * for byte, whatever the number of jobs, including inputs that cannot be read.
 */
const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURES = join(ROOT, 'fixtures', 'captures');
const scratch = scratchDir('connscope-parallel-');
after(() => scratch.remove());

const inputs: string[] = [];
const generatedConnections: number[] = [];

before(() => {
  const a = join(scratch.dir, 'a.pcap');
  const b = join(scratch.dir, 'b.pcap');
  const flood = join(scratch.dir, 'flood.pcap');
  generatedConnections.push(generateCapture({ output: a, packets: 30_000, flows: 500, seed: 21 }).connections);
  generatedConnections.push(generateCapture({ output: b, packets: 12_000, flows: 50, seed: 22, retransmitRate: 0.05 }).connections);
  generatedConnections.push(generateCapture({ output: flood, mode: 'flood', tuples: 5000, seed: 23 }).connections);
  const fixtures = ['idle-timeout-storm', 'timewait-collision', 'lb-blackhole-front']
    .map((name) => join(FIXTURES, `${name}.pcap`))
    .filter((path) => existsSync(path));
  inputs.push(a, ...fixtures.slice(0, 1), join(scratch.dir, 'missing.pcap'), b, ...fixtures.slice(1), flood);
});

test('parallel applies only to several separate files with no listeners', () => {
  assert.equal(canRunInParallel(['a', 'b'], {}, 2), true);
  assert.equal(canRunInParallel(['a'], {}, 2), false);
  assert.equal(canRunInParallel(['a', 'b'], {}, 1), false);
  assert.equal(canRunInParallel(['a', 'b'], { merge: true }, 2), false);
  assert.equal(canRunInParallel(['a', '-'], {}, 2), false);
  assert.equal(canRunInParallel(['a', 'b'], { onFinding: () => undefined }, 2), false);
});

for (const jobs of [2, 3, 8]) {
  test(`sequential and ${jobs} worker threads give the same report`, async () => {
    const sequential = await analyzeFiles(inputs);
    const parallel = await analyzeFilesParallel(inputs, {}, jobs);
    assert.deepEqual(parallel.errors, sequential.errors);
    assert.equal(parallel.errors.length, 1, 'the missing file is the one error');
    assert.equal(parallel.result.inputs.length, inputs.length);
    assert.equal(await jsonReport(parallel.result), await jsonReport(sequential.result));
    // The generated inputs' conversations are all there, numbered on across inputs.
    const generated = generatedConnections.reduce((n, c) => n + c, 0);
    assert.ok(sequential.result.summary.conversations >= generated);
    const ids = parallel.result.conversations.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length, 'conversation ids are unique across inputs');
  });
}

test('options reach the workers: filters and thresholds give the same report as sequential', async () => {
  const options = {
    filter: { ports: [443] },
    policy: { disabled: ['reset-ratio'], severity: {}, thresholds: {} },
    tracker: { maxConversations: 1000 },
  };
  const sequential = await analyzeFiles(inputs, options);
  const parallel = await analyzeFilesParallel(inputs, options, 3);
  assert.equal(await jsonReport(parallel.result), await jsonReport(sequential.result));
  assert.ok(parallel.result.findings.every((f) => f.detector !== 'reset-ratio'));
});

test('connscope analyze --json: --jobs 1 and --jobs 3 write the same bytes and exit the same', () => {
  const run = (jobs: string) =>
    spawnSync(process.execPath, [join(ROOT, 'bin', 'connscope.js'), 'analyze', '--json', '--jobs', jobs, ...inputs], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
  const one = run('1');
  const three = run('3');
  assert.ok(one.stdout.length > 0);
  assert.equal(three.stdout, one.stdout);
  assert.equal(three.status, one.status);
  assert.equal(three.stderr, one.stderr);
});
