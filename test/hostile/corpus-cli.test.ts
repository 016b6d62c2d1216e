/**
 * Every file of the public corpus (../shared/corpus: tcpdump's malformed and odd captures, libpcap's
 * invalid ones, zeek's), whatever it is, through the real command line: each run ends, within a
 * time limit, with a defined result. Exit 0 with a report that parses and adds up, or exit 2 with one
 * `connscope: error:` line saying why the file is not a readable capture; never a crash, a stack
 * trace, an internal error or a hang. Not only the captures listed in expected.tsv: the directory is
 * listed, so a file added later is covered too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import type { AnalysisResult } from '../../src/core/session.js';
import { CLI, CORPUS_DIR, corpusRows } from '../helpers/paths.js';
import { checkResult } from './harness.js';

/** Per run: the largest corpus file takes about a second; a hang is anything far beyond that. */
const TIMEOUT_MS = 60_000;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], {
      timeout: TIMEOUT_MS,
      killSignal: 'SIGKILL',
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined },
    }, (error, stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals; code?: number | string }) | null;
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        timedOut: e?.killed === true,
        stdout,
        stderr,
      });
    });
  });
}

/** What every run must look like, whatever the input. */
function assertDefined(r: Run, what: string): void {
  assert.equal(r.timedOut, false, `${what}: still running after ${TIMEOUT_MS / 1000} s`);
  assert.equal(r.signal, null, `${what}: killed by ${r.signal}`);
  assert.ok(r.code === 0 || r.code === 2, `${what}: exit code ${r.code}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: stack trace`);
  // The CLI's wording for an exception that is not the input's fault: a bug, whatever the input.
  assert.doesNotMatch(r.stderr, /run with --debug for details/, `${what}: internal error`);
  for (const line of r.stderr.split('\n').filter((l) => l !== '')) {
    assert.match(line, /^connscope: (error|warning): /, `${what}: stray stderr line`);
  }
}

const present = existsSync(CORPUS_DIR);
const files = present ? listFiles(CORPUS_DIR) : [];
const expected = new Map(corpusRows().map((row) => [row.path, row]));

describe('every file of the corpus through the CLI', { skip: present ? false : 'no ../shared/corpus here', concurrency: 4 }, () => {
  it('the corpus is the one the README describes', () => {
    assert.ok(files.length >= 50, `${files.length} files`);
    for (const path of expected.keys()) assert.ok(files.includes(join(CORPUS_DIR, path)), `${path} listed in expected.tsv is there`);
  });

  for (const file of files) {
    const name = relative(CORPUS_DIR, file);
    const row = expected.get(name);
    it(name, async () => {
      const r = await run(['analyze', file, '--json']);
      assertDefined(r, name);
      if (r.code === 2) {
        assert.equal(r.stdout, '', 'no report when the only input is unreadable');
        const lines = r.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^connscope: error: \S/);
        // A capture tshark reads whole must not be refused.
        assert.ok(row === undefined || row.tshark_error !== '', `${name}: tshark reads it, connscope refused it: ${r.stderr}`);
        return;
      }
      const report = JSON.parse(r.stdout) as AnalysisResult & { schemaVersion: number };
      assert.equal(report.schemaVersion, 1);
      checkResult(report, { inputs: [new Uint8Array(0)], port: undefined });
      assert.ok(row !== undefined, `${name} is not a capture, yet was read as one`);
      assert.equal(report.inputs[0]!.error, null);
    });
  }

  it('all of them in one text report (every input section rendered, unreadable ones included)', async () => {
    const r = await run(['analyze', ...files, '--flows', 'all']);
    assertDefined(r, 'text report');
    assert.equal(r.code, 2, 'some inputs are not captures');
    for (const file of files) assert.ok(r.stdout.includes(file), `${file} has its section`);
  });

  it('all of them merged into one capture (frames numbered on, times going back and forth)', async () => {
    const r = await run(['analyze', '--merge', ...files, '--json']);
    assertDefined(r, 'merged');
    assert.equal(r.code, 2, 'some inputs are not captures');
    const report = JSON.parse(r.stdout) as AnalysisResult;
    checkResult(report, { inputs: files.map(() => new Uint8Array(0)), port: undefined });
    report.inputs.forEach((input, i) => {
      const row = expected.get(relative(CORPUS_DIR, files[i]!));
      if (row === undefined) assert.notEqual(input.error, null, `${input.path} is not a capture`);
      else if (row.tshark_error === '') assert.equal(input.error, null, input.path);
    });
  });
});
