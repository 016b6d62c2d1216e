import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { capture, CLI, facts, REPO_ROOT } from '../helpers/paths.js';

/** Runs the real command line, without colour, as a user would. */
function connscope(args: string[], input?: string) {
  const run = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    input,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined },
  });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const formats = (name: string) => join(REPO_ROOT, 'fixtures', 'formats', name);
const STORM = capture('idle-timeout-storm.pcap');
const HEALTHY = capture('healthy-mix.pcap');
interface StormFacts { storm: { client: string; server: string } }

test('bad inputs: one line on stderr, exit code 2, no stack trace', () => {
  const cases: [string, RegExp][] = [
    [formats('does-not-exist.pcap'), /no such file/],
    [join(REPO_ROOT, 'fixtures'), /is a directory/],
    [formats('empty.pcap'), /empty file/],
    [formats('not-a-capture.html'), /not a pcap or pcapng file/],
  ];
  for (const [path, message] of cases) {
    const run = connscope(['analyze', path]);
    assert.equal(run.code, 2, path);
    assert.match(run.stderr, message);
    assert.match(run.stderr, /^connscope: error: /);
    assert.equal(run.stderr.trim().split('\n').length, 1, `one line for ${path}: ${run.stderr}`);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('damaged and odd captures: warning, results kept, exit 0', () => {
  const cases: [string, RegExp][] = [
    ['truncated-mid-record.pcap', /capture truncated at byte \d+ \(record \d+ incomplete\)/],
    ['corrupt-record-length.pcap', /corrupt record \d+ at byte \d+/],
    ['no-tcp.pcapng', /no TCP packets/],
    ['unsupported-link.pcap', /link type 105 \(IEEE802_11\) skipped/],
  ];
  for (const [name, warning] of cases) {
    const run = connscope(['analyze', formats(name), '--json']);
    assert.equal(run.code, 0, name);
    assert.match(run.stderr, warning, name);
    const report = JSON.parse(run.stdout);
    assert.ok(report.inputs[0].warnings.some((w: string) => warning.test(w)), name);
  }
  // Everything before the damage is analysed: the cut file keeps its first records' conversation.
  const cut = JSON.parse(connscope(['analyze', formats('truncated-mid-record.pcap'), '--json']).stdout);
  assert.equal(cut.inputs[0].truncated, true);
  assert.ok(cut.summary.tcpPackets > 0);
});

test('one unreadable input among good ones: the good ones are reported, exit 2', () => {
  const run = connscope(['analyze', STORM, formats('empty.pcap'), '--json']);
  assert.equal(run.code, 2);
  const report = JSON.parse(run.stdout);
  assert.equal(report.inputs.length, 2);
  assert.ok(report.inputs[0].tcpPackets > 0);
  assert.match(report.inputs[1].error, /empty file/);
});

test('usage errors exit 2', () => {
  assert.equal(connscope(['analyze']).code, 2);
  assert.equal(connscope(['analyze', STORM, '--fail-on', 'bogus']).code, 2);
  const badSet = connscope(['analyze', STORM, '--set', 'retransmit-storm.noSuchThing=3']);
  assert.equal(badSet.code, 2);
  assert.match(badSet.stderr, /unknown threshold "noSuchThing"/);
  assert.equal(connscope(['explain', 'no-such-detector']).code, 2);
});

test('--fail-on turns findings into exit code 1', () => {
  assert.equal(connscope(['analyze', STORM, '-q']).code, 0);
  assert.equal(connscope(['analyze', STORM, '-q', '--fail-on', 'critical']).code, 1);
  assert.equal(connscope(['analyze', HEALTHY, '-q', '--fail-on', 'warning']).code, 0);
  // Policy: the storm's detector switched off no longer fails the run on critical.
  assert.equal(connscope(['analyze', STORM, '-q', '--fail-on', 'critical', '--set', 'retransmit-storm.enabled=false']).code, 0);
});

test('stdin: - reads a capture piped in', () => {
  const viaFile = JSON.parse(connscope(['analyze', STORM, '--json']).stdout);
  const run = spawnSync(process.execPath, [CLI, 'analyze', '-', '--json'], { input: readFileSync(STORM), encoding: 'utf8' });
  assert.equal(run.status, 0);
  const viaStdin = JSON.parse(run.stdout);
  assert.deepEqual(viaStdin.conversations, viaFile.conversations);
  assert.deepEqual(viaStdin.findings, viaFile.findings);
});

test('JSON report: schema version, tool, and the storm conversation of the capture facts', () => {
  const report = JSON.parse(connscope(['analyze', STORM, '--json']).stdout);
  assert.equal(report.schemaVersion, 1);
  assert.equal(report.tool.name, 'connscope');
  const { storm } = facts<StormFacts>('idle-timeout-storm');
  const finding = report.findings.find((f: { detector: string }) => f.detector === 'retransmit-storm');
  assert.ok(finding, 'retransmit-storm finding');
  assert.equal(`${finding.client.ip}:${finding.client.port}`, storm.client);
  assert.equal(`${finding.server.ip}:${finding.server.port}`, storm.server);
  const conv = report.conversations.find((c: { id: number }) => c.id === finding.conversations[0]);
  assert.equal(`${conv.client.ip}:${conv.client.port}`, storm.client);
});

test('NDJSON: one object a line, typed, same findings as JSON', () => {
  const lines = connscope(['analyze', STORM, '--format', 'ndjson']).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0].type, 'report');
  assert.equal(lines.at(-1).type, 'summary');
  const json = JSON.parse(connscope(['analyze', STORM, '--json']).stdout);
  assert.deepEqual(lines.filter((l) => l.type === 'finding').map(({ type: _type, ...f }) => f), json.findings);
  assert.equal(lines.filter((l) => l.type === 'conversation').length, json.conversations.length);
});

test('JUnit: valid against the Ant JUnit schema, one suite per capture, failing where findings are', (t) => {
  const run = connscope(['analyze', STORM, HEALTHY, formats('empty.pcap'), '--format', 'junit', '--fail-on', 'warning']);
  assert.equal(run.code, 2);
  const xml = run.stdout;
  assert.equal((xml.match(/<testsuite /g) ?? []).length, 3);
  assert.match(xml, /<testcase name="retransmit-storm" classname="connscope.idle-timeout-storm.pcap" time="0">\s*<failure/);
  const healthySuite = xml.slice(xml.indexOf('name="healthy-mix.pcap"'), xml.indexOf('name="empty.pcap"'));
  assert.match(healthySuite, /failures="0"/);
  assert.match(xml, /<error message="[^"]*empty file/);
  const xmllint = spawnSync('xmllint', ['--version']);
  if (xmllint.error) {
    t.skip('xmllint (libxml2-utils) not installed: schema validation skipped');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'connscope-junit-'));
  writeFileSync(join(dir, 'report.xml'), xml);
  const check = spawnSync('xmllint', ['--noout', '--schema', join(REPO_ROOT, 'test', 'report', 'ant-junit.xsd'), join(dir, 'report.xml')], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
});

