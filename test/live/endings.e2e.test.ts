import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadCap } from '../../src/live/cap-module.js';
import { CLI } from '../helpers/paths.js';
import { CLIENT_IF, exited, LineReader, namespacesWithOkServer, netnsUnavailable, SERVER_IP, SERVER_PORT } from './netns.js';

/**
 * Every way a live capture can end leaves the -w file complete: a valid pcap whose packet count is
 * the count connscope says it wrote (no record lost in a buffer, none cut in half), readable by the
 * offline reader and by capinfos. Each ending runs with both backends where they are available.
 */

const capBuilt = (await loadCap()) !== null;
const haveTcpdump = spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status === 0;
const haveCapinfos = spawnSync('sh', ['-c', 'command -v capinfos'], { stdio: 'ignore' }).status === 0;
const backends = [capBuilt ? 'cap' : null, haveTcpdump ? 'tcpdump' : null].filter((b) => b !== null);

/** Request/response connections to the ok server: argv[1] of them, or without end when 0. */
const TRAFFIC_PY = `
import socket, sys
n = int(sys.argv[1]); i = 0
while n == 0 or i < n:
    c = socket.create_connection(('${SERVER_IP}', ${SERVER_PORT}), timeout=10)
    c.sendall(b'x' * 100); c.recv(10); c.close(); i += 1
print('done', flush=True)
`;

interface Live {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the first stderr line matching. */
  stderrLine: (test: RegExp) => Promise<string>;
}

/** The number in "N packets written to FILE" (abort) or "; N written to FILE" (the closing line). */
function writtenCount(stderr: string): number {
  const match = /([\d,]+) (?:packets )?written to /.exec(stderr);
  assert.ok(match, `no written count in: ${stderr}`);
  return Number(match[1].replace(/,/g, ''));
}

