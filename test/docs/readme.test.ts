import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT } from '../../src/cli/main.js';
import { CORRELATION_SPECS } from '../../src/correlate/catalogue.js';
import { DETECTORS } from '../../src/detect/registry.js';
import { CLI, REPO_ROOT } from '../helpers/paths.js';

/**
 * The README is the manual: these checks keep it in step with the code. Commands and options are read
 * from the CLI's own help (commander's definitions), never listed here by hand.
 */

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const lines = readme.split('\n');

function help(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, `connscope ${args.join(' ')} --help: ${r.stderr}`);
  return r.stdout;
}

/** The lines of one section of `--help` output ("Commands:", "Options:"), up to the next blank line. */
function helpSection(text: string, name: string): string[] {
  const all = text.split('\n');
  const start = all.indexOf(`${name}:`);
  if (start < 0) return [];
  const end = all.findIndex((line, i) => i > start && line.trim() === '');
  return all.slice(start + 1, end < 0 ? undefined : end);
}

/** Option flags as commander prints them: `  -q, --quiet  ...` (wrapped description lines are indented further). */
function optionFlags(text: string): string[] {
  const flags: string[] = [];
  for (const line of helpSection(text, 'Options')) {
    const m = /^ {2}(-\w)?(?:, )?(--[a-z][\w-]*)?/.exec(line);
    if (!m) continue;
    for (const flag of [m[1], m[2]]) if (flag !== undefined && flag !== '-h' && flag !== '--help') flags.push(flag);
  }
  return flags;
}

const COMMANDS = helpSection(help(), 'Commands')
  .map((line) => /^ {2}([a-z][\w-]*)/.exec(line)?.[1])
  .filter((name): name is string => name !== undefined && name !== 'help');

function mentions(text: string, flag: string): boolean {
  const escaped = flag.replace(/[-/\\^$*+?.()|[\]{}]/g, '\\$&');
  return new RegExp(`(^|[^\\w-])${escaped}(?![\\w-])`).test(text);
}

/** The text of the section whose heading matches, up to the next heading of the same or a higher level. */
function section(heading: RegExp): string | null {
  const start = lines.findIndex((line) => heading.test(line));
  if (start < 0) return null;
  const level = /^#+/.exec(lines[start])![0].length;
  const end = lines.findIndex((line, i) => i > start && /^#+ /.test(line) && /^#+/.exec(line)![0].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.replace(/^#+\s*/, '').trim().toLowerCase().replace(/[^\p{L}\p{M}\p{N}_\s-]/gu, '').replace(/\s/g, '-');
}

test('README opens with the install-and-run command and the test command', () => {
  const opening = lines.slice(0, 8).join('\n');
  assert.match(opening, /npm install && npm start/);
  assert.match(opening, /npm test/);
  // Right after the title and the pitch: the first code block holds exactly these two commands.
  const fence = lines.findIndex((line) => line.startsWith('```'));
  assert.ok(fence > 0 && fence < 8, 'the first code block starts within the first 8 lines');
  const close = lines.findIndex((line, i) => i > fence && line.startsWith('```'));
  const commands = lines.slice(fence + 1, close).map((line) => line.replace(/#.*$/, '').trim()).filter((line) => line !== '');
  assert.deepEqual(commands, ['npm install && npm start', 'npm test']);
  assert.ok(!lines.slice(1, fence).some((line) => line.startsWith('#')), 'no heading between the title and the commands');
});

test('README documents every detector id and its thresholds are reachable through explain', () => {
  for (const spec of DETECTORS) assert.match(readme, new RegExp('`' + spec.id + '`'), spec.id);
});

test('README documents every finding kind only correlate makes', () => {
  const correlation = section(/^### Findings only `correlate` makes/);
  assert.ok(correlation !== null, 'a section on the findings only correlate makes');
  for (const spec of CORRELATION_SPECS) assert.match(correlation, new RegExp('`' + spec.id + '`'), spec.id);
});

test('README has a section for every CLI command, listing each of its options', () => {
  assert.ok(COMMANDS.length >= 7, `commands read from --help: ${COMMANDS.join(', ')}`);
  for (const command of COMMANDS) {
    const text = section(new RegExp('^### `' + command + '[ `]'));
    assert.ok(text !== null, `no "### \`${command} ...\`" section in the README`);
    const missing = optionFlags(help(command)).filter((flag) => !mentions(text, flag));
    assert.deepEqual(missing, [], `options of ${command} not documented in its section`);
  }
});

test('README documents the global options', () => {
  const missing = optionFlags(help()).filter((flag) => !mentions(readme, flag));
  assert.deepEqual(missing, []);
});

test('README lists every exit code', () => {
  const text = section(/^### Exit codes/);
  assert.ok(text !== null, 'an "Exit codes" section');
  for (const [name, code] of Object.entries(EXIT)) assert.match(text, new RegExp(`^\\| ${code} \\|`, 'm'), `exit code ${code} (${name})`);
});

test('README: every npm script it names exists', () => {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  for (const [, name] of readme.matchAll(/npm run ([\w:-]+)/g)) assert.ok(name in scripts, `npm run ${name}`);
});

test('README: links to files exist, anchors match headings, nothing points into docs/', () => {
  const anchors = new Set(lines.filter((line) => /^#{1,6} /.test(line)).map(slug));
  for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target)) continue;
    if (target.startsWith('#')) {
      assert.ok(anchors.has(target.slice(1)), `anchor ${target} matches no heading`);
      continue;
    }
    const path = target.split('#')[0];
    assert.ok(!path.startsWith('docs/'), `link into docs/: ${target}`);
    assert.ok(existsSync(join(REPO_ROOT, path)), `linked file ${path} exists`);
  }
});