test('baseline: accepted findings do not fail the run; stale entries are reported', () => {
  const dir = mkdtempSync(join(tmpdir(), 'connscope-baseline-'));
  const baseline = join(dir, 'baseline.json');
  assert.equal(connscope(['analyze', STORM, '-q', '--write-baseline', baseline]).code, 0);
  const written = JSON.parse(readFileSync(baseline, 'utf8'));
  const { storm } = facts<StormFacts>('idle-timeout-storm');
  const entry = written.entries.find((e: { detector: string }) => e.detector === 'retransmit-storm');
  assert.equal(entry.server, storm.server);
  assert.equal(entry.client, storm.client.split(':')[0], 'client by address only: its port is ephemeral');
  assert.equal(connscope(['analyze', STORM, '-q', '--fail-on', 'info', '--baseline', baseline]).code, 0);
  const stale = JSON.parse(connscope(['analyze', HEALTHY, '--json', '--baseline', baseline]).stdout);
  assert.equal(stale.baseline.stale.length, written.entries.length);
  // A baseline for other traffic does not hide this capture's storm.
  writeFileSync(baseline, JSON.stringify({ schemaVersion: 1, entries: [{ detector: 'retransmit-storm', server: '192.0.2.1:80' }] }));
  assert.equal(connscope(['analyze', STORM, '-q', '--fail-on', 'critical', '--baseline', baseline]).code, 1);
});