function assertCompleteFile(file: string, written: number, context: string): void {
  const r = spawnSync(process.execPath, [CLI, 'analyze', file, '--json', '--flows', 'none'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `analyze ${file}: ${r.stderr}`);
  const input = (JSON.parse(r.stdout) as { inputs: Array<{ packets: number; truncated: boolean; warnings: string[] }> }).inputs[0];
  assert.equal(input.truncated, false, `${context}: the -w file ends with a whole record`);
  assert.deepEqual(input.warnings.filter((w) => /truncat|corrupt/.test(w)), [], context);
  assert.equal(input.packets, written, `${context}: every packet connscope wrote is in the file`);
  if (haveCapinfos) {
    const info = spawnSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' });
    assert.equal(info.status, 0, `capinfos ${file}: ${info.stderr}`);
    assert.match(info.stdout, new RegExp(`Number of packets:\\s+${written}\\b`), context);
  }
}

describe('live capture endings leave a complete -w file', { skip: netnsUnavailable() ?? (backends.length === 0 ? 'neither cap nor tcpdump available' : false) }, () => {
  const { net, tmp, script } = namespacesWithOkServer({ 'traffic.py': TRAFFIC_PY });
  const trafficPy = script('traffic.py');

  /** `connscope live` on the client's veth, started: it said it is capturing. */
  async function startLive(backend: string, args: string[], iface = CLIENT_IF): Promise<Live> {
    const child = net.spawn(net.client, [process.execPath, CLI, 'live', '--backend', backend, '-i', iface, ...args]);
    let stderr = '';
    const waiters: Array<{ test: RegExp; resolve: (line: string) => void }> = [];
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      stderr += text;
      for (const w of waiters.splice(0)) {
        const line = stderr.split('\n').find((l) => w.test.test(l));
        if (line !== undefined) w.resolve(line);
        else waiters.push(w);
      }
    });
    const stderrLine = (test: RegExp): Promise<string> => {
      const line = stderr.split('\n').find((l) => test.test(l));
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        waiters.push({ test, resolve });
        void exited(child).then(() => setTimeout(() => reject(new Error(`exited without ${test}: ${stderr}`)), 100));
      });
    };
    await stderrLine(/Ctrl-C stops/);
    return { child, stderr: () => stderr, stderrLine };
  }

  async function traffic(connections: number): Promise<void> {
    const { code } = await exited(net.spawn(net.client, ['python3', trafficPy, String(connections)], { stdio: ['ignore', 'ignore', 'ignore'] }));
    assert.equal(code, 0, 'traffic generator');
  }

  for (const backend of backends) {
    it(`${backend}: SIGTERM ends with the report, exit 0`, { timeout: 60_000 }, async () => {
      const out = path.join(tmp, `${backend}-term.pcap`);
      const live = await startLive(backend, ['--json', '-w', out, '--duration', '60']);
      const lines = new LineReader(live.child.stdout as NodeJS.ReadableStream, live.stderr);
      await traffic(20);
      live.child.kill('SIGTERM');
      const { code, signal } = await exited(live.child);
      await new Promise<void>((resolve) => lines.onEnd(resolve));
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, live.stderr());
      assert.match(live.stderr(), /ended by signal SIGTERM/);
      const report = JSON.parse(lines.lines.at(-1) as string) as { inputs: Array<{ packets: number; format: string; live?: unknown }> };
      assert.equal(report.inputs[0].format, 'live', 'the input is the live capture, not the pipe from the backend');
      assert.deepEqual(report.inputs[0].live, { interface: CLIENT_IF, backend, filter: null });
      const written = writtenCount(live.stderr());
      assert.equal(report.inputs[0].packets, written, 'the report and the file saw the same packets');
      assertCompleteFile(out, written, 'SIGTERM');
    });

    it(`${backend}: the text report names the live source and its filter`, { timeout: 60_000 }, async () => {
      const live = await startLive(backend, ['--duration', '1', 'tcp', 'port', String(SERVER_PORT)]);
      let stdout = '';
      live.child.stdout?.setEncoding('utf8');
      live.child.stdout?.on('data', (text: string) => (stdout += text));
      const { code } = await exited(live.child);
      assert.equal(code, 0, live.stderr());
      assert.match(stdout, new RegExp(`^  live ${CLIENT_IF} \\(${backend}\\), filter "tcp port ${SERVER_PORT}", link `, 'm'));
      assert.doesNotMatch(stdout, /-endian/);
    });

    it(`${backend}: a second Ctrl-C while packets flow exits 130`, { timeout: 60_000 }, async () => {
      const out = path.join(tmp, `${backend}-twice.pcap`);
      // stdout is not read: a report that comes anyway (below) waits on the full pipe, so a later
      // signal still finds the process.
      const live = await startLive(backend, ['--json', '-w', out, '--duration', '60']);
      // Traffic keeps flowing through both signals: packets sit in the writer's buffer when they come.
      const endless = net.spawn(net.client, ['python3', trafficPy, '0'], { stdio: ['ignore', 'ignore', 'ignore'] });
      while (!existsSync(out) || statSync(out).size < 10_000) await new Promise((resolve) => setTimeout(resolve, 100));
      // Two signals sent before the process ran are merged into one by the kernel: until it says it
      // exits, signal again. The second one it handles lands while the capture winds down or, on a
      // loaded machine, during the report.
      const exit = exited(live.child);
      const exiting = /interrupted again|report cut short/;
      live.child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 20));
      live.child.kill('SIGINT');
      const repeat = setInterval(() => {
        if (!exiting.test(live.stderr())) live.child.kill('SIGINT');
      }, 250);
      const { code, signal } = await exit;
      clearInterval(repeat);
      endless.kill('SIGKILL');
      live.child.stdout?.destroy();
      assert.deepEqual({ code, signal }, { code: 130, signal: null }, live.stderr());
      assert.match(live.stderr(), /interrupted again: exiting without a report; [\d,]+ packets written to |SIGINT: report cut short/);
      const written = writtenCount(live.stderr());
      assert.ok(written > 0, live.stderr());
      assertCompleteFile(out, written, 'second SIGINT');
    });

    it(`${backend}: Ctrl-C during the final report cuts it short, exit 130`, { timeout: 60_000 }, async () => {
      const out = path.join(tmp, `${backend}-report.pcap`);
      // stdout is never read: once the pipe is full, writing the report waits, and the signal lands then.
      const live = await startLive(backend, ['--json', '-w', out, '--duration', '60', '--flows', 'all']);
      // A report of 300 conversations is several times the 64 KiB a pipe holds.
      await traffic(300);
      live.child.kill('SIGINT');
      const closing = await live.stderrLine(/captured on .*ended by signal SIGINT/);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(live.child.exitCode, null, `still writing the report: ${live.stderr()}`);
      live.child.kill('SIGINT');
      const { code, signal } = await exited(live.child);
      live.child.stdout?.destroy();
      assert.deepEqual({ code, signal }, { code: 130, signal: null }, live.stderr());
      assert.match(live.stderr(), /SIGINT: report cut short/);
      assertCompleteFile(out, writtenCount(closing), 'SIGINT during the report');
    });

    it(`${backend}: standard output closing (| head) ends the capture, exit 0`, { timeout: 60_000 }, async () => {
      const out = path.join(tmp, `${backend}-epipe.pcap`);
      const live = await startLive(backend, ['--json', '-w', out, '--duration', '60']);
      const stdout = live.child.stdout as NodeJS.ReadableStream & { destroy(): void };
      const lines = new LineReader(stdout, live.stderr);
      await lines.waitFor((l) => l.startsWith('{"type":"start"'), 'the start event');
      await traffic(5);
      stdout.destroy();
      const { code, signal } = await exited(live.child);
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, live.stderr());
      assert.match(live.stderr(), /ended by output-closed/);
      const written = writtenCount(live.stderr());
      assert.ok(written > 0, live.stderr());
      assertCompleteFile(out, written, '| head');
    });

    it(`${backend}: the interface going down ends the capture with a warning and a report`, { timeout: 60_000 }, async () => {
      const out = path.join(tmp, `${backend}-down.pcap`);
      const live = await startLive(backend, ['--json', '-w', out, '--duration', '60']);
      const lines = new LineReader(live.child.stdout as NodeJS.ReadableStream, live.stderr);
      await traffic(5);
      net.exec(net.client, ['ip', 'link', 'set', CLIENT_IF, 'down']);
      try {
        const { code, signal } = await exited(live.child);
        await new Promise<void>((resolve) => lines.onEnd(resolve));
        assert.deepEqual({ code, signal }, { code: 0, signal: null }, live.stderr());
        assert.equal(live.stderr().split('\n').filter((l) => /warning: interface .* went down/.test(l)).length, 1, live.stderr());
        const report = JSON.parse(lines.lines.at(-1) as string) as { inputs: Array<{ packets: number }> };
        const written = writtenCount(live.stderr());
        assert.equal(report.inputs[0].packets, written);
        assertCompleteFile(out, written, 'interface down');
      } finally {
        net.exec(net.client, ['ip', 'link', 'set', CLIENT_IF, 'up']);
      }
    });

    it(`${backend}: the interface disappearing ends the capture with a warning and a report`, { timeout: 60_000 }, async () => {
      const out = path.join(tmp, `${backend}-gone.pcap`);
      // A veth pair of its own inside the client namespace, deleted under the capture.
      const [gone, peer] = ['cs-live-gone', 'cs-live-gone2'];
      net.exec(net.client, ['ip', 'link', 'add', gone, 'type', 'veth', 'peer', 'name', peer]);
      net.exec(net.client, ['ip', 'link', 'set', gone, 'up']);
      net.exec(net.client, ['ip', 'link', 'set', peer, 'up']);
      const live = await startLive(backend, ['--json', '-w', out, '--duration', '60'], gone);
      const lines = new LineReader(live.child.stdout as NodeJS.ReadableStream, live.stderr);
      await lines.waitFor((l) => l.startsWith('{"type":"start"'), 'the start event');
      net.exec(net.client, ['ip', 'link', 'del', gone]);
      const { code, signal } = await exited(live.child);
      await new Promise<void>((resolve) => lines.onEnd(resolve));
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, live.stderr());
      assert.match(live.stderr(), /warning: interface cs-live-gone (disappeared|went down)/);
      const report = JSON.parse(lines.lines.at(-1) as string) as { inputs: Array<{ packets: number }> };
      assert.equal(report.inputs[0].packets, writtenCount(live.stderr()));
      assertCompleteFile(out, writtenCount(live.stderr()), 'interface deleted');
    });
  }
});
