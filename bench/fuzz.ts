/**
 * `npm run fuzz`: the long hostile-input fuzz run. Mutants of real captures (test/hostile/mutate.ts)
 * go through the whole pipeline in-process (test/hostile/harness.ts: reader in random chunks, gzip,
 * decoder, tracker with tiny conversation caps, detectors, every report format) and each result is
 * checked. The bounded run of the same cases is part of `npm test` (test/hostile/fuzz.test.ts).
 *
 *   npm run fuzz                          # 100,000 cases from a random seed (printed)
 *   npm run fuzz -- 1000000 --seed 42     # a million cases from seed 42
 *   npm run fuzz -- --seed 42 --case 1234 # replay one case in this process, with its stack trace
 *   npm run fuzz -- --out DIR             # where reproducers go (default fuzz-failures/)
 *   npm run fuzz -- --timeout 20 --memory 1024   # per-case hang limit (s), worker heap limit (MiB)
 *   npm run fuzz -- --no-corpus           # seeds from fixtures/ only (not ../shared/corpus)
 *
 * Cases run in a worker thread with a heap limit, watched from the main thread: an exception, a
 * failed check, a case running past the time limit (a hang) or the worker running out of memory is a
 * failure. Each failure's input is written to the output directory with a note on how to replay it,
 * and the run goes on with the next case. Exit code 1 when anything failed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { loadSeeds, makeCase, runCase, type FuzzCase } from '../test/hostile/harness.js';

interface Options {
  cases: number;
  seed: number;
  replay: number | null;
  out: string;
  timeoutSeconds: number;
  memoryMb: number;
  corpus: boolean;
}

interface WorkerInput {
  seed: number;
  from: number;
  to: number;
  corpus: boolean;
  /** [0]: index of the case running now, [1]: cases finished. */
  progress: SharedArrayBuffer;
}

interface FailureMessage {
  index: number;
  kind: 'exception' | 'hang' | 'out of memory' | 'worker died';
  message: string;
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    cases: 100_000, seed: (Math.random() * 2 ** 31) >>> 0, replay: null, out: 'fuzz-failures',
    timeoutSeconds: 20, memoryMb: 1024, corpus: true,
  };
  const number = (i: number): number => {
    const n = Number(argv[i]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${argv[i - 1]} needs a whole number, got ${argv[i]}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--seed') options.seed = number(++i);
    else if (arg === '--case') options.replay = number(++i);
    else if (arg === '--out') options.out = argv[++i] ?? options.out;
    else if (arg === '--timeout') options.timeoutSeconds = number(++i);
    else if (arg === '--memory') options.memoryMb = number(++i);
    else if (arg === '--no-corpus') options.corpus = false;
    else if (/^\d+$/.test(arg)) options.cases = Number(arg);
    else throw new Error(`unknown argument ${arg} (see the top of bench/fuzz.ts)`);
  }
  return options;
}