test('check --expect: present findings pass; a missing or unexpected one fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'connscope-expect-'));
  const { storm } = facts<StormFacts>('idle-timeout-storm');
  const expectFile = join(dir, 'storm.expect.json');
  writeFileSync(expectFile, JSON.stringify({
    findings: [
      { detector: 'retransmit-storm', server: storm.server, client: storm.client.split(':')[0], evidence: { direction: 'client' } },
      { detector: 'idle-timeout', server: storm.server.split(':')[0] },
    ],
    failOn: 'warning',
  }));
  const pass = connscope(['check', STORM, '--expect', expectFile]);
  assert.equal(pass.code, 0, pass.stdout);
  assert.match(pass.stdout, /check passed/);
  const missing = connscope(['check', HEALTHY, '--expect', expectFile]);
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /✘ missing +retransmit-storm/);
  writeFileSync(expectFile, JSON.stringify({ findings: [] }));
  const unexpected = connscope(['check', STORM, '--expect', expectFile]);
  assert.equal(unexpected.code, 1);
  assert.match(unexpected.stdout, /✘ unexpected retransmit-storm/);
  // --fail-on overrides the file's failOn: with only the storm expected, the idle-timeout warning is
  // unexpected at the file's level (warning) and tolerated at critical.
  writeFileSync(expectFile, JSON.stringify({ findings: [{ detector: 'retransmit-storm', server: storm.server }], failOn: 'warning' }));
  const strict = connscope(['check', STORM, '--expect', expectFile]);
  assert.equal(strict.code, 1);
  assert.match(strict.stdout, /✘ unexpected idle-timeout/);
  const lenient = connscope(['check', STORM, '--expect', expectFile, '--fail-on', 'critical']);
  assert.equal(lenient.code, 0, lenient.stdout);
});

test('explain lists every detector and correlate finding, and details one of each', () => {
  const list = connscope(['explain']);
  assert.equal(list.code, 0);
  for (const id of ['retransmit-storm', 'blackhole', 'timewait-collision', 'reset-ratio', 'zero-window']) assert.match(list.stdout, new RegExp(`\\b${id}\\b`));
  const [, correlateSection = ''] = list.stdout.split(/^Found only by connscope correlate.*$/m);
  for (const id of ['path-loss', 'in-flight-change', 'unpropagated-failure']) assert.match(correlateSection, new RegExp(`\\b${id}\\b`));
  const one = connscope(['explain', 'retransmit-storm']);
  assert.match(one.stdout, /minRetransmits/);
  assert.match(one.stdout, /Evidence fields/);
  const correlateOnly = connscope(['explain', 'unpropagated-failure']);
  assert.equal(correlateOnly.code, 0);
  assert.match(correlateOnly.stdout, /minSilentSeconds/);
});

test('flow: the ladder of the storm conversation shows its retransmissions', () => {
  const { storm } = facts<StormFacts & { storm: { retransmissions: unknown[] } }>('idle-timeout-storm');
  const [client, server] = [storm.client, storm.server];
  const run = connscope(['flow', STORM, `${client}-${server}`, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const [ladder] = JSON.parse(run.stdout);
  const retransmitted = ladder.packets.filter((p: { notes: string[] }) => p.notes.includes('retransmission'));
  assert.equal(retransmitted.length, storm.retransmissions.length);
  assert.equal(connscope(['flow', STORM, '9999']).code, 2);
});

test('colour: NO_COLOR and --no-color give plain text, FORCE_COLOR forces colour', () => {
  assert.doesNotMatch(connscope(['analyze', STORM]).stdout, /\x1b\[/);
  const forced = spawnSync(process.execPath, [CLI, 'analyze', STORM], { encoding: 'utf8', env: { ...process.env, NO_COLOR: undefined, FORCE_COLOR: '1' } });
  assert.match(forced.stdout, /\x1b\[/);
  const off = spawnSync(process.execPath, [CLI, 'analyze', STORM, '--no-color'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: undefined, FORCE_COLOR: '1' } });
  assert.doesNotMatch(off.stdout, /\x1b\[/);
});

test('text evidence shows capture times as times of day, the JSON keeps epoch seconds', () => {
  const json = JSON.parse(connscope(['analyze', STORM, '--json']).stdout);
  const storm = json.findings.find((f: { detector: string }) => f.detector === 'retransmit-storm');
  const text = connscope(['analyze', STORM, '--flows', 'none']).stdout;
  const times = (storm.evidence.times as number[]).slice(0, 6);
  assert.ok(times.length > 0 && times.every((t) => t > 1e9), 'JSON times are epoch seconds');
  const clock = (t: number) => new Date(Math.floor(t * 1000)).toISOString().slice(11, 23);
  assert.ok(text.includes(`times=[${times.map(clock).join(', ')}`), `text evidence lists ${times.map(clock).join(', ')}`);
});
