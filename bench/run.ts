/**
 * `npm run bench`: generates the benchmark captures if absent (bench/data/, gitignored), then runs
 * `connscope analyze --json` and, where installed, `tcptrace -n` and `tshark -n -q -z conv,tcp` on
 * the same files, taking turns run by run so a busy machine slows all of them alike, and prints
 * one table: median wall time, CPU time, packets/s, MB/s, peak RSS, and connscope's speed-up over
 * each peer.
 *
 *   npm run bench                      # everything (a few minutes)
 *   npm run bench -- --runs 5          # more runs per tool and file
 *   npm run bench -- --only 1m-10k     # one capture (repeatable)
 *   npm run bench -- --no-peers        # connscope only
 *   npm run bench -- --json out.json   # also write the figures as JSON
 *
 * Peak RSS comes from GNU time (`/usr/bin/time -v`, Debian package `time`) when present, else from
 * polling /proc/<pid>/status (VmHWM) while the process runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATOR_VERSION, generateCapture, type GenerateOptions } from './generate.js';

/** The repository root: this file runs as dist/bench/run.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DATA = join(ROOT, 'bench', 'data');
const CONNSCOPE = join(ROOT, 'bin', 'connscope.js');

export interface BenchCapture {
  name: string;
  /** The capture file's name when it is another entry's (same file, other connscope options). */
  file?: string;
  generate: Omit<GenerateOptions, 'output'>;
  /** Extra `connscope analyze` options. */
  args?: string[];
  /** Peers that run on this capture (tshark is slow: only the smallest file). */
  peers: ('tshark' | 'tcptrace')[];
  /** Runs of a peer on this file at most (its runs are long). */
  peerRuns?: number;
}

export const CAPTURES: BenchCapture[] = [
  { name: '1m-10k', generate: { packets: 1_000_000, flows: 10_000, seed: 1 }, peers: ['tcptrace', 'tshark'] },
  { name: '1m-200k', generate: { packets: 1_000_000, flows: 200_000, seed: 2 }, peers: ['tcptrace'] },
  { name: '5m-10k', generate: { packets: 5_000_000, flows: 10_000, seed: 3 }, peers: ['tcptrace'], peerRuns: 1 },
  { name: '5m-200k', generate: { packets: 5_000_000, flows: 200_000, seed: 4 }, peers: ['tcptrace'], peerRuns: 1 },
  { name: 'flood-1m', generate: { mode: 'flood', tuples: 1_000_000, seed: 5 }, peers: ['tcptrace'], peerRuns: 1 },
  // The same flood with a smaller conversation cap: peak memory follows the cap, not the tuples.
  {
    name: 'flood-1m-cap100k', file: 'flood-1m', generate: { mode: 'flood', tuples: 1_000_000, seed: 5 },
    args: ['--max-conversations', '100000'], peers: [],
  },
];

/**
 * Peak RSS connscope may reach on the 1M-distinct-tuple flood with the default conversation cap
 * (500,000; see README.md, "Performance"): the cap bounds it, not the number of tuples.
 */
export const FLOOD_RSS_BOUND_MB = 2048;

interface Measurement {
  wall: number;
  cpu: number;
  rssMb: number;
  code: number;
}

interface Row {
  capture: string;
  tool: string;
  packets: number;
  megabytes: number;
  runs: number;
  wall: number;
  cpu: number;
  rssMb: number;
}

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

const GNU_TIME = existsSync('/usr/bin/time') &&
  spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { encoding: 'utf8' }).status === 0 ? '/usr/bin/time' : null;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs a command with stdout discarded; wall clock from here, CPU and peak RSS of the child. */
function measure(argv: string[]): Promise<Measurement> {
  const timeFile = join(tmpdir(), `connscope-bench-${process.pid}.time`);
  const cmd = GNU_TIME ? [GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, ...argv] : argv;
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString();
    });
    let hwm = 0;
    const poll = GNU_TIME ? null : setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwm = Math.max(hwm, Number(m[1]));
      } catch {
        // gone already
      }
    }, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      if (poll) clearInterval(poll);
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      let cpu = NaN;
      let rssKb = hwm;
      if (GNU_TIME) {
        const fields = readFileSync(timeFile, 'utf8').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
        rmSync(timeFile, { force: true });
        cpu = (fields[1] ?? NaN) + (fields[2] ?? NaN);
        rssKb = fields[3] ?? 0;
      }
      if (code !== 0 && !(argv[0].endsWith('node') && code === 1)) {
        // connscope exits 1 when it has findings: that is a result, not a failure.
        process.stderr.write(`bench: ${argv.join(' ')} exited ${code}\n${stderr}\n`);
      }
      resolvePromise({ wall, cpu, rssMb: rssKb / 1024, code: code ?? -1 });
    });
  });
}

function toolCommand(tool: string, file: string, args: string[]): string[] {
  switch (tool) {
    case 'connscope':
      return [process.execPath, CONNSCOPE, 'analyze', '--json', ...args, file];
    case 'tshark':
      return ['tshark', '-n', '-q', '-z', 'conv,tcp', '-r', file];
    case 'tcptrace':
      return ['tcptrace', '-n', file];
    default:
      throw new Error(tool);
  }
}

