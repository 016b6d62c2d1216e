import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadCap } from '../../src/live/cap-module.js';
import { CLI } from '../helpers/paths.js';
import { CLIENT_IF, CLIENT_IP, exited, LineReader, namespacesWithOkServer, netnsUnavailable, SERVER_IP, SERVER_PORT } from './netns.js';

/**
 * End-to-end: real TCP in network namespaces, captured by `connscope live` on the client's veth,
 * with one connection blackholed mid-way (iptables DROP on the server) so the client's kernel
 * retransmits with exponential backoff until it gives up. Expected values come from the traffic
 * generator (the client ports it used) and from an independent re-analysis of the -w file.
 */

/**
 * Three healthy request/response connections closed with FIN, then one that is blackholed after
 * three exchanges: argv[1:] is the command that installs the DROP rule. Prints what it did as JSON.
 */
const CLIENT_PY = `
import json, socket, subprocess, sys, time
out = {'healthy': [], 'blackholed': None, 'outcome': None}
for i in range(3):
    c = socket.create_connection(('${SERVER_IP}', ${SERVER_PORT}))
    out['healthy'].append(c.getsockname()[1])
    for j in range(3):
        c.sendall(b'x' * 100); c.recv(10)
    c.close()
time.sleep(0.3)
c = socket.create_connection(('${SERVER_IP}', ${SERVER_PORT}))
out['blackholed'] = c.getsockname()[1]
for j in range(3):
    c.sendall(b'y' * 100); c.recv(10); time.sleep(0.1)
subprocess.run(sys.argv[1:], check=True)
c.settimeout(30)
t = time.time()
try:
    c.sendall(b'z' * 100)
    out['outcome'] = 'reply %r' % c.recv(10)
except OSError as e:
    out['outcome'] = 'failed after %.1f s: %s' % (time.time() - t, e)
print(json.dumps(out), flush=True)
`;

interface Endpoint {
  ip: string;
  port: number;
}

interface ConversationJson {
  client: Endpoint;
  server: Endpoint;
  packets: { client: number; server: number };
}

interface ReportJson {
  schemaVersion: number;
  inputs: Array<{ packets: number; format: string; live?: { interface: string; backend: string; filter: string | null } }>;
  findings: Array<{ id: string; detector: string; client: Endpoint | null; server: Endpoint | null }>;
  conversations: ConversationJson[];
}

interface Event {
  type?: string;
  [key: string]: unknown;
}

const skipReason = netnsUnavailable();
const capBuilt = (await loadCap()) !== null;
const haveTcpdump = spawnSync('sh', ['-c', 'command -v tcpdump'], { stdio: 'ignore' }).status === 0;
const haveTshark = spawnSync('sh', ['-c', 'command -v tshark'], { stdio: 'ignore' }).status === 0;

function tupleKey(c: { client: Endpoint; server: Endpoint }): string {
  return `${c.client.ip}:${c.client.port}>${c.server.ip}:${c.server.port}`;
}

