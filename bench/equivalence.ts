/**
 * Proves a performance change left connscope's results alone: `--save` records the JSON report of
 * `connscope analyze --json` (and its exit code and stderr) for every capture of the fixtures, the
 * public corpus and a few generated captures; `--compare` runs the current build on the same inputs
 * and lists every report that differs, with the first differing JSON path.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/equivalence.js --save      # on the reference build
 *   npx tsc -p tsconfig.json && node dist/bench/equivalence.js --compare   # after a change
 *   ... --only NAME                                                         # cases whose name contains NAME
 *
 * The JSON report holds no timing or memory figures, so reports are compared whole. Generated
 * captures and the saved reports go to bench/data/equivalence/ (gitignored).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCapture, type GenerateOptions } from './generate.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DATA = join(ROOT, 'bench', 'data', 'equivalence');
const REFERENCE = join(DATA, 'reference');
const CONNSCOPE = join(ROOT, 'bin', 'connscope.js');
const CORPUS = resolve(ROOT, '..', 'shared', 'corpus');

interface Case {
  name: string;
  files: string[];
  args: string[];
}

/** Generated traffic that exercises what the fixtures are too small for. */
const GENERATED: { name: string; generate: Omit<GenerateOptions, 'output'>; args?: string[] }[] = [
  // Storms and many resets.
  { name: 'storms', generate: { packets: 60_000, flows: 300, seed: 11, stormRate: 0.05, retransmitRate: 0.05 } },
  // Long think times (idle gaps, keepalive) and more than the 120 s linger of closed conversations.
  { name: 'idle', generate: { packets: 40_000, flows: 2_000, seed: 12, rate: 150 } },
  // Busy: many closes within the linger, port reuse across slots.
  { name: 'busy', generate: { packets: 300_000, flows: 5_000, seed: 13, stormRate: 0.01 } },
  { name: 'flood', generate: { mode: 'flood', tuples: 30_000, seed: 14 }, args: ['--max-conversations', '1000'] },
  { name: 'flood-default-cap', generate: { mode: 'flood', tuples: 30_000, seed: 14 } },
  { name: 'flows-capped', generate: { packets: 200_000, flows: 3_000, seed: 15 }, args: ['--max-conversations', '1500'] },
];

function capturesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...capturesUnder(path));
    else if (!/\.(json|md|sh|tsv|txt)$/.test(entry.name)) found.push(path);
  }
  return found.sort();
}

function generatedCapture(name: string, generate: Omit<GenerateOptions, 'output'>): string {
  const output = join(DATA, 'captures', `${name}.pcap`);
  if (!existsSync(output)) {
    mkdirSync(dirname(output), { recursive: true });
    generateCapture({ ...generate, output });
  }
  return output;
}

function cases(): Case[] {
  const list: Case[] = [];
  for (const dir of [join(ROOT, 'fixtures', 'captures'), join(ROOT, 'fixtures', 'formats'), CORPUS]) {
    for (const file of capturesUnder(dir)) {
      list.push({ name: relative(resolve(ROOT, '..'), file), files: [file], args: [] });
    }
  }
  for (const g of GENERATED) {
    list.push({ name: `generated/${g.name}`, files: [generatedCapture(g.name, g.generate)], args: g.args ?? [] });
  }
  // The bench captures, when `npm run bench` has written them.
  const bench1m = join(ROOT, 'bench', 'data', '1m-10k.pcap');
  if (existsSync(bench1m)) list.push({ name: 'bench/1m-10k', files: [bench1m], args: [] });
  return list;
}

function run(c: Case): string {
  const r = spawnSync(process.execPath, [CONNSCOPE, 'analyze', '--json', ...c.args, ...c.files], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 30,
  });
  return JSON.stringify({ code: r.status, stderr: r.stderr }) + '\n' + r.stdout;
}

function referencePath(c: Case): string {
  return join(REFERENCE, c.name.replace(/[^A-Za-z0-9._-]+/g, '_') + '.out');
}

/** The first JSON path at which two values differ, or null. */
function firstDifference(a: unknown, b: unknown, path = '$'): string | null {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return path;
  if (typeof a !== 'object' || a === null) return a === b ? null : `${path}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const key of keys) {
    const d = firstDifference(ao[key], bo[key], `${path}.${key}`);
    if (d) return d;
  }
  return null;
}

function describe(reference: string, current: string): string {
  const [refHead, ...refBody] = reference.split('\n');
  const [curHead, ...curBody] = current.split('\n');
  if (refHead !== curHead) return `exit/stderr: ${refHead} -> ${curHead}`;
  try {
    return firstDifference(JSON.parse(refBody.join('\n')), JSON.parse(curBody.join('\n'))) ?? 'key order or spacing';
  } catch {
    return 'output is not JSON';
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const save = args.includes('--save');
  if (!save && !args.includes('--compare')) {
    console.error('usage: node dist/bench/equivalence.js --save|--compare [--only NAME]');
    process.exit(2);
  }
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const selected = cases().filter((c) => !only || c.name.includes(only));
  mkdirSync(REFERENCE, { recursive: true });
  let differing = 0;
  for (const c of selected) {
    const output = run(c);
    const path = referencePath(c);
    if (save) {
      writeFileSync(path, output);
      continue;
    }
    if (!existsSync(path) || statSync(path).size === 0) {
      console.log(`MISSING  ${c.name} (no saved reference)`);
      differing++;
      continue;
    }
    const reference = readFileSync(path, 'utf8');
    if (reference === output) continue;
    differing++;
    console.log(`DIFFERS  ${c.name}: ${describe(reference, output)}`);
  }
  console.log(save
    ? `saved ${selected.length} reference reports in ${relative(ROOT, REFERENCE)}`
    : `${selected.length - differing} of ${selected.length} reports identical`);
  if (differing > 0) process.exit(1);
}

main();