function ensureCapture(capture: BenchCapture): { path: string; packets: number } {
  mkdirSync(DATA, { recursive: true });
  const path = join(DATA, `${capture.file ?? capture.name}.pcap`);
  const meta = `${path}.json`;
  if (existsSync(path) && existsSync(meta)) {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { packets: number; options: unknown; generator?: number };
    if (JSON.stringify(m.options) === JSON.stringify(capture.generate) && m.generator === GENERATOR_VERSION) {
      return { path, packets: m.packets };
    }
  }
  process.stderr.write(`bench: generating ${path} ...\n`);
  const result = generateCapture({ ...capture.generate, output: path });
  writeFileSync(meta, `${JSON.stringify({ options: capture.generate, generator: GENERATOR_VERSION, ...result }, null, 1)}\n`);
  return { path, packets: result.packets };
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function formatTable(rows: Row[]): string {
  const header = ['capture', 'packets', 'MB', 'tool', 'runs', 'wall s (median)', 'CPU s', 'pkt/s', 'MB/s', 'peak RSS MB', 'connscope speed-up'];
  const lines: string[][] = [header];
  for (const row of rows) {
    const own = rows.find((r) => r.capture === row.capture && r.tool === 'connscope');
    const ratio = row.tool === 'connscope' || own === undefined ? '' : `${(row.wall / own.wall).toFixed(1)}x`;
    lines.push([
      row.capture,
      `${(row.packets / 1e6).toFixed(2)}M`,
      row.megabytes.toFixed(0),
      row.tool,
      String(row.runs),
      row.wall.toFixed(2),
      Number.isNaN(row.cpu) ? '-' : row.cpu.toFixed(2),
      `${(row.packets / row.wall / 1e6).toFixed(2)}M`,
      (row.megabytes / row.wall).toFixed(0),
      row.rssMb.toFixed(0),
      ratio,
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const numeric = new Set([1, 2, 4, 5, 6, 7, 8, 9, 10]);
  const out = lines.map((l) => `| ${l.map((cell, i) => pad(cell, widths[i], numeric.has(i))).join(' | ')} |`);
  out.splice(1, 0, `|${widths.map((w, i) => (numeric.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
  return out.join('\n');
}

async function main(argv: string[]): Promise<number> {
  let runs = 3;
  let peers = true;
  let jsonOut: string | null = null;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--runs') runs = Math.max(1, Number(argv[++i]));
    else if (arg === '--only') only.push(argv[++i]);
    else if (arg === '--no-peers') peers = false;
    else if (arg === '--json') jsonOut = argv[++i];
    else if (arg === '--list') {
      for (const c of CAPTURES) process.stdout.write(`${c.name}\n`);
      return 0;
    } else {
      process.stderr.write('usage: npm run bench -- [--runs N] [--only NAME]... [--no-peers] [--json FILE] [--list]\n');
      return 2;
    }
  }
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js'))) {
    process.stderr.write('bench: build first (npm run build)\n');
    return 2;
  }
  const selected = CAPTURES.filter((c) => only.length === 0 || only.includes(c.name));
  const installed = new Set(['tshark', 'tcptrace'].filter((t) => peers && which(t) !== null));
  process.stderr.write(
    `bench: ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ` +
    `peers: ${[...installed].join(', ') || 'none'}, RSS via ${GNU_TIME ? 'GNU time' : '/proc VmHWM polling'}\n`);
  const rows: Row[] = [];
  for (const capture of selected) {
    const { path, packets } = ensureCapture(capture);
    const megabytes = statSync(path).size / 1e6;
    const tools = ['connscope', ...capture.peers.filter((p) => installed.has(p))];
    const samples = new Map<string, Measurement[]>(tools.map((t) => [t, []]));
    const maxRuns = (tool: string): number => {
      if (tool === 'connscope') return runs;
      if (tool === 'tshark') return Math.min(runs, 2);
      return Math.min(runs, capture.peerRuns ?? runs);
    };
    // Paired in turn: run 1 of every tool, then run 2 of every tool, ...
    for (let run = 0; run < runs; run++) {
      for (const tool of tools) {
        if (run >= maxRuns(tool)) continue;
        const m = await measure(toolCommand(tool, path, capture.args ?? []));
        samples.get(tool)?.push(m);
        process.stderr.write(
          `bench: ${capture.name} ${tool} run ${run + 1}: ${m.wall.toFixed(2)} s, ${m.rssMb.toFixed(0)} MB\n`);
      }
    }
    for (const tool of tools) {
      const s = samples.get(tool) ?? [];
      rows.push({
        capture: capture.name,
        tool,
        packets,
        megabytes,
        runs: s.length,
        wall: median(s.map((m) => m.wall)),
        cpu: median(s.map((m) => m.cpu)),
        rssMb: Math.max(...s.map((m) => m.rssMb)),
      });
    }
  }
  process.stdout.write(`${formatTable(rows)}\n`);
  const flood = rows.find((r) => r.capture === 'flood-1m' && r.tool === 'connscope');
  if (flood) {
    const ok = flood.rssMb <= FLOOD_RSS_BOUND_MB;
    process.stdout.write(
      `\n1M-distinct-tuple flood: connscope peak RSS ${flood.rssMb.toFixed(0)} MB, bound ${FLOOD_RSS_BOUND_MB} MB: ` +
      `${ok ? 'within' : 'EXCEEDED'}\n`);
    if (!ok) process.exitCode = 1;
  }
  if (jsonOut !== null) writeFileSync(jsonOut, `${JSON.stringify({ node: process.version, cpus: cpus().length, rows }, null, 1)}\n`);
  return process.exitCode === 1 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 2;
    },
  );
}