function analyzeJson(file: string): ReportJson {
  const r = spawnSync(process.execPath, [CLI, 'analyze', file, '--json'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `analyze ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ReportJson;
}

/** Packets per TCP 4-tuple as tshark counts them (independent of connscope's reader and tracker). */
function tsharkPacketsPerTuple(file: string): Map<string, number> {
  const r = spawnSync('tshark', ['-r', file, '-Y', 'tcp', '-T', 'fields', '-e', 'ip.src', '-e', 'tcp.srcport', '-e', 'ip.dst', '-e', 'tcp.dstport'], {
    encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const counts = new Map<string, number>();
  for (const line of r.stdout.trim().split('\n')) {
    const [src, sport, dst, dport] = line.split('\t');
    const key = [`${src}:${sport}`, `${dst}:${dport}`].sort().join('|');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe('connscope live in network namespaces', { skip: skipReason ?? false }, () => {
  const { net, tmp, script } = namespacesWithOkServer({ 'client.py': CLIENT_PY });
  const clientPy = script('client.py');

  async function scenario(backend: 'cap' | 'tcpdump', end: 'SIGINT' | 'duration'): Promise<void> {
    net.exec(net.server, ['iptables', '-F', 'INPUT']);
    const out = path.join(tmp, `${backend}.pcap`);
    const args = [process.execPath, CLI, 'live', '--backend', backend, '-i', CLIENT_IF, '--json', '-w', out, '--fail-on', 'critical', 'tcp port 8080'];
    args.push('--duration', end === 'duration' ? '12' : '60');
    // With sudo, -w belongs to the caller: pretend nobody ran sudo (cap backend only: tcpdump -Z
    // gets the same user then, and that is covered by the default drop to nobody).
    const env = backend === 'cap' ? { ...process.env, SUDO_UID: '65534', SUDO_GID: '65534', SUDO_USER: 'nobody' } : process.env;
    const live = net.spawn(net.client, args, { env });
    let stderr = '';
    live.stderr?.setEncoding('utf8');
    live.stderr?.on('data', (t: string) => (stderr += t));
    const lines = new LineReader(live.stdout as NodeJS.ReadableStream, () => `stderr: ${stderr}`);
    const liveExit = exited(live);

    const start = JSON.parse(await lines.waitFor((l) => l.startsWith('{"type":"start"'), 'the start event')) as Event;
    assert.equal(start.backend, backend);
    assert.equal(start.iface, CLIENT_IF);
    assert.equal(start.droppedTo, 'nobody', 'root is dropped once the capture is open');

    const client = net.spawn(net.client, ['python3', clientPy, 'ip', 'netns', 'exec', net.server, 'iptables', '-A', 'INPUT', '-p', 'tcp', '--dport', String(SERVER_PORT), '-j', 'DROP']);
    const clientOut = new LineReader(client.stdout as NodeJS.ReadableStream);
    let clientErr = '';
    client.stderr?.setEncoding('utf8');
    client.stderr?.on('data', (t: string) => (clientErr += t));

    // The storm is reported while it happens: a finding event, then the capture still running.
    const findingLine = await lines.waitFor((l) => l.includes('"type":"finding"') && l.includes('"detector":"retransmit-storm"'), 'a live retransmit-storm finding');
    const findingIndex = lines.lines.indexOf(findingLine);
    await lines.waitFor((l) => lines.lines.indexOf(l) > findingIndex && l.startsWith('{"type":"stats"'), 'a stats event after the finding');

    const generated = JSON.parse(await clientOut.waitFor((l) => l.startsWith('{'), `the client's summary (stderr: ${clientErr})`)) as {
      healthy: number[]; blackholed: number; outcome: string;
    };
    assert.match(generated.outcome, /^failed/, 'the blackholed connection failed on the client');
    const finding = JSON.parse(findingLine) as Event & { client: Endpoint; server: Endpoint; update: boolean; id: string };
    assert.equal(finding.update, false);
    assert.deepEqual(finding.client, { ip: CLIENT_IP, port: generated.blackholed });
    assert.deepEqual(finding.server, { ip: SERVER_IP, port: SERVER_PORT });

    if (end === 'SIGINT') live.kill('SIGINT');
    const { code } = await liveExit;
    await new Promise<void>((resolve) => lines.onEnd(resolve));
    assert.equal(code, 1, `exit code of --fail-on critical with a critical finding (stderr: ${stderr})`);
    assert.match(stderr, end === 'SIGINT' ? /ended by signal SIGINT/ : /ended by duration/);

    // Updates of one finding share its id and never repeat the new-finding event.
    const findingEvents = lines.lines.filter((l) => l.includes('"type":"finding"')).map((l) => JSON.parse(l) as Event & { id: string; update: boolean });
    assert.equal(findingEvents.filter((e) => e.id === finding.id && !e.update).length, 1);

    // The last line is the analyze --json report.
    const report = JSON.parse(lines.lines.at(-1) as string) as ReportJson;
    assert.equal(report.schemaVersion, 1);
    assert.equal(report.inputs[0].format, 'live');
    assert.deepEqual(report.inputs[0].live, { interface: CLIENT_IF, backend, filter: 'tcp port 8080' });
    assert.ok(report.findings.some((f) => f.id === finding.id), 'the live finding is in the final report');

    const ports = [...generated.healthy, generated.blackholed].sort((a, b) => a - b);
    const livePorts = report.conversations.map((c) => c.client.port).sort((a, b) => a - b);
    assert.deepEqual(livePorts, ports, 'one conversation per connection the client made');

    // The -w file re-analyses to the same conversations, packet for packet.
    const offline = analyzeJson(out);
    const summarize = (r: ReportJson) => r.conversations.map((c) => ({ tuple: tupleKey(c), packets: c.packets })).sort((a, b) => a.tuple.localeCompare(b.tuple));
    assert.deepEqual(summarize(offline), summarize(report));
    assert.equal(offline.inputs[0].packets, report.inputs[0].packets);
    if (haveTshark) {
      const counts = tsharkPacketsPerTuple(out);
      for (const c of offline.conversations) {
        const key = [`${c.client.ip}:${c.client.port}`, `${c.server.ip}:${c.server.port}`].sort().join('|');
        assert.equal(c.packets.client + c.packets.server, counts.get(key), `tshark's packet count for ${key}`);
      }
    }
    if (backend === 'cap') {
      const st = statSync(out);
      assert.deepEqual([st.uid, st.gid], [65534, 65534], '-w belongs to the sudo user');
    }
  }

  it('cap backend: findings while the storm happens, Ctrl-C, -w re-analyses the same', { timeout: 90_000, skip: capBuilt ? false : 'cap module not built (apt-get install libpcap-dev; npm rebuild cap)' }, async () => {
    await scenario('cap', 'SIGINT');
  });

  it('tcpdump backend: the same through tcpdump -w -, ended by --duration', { timeout: 90_000, skip: haveTcpdump ? false : 'tcpdump not installed' }, async () => {
    await scenario('tcpdump', 'duration');
  });

  it('bad capture filter: one line with the filter, exit code 2', { timeout: 30_000 }, async () => {
    for (const backend of [capBuilt ? 'cap' : null, haveTcpdump ? 'tcpdump' : null].filter((b) => b !== null)) {
      const r = spawnSync('ip', ['netns', 'exec', net.client, process.execPath, CLI, 'live', '--backend', backend, '-i', CLIENT_IF, '-f', 'tcp prot 80', '--duration', '5'], {
        encoding: 'utf8', timeout: 20_000,
      });
      assert.equal(r.status, 2, `${backend}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${backend}: one line: ${r.stderr}`);
      assert.match(r.stderr, /^connscope: error: bad capture filter "tcp prot 80": .*syntax error/, backend);
      assert.equal(r.stdout, '');
    }
  });

  it('no permission: says to use sudo or setcap, exit code 2', { timeout: 30_000, skip: capBuilt ? false : 'cap module not built' }, async () => {
    const r = spawnSync('ip', ['netns', 'exec', net.client, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'live', '-i', CLIENT_IF, '--duration', '5'], {
      encoding: 'utf8', timeout: 20_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /Operation not permitted: run with sudo or grant CAP_NET_RAW: sudo setcap cap_net_raw,cap_net_admin\+eip \$\(which node\)/);
  });
});

