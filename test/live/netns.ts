import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

/**
 * Throw-away network namespaces for the live-capture tests: a client and a server namespace joined
 * by a veth pair, addresses in 198.18.0.0/15 (RFC 2544, never routed), nothing linked to the host.
 * Names are cs-live-<pid>-<role>, the pattern the capture lab's stale-namespace sweep understands
 * (it removes a namespace only once the pid in its name is gone).
 */
export const CLIENT_IP = '198.18.0.1';
export const SERVER_IP = '198.18.0.2';
export const CLIENT_IF = 'cs-live-cli';
export const SERVER_IF = 'cs-live-srv';
export const SERVER_PORT = 8080;

/** Answers "ok" to every chunk it receives, one thread per connection. */
const OK_SERVER_PY = `
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${SERVER_IP}', ${SERVER_PORT})); s.listen(64)
print('listening', flush=True)
def serve(c):
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(b'ok')
    except OSError: pass
    finally: c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/**
 * For the tests of one describe block: the namespaces with the "ok" server listening, set up before
 * them and torn down after, and `scripts` (name to Python source) written to a temporary directory.
 */
export function namespacesWithOkServer(scripts: Record<string, string>): { net: NetnsPair; tmp: string; script: (name: string) => string } {
  const net = new NetnsPair();
  const tmp = mkdtempSync(path.join(tmpdir(), 'connscope-live-'));
  const script = (name: string): string => path.join(tmp, name);
  before(async () => {
    for (const [name, source] of Object.entries({ ...scripts, 'ok-server.py': OK_SERVER_PY })) writeFileSync(script(name), source);
    net.setUp();
    const server = net.spawn(net.server, ['python3', script('ok-server.py')]);
    await new LineReader(server.stdout as NodeJS.ReadableStream).waitFor((l) => l === 'listening', 'the server listening');
  });
  after(() => {
    net.close();
    rmSync(tmp, { recursive: true, force: true });
  });
  return { net, tmp, script };
}

function run(args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

function quiet(args: string[]): void {
  spawnSync(args[0], args.slice(1), { stdio: 'ignore', timeout: 10_000 });
}

/** Why the namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root and ip netns';
  const probe = `cs-live-${process.pid}-probe`;
  const r = spawnSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
  if (r.status !== 0) return 'needs root and ip netns';
  quiet(['ip', 'netns', 'del', probe]);
  for (const tool of ['iptables', 'python3']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `needs root and ip netns (and ${tool})`;
  }
  return null;
}

export class NetnsPair {
  readonly client = `cs-live-${process.pid}-cli`;
  readonly server = `cs-live-${process.pid}-srv`;
  private readonly children: ChildProcess[] = [];
  private readonly teardownOnExit = (): void => this.teardown();

  setUp(): void {
    process.on('exit', this.teardownOnExit);
    this.teardown();
    run(['ip', 'netns', 'add', this.client]);
    run(['ip', 'netns', 'add', this.server]);
    for (const ns of [this.client, this.server]) run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    run(['ip', 'link', 'add', CLIENT_IF, 'netns', this.client, 'type', 'veth', 'peer', 'name', SERVER_IF, 'netns', this.server]);
    for (const [ns, ifc, addr] of [[this.client, CLIENT_IF, CLIENT_IP], [this.server, SERVER_IF, SERVER_IP]]) {
      // Offloads off: the capture sees wire-sized segments, as on a real NIC.
      quiet(['ip', 'netns', 'exec', ns, 'ethtool', '-K', ifc, 'tso', 'off', 'gso', 'off', 'gro', 'off', 'tx', 'off', 'rx', 'off']);
      run(['ip', '-n', ns, 'addr', 'add', `${addr}/24`, 'dev', ifc]);
      run(['ip', '-n', ns, 'link', 'set', ifc, 'up']);
    }
    // The blackholed client gives up after a few seconds instead of 15 minutes.
    // (/proc/sys/net is the namespace's own; no sysctl binary needed.)
    run(['ip', 'netns', 'exec', this.client, 'sh', '-c', 'echo 3 > /proc/sys/net/ipv4/tcp_retries2']);
  }

  /** Runs a command in a namespace in the background; killed at teardown. */
  spawn(ns: string, command: string[], options: { stdio?: Array<'ignore' | 'pipe'>; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...command], {
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    this.children.push(child);
    return child;
  }

  exec(ns: string, command: string[]): void {
    run(['ip', 'netns', 'exec', ns, ...command]);
  }

  /** Kills everything we started and everything left in our namespaces, then deletes them. */
  teardown(): void {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const ns of [this.client, this.server]) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      quiet(['ip', 'netns', 'del', ns]);
    }
  }

  close(): void {
    this.teardown();
    process.off('exit', this.teardownOnExit);
  }
}

/** Reads a child's stdout as lines, and resolves waits for lines matching a predicate. */
export class LineReader {
  readonly lines: string[] = [];
  private waiters: Array<{ test: (line: string) => boolean; resolve: (line: string) => void }> = [];
  private buffer = '';
  ended = false;
  private readonly endWaiters: Array<() => void> = [];

  /** `context` adds to the message when the stream ends without the line waited for (e.g. stderr). */
  constructor(stream: NodeJS.ReadableStream, private readonly context: () => string = () => '') {
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      this.buffer += text;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.test(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    stream.on('end', () => {
      this.ended = true;
      for (const resolve of this.endWaiters) resolve();
    });
  }

  /** The first line (already read or still to come) that passes `test`; rejects at end of stream. */
  waitFor(test: (line: string) => boolean, what: string): Promise<string> {
    const found = this.lines.find(test);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      this.waiters.push({ test, resolve });
      this.onEnd(() => reject(new Error(`stream ended without ${what}; lines:\n${this.lines.slice(-20).join('\n')}\n${this.context()}`)));
    });
  }

  onEnd(fn: () => void): void {
    if (this.ended) fn();
    else this.endWaiters.push(fn);
  }
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}
