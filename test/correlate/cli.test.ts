import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { capture, CLI, facts } from '../helpers/paths.js';

/** The real command line, without colour. */
function connscope(args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const NAT = [capture('nat-path-client.pcap'), capture('nat-path-server.pcap')];
const FORGED = [capture('forged-rst-client.pcap'), capture('forged-rst-server.pcap')];

test('correlate CLI: the NAT negative control passes --fail-on info; JSON is analyze\'s schema plus the correlation', () => {
  const f = facts<{ matched_packets: number; mapping: unknown[] }>('nat-path');
  const text = connscope(['correlate', ...NAT, '--fail-on', 'info']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /CORRELATION/);
  assert.match(text.stdout, /UNMATCHED CONVERSATIONS \(A 0, B 0\)/);
  const json = connscope(['correlate', ...NAT, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.equal(report.command, 'correlate');
  assert.equal(report.schemaVersion, 1);
  assert.equal(report.inputs.length, 2);
  assert.deepEqual(report.findings, []);
  assert.equal(report.conversations.length, 2 * f.mapping.length);
  assert.equal(report.correlation.totals.packetsMatched, f.matched_packets);
  assert.equal(report.correlation.pairs.length, f.mapping.length);
});

test('correlate CLI: forged RSTs fail --fail-on critical; policy applies to the correlation findings', () => {
  const strict = connscope(['correlate', ...FORGED, '--fail-on', 'critical', '-q']);
  assert.equal(strict.code, 1);
  assert.match(strict.stdout, /injected-rst/);
  assert.match(strict.stdout, /path-loss/);
  const relaxed = connscope(['correlate', ...FORGED, '--json', '--fail-on', 'warning',
    '--set', 'injected-rst.severity=info', '--set', 'path-loss.severity=info']);
  assert.equal(relaxed.code, 0, relaxed.stderr);
  const findings = JSON.parse(relaxed.stdout).findings as { detector: string; severity: string }[];
  assert.ok(findings.length > 0);
  assert.ok(findings.every((x) => x.severity === 'info'));
  const disabled = connscope(['correlate', ...FORGED, '--json', '--set', 'path-loss.enabled=false']);
  assert.ok((JSON.parse(disabled.stdout).findings as { detector: string }[]).every((x) => x.detector !== 'path-loss'));
});

test('correlate CLI: --clock-offset is used and reported beside the estimate; bad input is exit code 2', () => {
  const given = connscope(['correlate', ...NAT, '--json', '--clock-offset=-0.25']);
  assert.equal(given.code, 0, given.stderr);
  const clock = JSON.parse(given.stdout).correlation.clock;
  assert.equal(clock.source, 'given');
  assert.equal(clock.offset, -0.25);
  assert.equal(clock.given, -0.25);
  assert.equal(clock.estimate.method, 'two-way');
  for (const args of [['correlate', NAT[0], capture('does-not-exist.pcap')], ['correlate', ...NAT, '--clock-offset', 'soon'], ['correlate', NAT[0]]]) {
    const run = connscope(args);
    assert.equal(run.code, 2, args.join(' '));
    assert.ok(run.stderr.length > 0);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }
});