describe('connscope live without capturing', () => {
  it('unknown interface: lists the available ones, exit code 2', () => {
    const r = spawnSync(process.execPath, [CLI, 'live', '-i', 'cs-live-nope0', ...(capBuilt ? [] : ['--backend', 'tcpdump'])], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^connscope: error: no interface "cs-live-nope0" here \(available: .*\blo\b.*\)/);
    assert.equal(r.stdout, '');
  });

  it('interfaces lists the loopback with its address', () => {
    const r = spawnSync(process.execPath, [CLI, 'interfaces', '--json'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { interfaces: Array<{ name: string; loopback: boolean; addresses: Array<{ address: string; prefix: number | null }> }> };
    const lo = list.interfaces.find((i) => i.name === 'lo');
    assert.ok(lo, 'lo is listed');
    assert.equal(lo.loopback, true);
    assert.ok(lo.addresses.some((a) => a.address === '127.0.0.1' && a.prefix === 8));
  });

  it('cap missing is explained with the packages to install and --backend tcpdump', async () => {
    const { CAP_MISSING_MESSAGE } = await import('../../src/live/errors.js');
    assert.match(CAP_MISSING_MESSAGE, /apt-get install libpcap-dev/);
    assert.match(CAP_MISSING_MESSAGE, /dnf install libpcap-devel/);
    assert.match(CAP_MISSING_MESSAGE, /npm rebuild cap/);
    assert.match(CAP_MISSING_MESSAGE, /--backend tcpdump/);
  });
});

// The -w file is read back by the offline reader in the tests above; this checks the writer's
// bytes against the pcap format directly (magic, versions, record header fields).
describe('pcap writer', () => {
  it('writes classic pcap records tshark and the reader accept', async () => {
    const { PcapFileWriter } = await import('../../src/live/pcap-writer.js');
    const { CaptureRecord } = await import('../../src/capture/record.js');
    const { openSync } = await import('node:fs');
    const dir = mkdtempSync(path.join(tmpdir(), 'connscope-writer-'));
    try {
      const file = path.join(dir, 'w.pcap');
      const writer = new PcapFileWriter(openSync(file, 'w'), file, true);
      const rec = new CaptureRecord();
      rec.linkType = 1;
      rec.tsSec = 1_700_000_000;
      rec.tsNsec = 123_456_789;
      rec.data = new Uint8Array([9, 9, 1, 2, 3, 4, 9]);
      rec.offset = 2;
      rec.capturedLength = 4;
      rec.originalLength = 60;
      writer.add(rec);
      await writer.close(1);
      const bytes = readFileSync(file);
      assert.equal(bytes.length, 24 + 16 + 4);
      assert.equal(bytes.readUInt32LE(0), 0xa1b23c4d, 'nanosecond magic');
      assert.deepEqual([bytes.readUInt16LE(4), bytes.readUInt16LE(6)], [2, 4]);
      assert.equal(bytes.readUInt32LE(20), 1, 'link type');
      assert.deepEqual([bytes.readUInt32LE(24), bytes.readUInt32LE(28), bytes.readUInt32LE(32), bytes.readUInt32LE(36)], [1_700_000_000, 123_456_789, 4, 60]);
      assert.deepEqual([...bytes.subarray(40)], [1, 2, 3, 4]);
      if (haveTshark) {
        const r = spawnSync('capinfos', ['-c', '-M', file], { encoding: 'utf8' });
        if (r.status === 0) assert.match(r.stdout, /Number of packets:\s+1\b/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