function errorText(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** The worker: runs cases [from, to) and reports failures; the main thread watches the clock. */
async function work(input: WorkerInput): Promise<void> {
  const seeds = loadSeeds({ corpus: input.corpus });
  const progress = new Int32Array(input.progress);
  for (let i = input.from; i < input.to; i++) {
    Atomics.store(progress, 0, i);
    try {
      await runCase(makeCase(seeds, input.seed, i));
    } catch (error) {
      parentPort!.postMessage({ index: i, kind: 'exception', message: errorText(error) } satisfies FailureMessage);
    }
    Atomics.add(progress, 1, 1);
  }
}

function describeCase(c: FuzzCase): string {
  return [
    `from: ${c.origin.join(' + ')}`,
    `mutations: ${c.mutations.join(', ')}`,
    `inputs: ${c.inputs.map((b) => `${b.length} bytes`).join(', ')}${c.inputs.length > 1 ? ' (analysed as one capture, --merge)' : ''}`,
    `chunk sizes: ${c.chunkSizes.join(', ')}${c.gzip ? ', gzip-compressed' : ''}`,
    `max conversations: ${c.maxConversations ?? 'default'}, stored: ${c.maxStoredConversations ?? 'default'}, port filter: ${c.port ?? 'none'}`,
  ].join('\n');
}

async function replay(options: Options): Promise<number> {
  const seeds = loadSeeds({ corpus: options.corpus });
  const c = makeCase(seeds, options.seed, options.replay!);
  console.log(`seed ${options.seed} case ${c.index}\n${describeCase(c)}`);
  try {
    const result = await runCase(c);
    console.log(`ok: ${result.summary.packets} packets, ${result.summary.tcpPackets} TCP, ${result.summary.conversations} conversations, ${result.findings.length} findings`);
    return 0;
  } catch (error) {
    console.log(errorText(error));
    return 1;
  }
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (options.replay !== null) return replay(options);
  const seeds = loadSeeds({ corpus: options.corpus });
  const out = resolve(options.out);
  console.log(`fuzz: ${options.cases.toLocaleString('en-US')} cases, seed ${options.seed}, ${seeds.length} seed captures` +
    `, ${options.timeoutSeconds} s per case, worker heap ${options.memoryMb} MiB`);
  console.log(`replay a case with: npm run fuzz -- --seed ${options.seed} --case <index>${options.corpus ? '' : ' --no-corpus'}`);

  const failures: FailureMessage[] = [];
  const record = (failure: FailureMessage): void => {
    failures.push(failure);
    const c = makeCase(seeds, options.seed, failure.index);
    mkdirSync(out, { recursive: true });
    const base = join(out, `seed${options.seed}-case${failure.index}`);
    c.inputs.forEach((bytes, k) => writeFileSync(`${base}-${k}.bin`, bytes));
    writeFileSync(`${base}.txt`, `${failure.kind}: seed ${options.seed} case ${failure.index}\n${describeCase(c)}\n` +
      `replay: npm run fuzz -- --seed ${options.seed} --case ${failure.index}${options.corpus ? '' : ' --no-corpus'}\n` +
      `analyse: node bin/connscope.js analyze ${c.inputs.map((_, k) => `${base}-${k}.bin`).join(' ')}${c.inputs.length > 1 ? ' --merge' : ''}\n\n${failure.message}\n`);
    console.log(`FAIL case ${failure.index} (${failure.kind}): ${failure.message.split('\n')[0]}\n  reproducer: ${base}-*.bin`);
  };

  const started = Date.now();
  let peakRss = 0;
  let next = 0;
  while (next < options.cases) {
    const progress = new SharedArrayBuffer(8);
    const counters = new Int32Array(progress);
    Atomics.store(counters, 0, next);
    const worker = new Worker(fileURLToPath(import.meta.url), {
      workerData: { seed: options.seed, from: next, to: options.cases, corpus: options.corpus, progress } satisfies WorkerInput,
      resourceLimits: { maxOldGenerationSizeMb: options.memoryMb },
    });
    worker.on('message', (failure: FailureMessage) => record(failure));
    // Resolves when the worker exits, with where to resume: past the end, or past the case that hung
    // or killed the worker.
    next = await new Promise<number>((done) => {
      let resume = -1;
      let watched = -1;
      let since = Date.now();
      let lastReport = Date.now();
      const base = next;
      const timer = setInterval(() => {
        const rss = process.memoryUsage.rss();
        if (rss > peakRss) peakRss = rss;
        const current = Atomics.load(counters, 0);
        if (current !== watched) {
          watched = current;
          since = Date.now();
        } else if (Date.now() - since > options.timeoutSeconds * 1000) {
          clearInterval(timer);
          record({ index: current, kind: 'hang', message: `still running after ${options.timeoutSeconds} s` });
          resume = current + 1;
          void worker.terminate();
          return;
        }
        if (Date.now() - lastReport >= 10_000) {
          lastReport = Date.now();
          const finished = base + Atomics.load(counters, 1);
          const seconds = (Date.now() - started) / 1000;
          console.log(`  ${finished.toLocaleString('en-US')} cases, ${Math.round(finished / seconds)}/s, ` +
            `${failures.length} failures, RSS ${Math.round(rss / 2 ** 20)} MiB`);
        }
      }, 250);
      worker.on('error', (error: Error & { code?: string }) => {
        const current = Atomics.load(counters, 0);
        record({
          index: current,
          kind: error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out of memory' : 'worker died',
          message: errorText(error),
        });
        resume = current + 1;
      });
      worker.on('exit', () => {
        clearInterval(timer);
        done(resume >= 0 ? resume : base + Atomics.load(counters, 1));
      });
    });
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(`fuzz: ${options.cases.toLocaleString('en-US')} cases in ${seconds.toFixed(0)} s ` +
    `(${Math.round(options.cases / seconds)}/s), seed ${options.seed}, ${failures.length} failures, ` +
    `peak RSS ${Math.round(peakRss / 2 ** 20)} MiB`);
  const kinds = new Map<string, number>();
  for (const f of failures) kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
  for (const [kind, n] of kinds) console.log(`  ${kind}: ${n}`);
  if (failures.length > 0) console.log(`reproducers in ${out}`);
  return failures.length > 0 ? 1 : 0;
}

if (isMainThread) {
  main().then((code) => {
    process.exitCode = code;
  }, (error: unknown) => {
    console.error(`fuzz: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  });
} else {
  await work(workerData as WorkerInput);
}
