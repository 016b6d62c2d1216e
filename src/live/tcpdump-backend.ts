import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { BackendCounters, BackendEnd, LiveBackend } from './backend.js';
import { CaptureProcess } from './capture-process.js';
import { classifyPcapError, LiveError } from './errors.js';
import type { DropTarget } from './privileges.js';

export interface TcpdumpConfig {
  iface: string;
  filter: string;
  /** Kernel buffer in bytes (tcpdump -B takes KiB). */
  bufferSize: number;
  nanosecond: boolean;
  /** tcpdump drops root itself after opening (-Z), to the same user connscope becomes. */
  dropTo: DropTarget | null;
  /** The program (tests point it elsewhere); default `tcpdump` from PATH. */
  command?: string;
}

/** How often tcpdump is asked for its counters (SIGUSR1: it prints them on stderr and carries on). */
const STATS_INTERVAL_MS = 2000;

/**
 * `--backend tcpdump`: `tcpdump -U -w -` streams pcap to us, read by the same reader as files. It
 * gives kernel timestamps (taken when the packet entered the capture ring, unaffected by our
 * event loop) and the kernel's drop counters, which it prints on stderr when it exits.
 */
export class TcpdumpBackend implements LiveBackend {
  readonly name = 'tcpdump';
  private captureProcess: CaptureProcess | null = null;
  private stderr = '';
  private statsTimer: NodeJS.Timeout | null = null;

  constructor(private readonly config: TcpdumpConfig) {}

  args(): string[] {
    const { config } = this;
    const args = ['-U', '--immediate-mode', '-n', '-B', String(Math.max(1, Math.round(config.bufferSize / 1024))), '-w', '-', '-i', config.iface];
    if (config.nanosecond) args.push('--time-stamp-precision=nano');
    if (config.dropTo !== null) args.push('-Z', config.dropTo.user);
    if (config.filter !== '') args.push(config.filter);
    return args;
  }

  start(): Promise<Readable> {
    const command = this.config.command ?? 'tcpdump';
    const child = spawn(command, this.args(), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const captureProcess = new CaptureProcess(child);
    this.captureProcess = captureProcess;
    child.stderr?.setEncoding('utf8');
    return new Promise((resolve, reject) => {
      let settled = false;
      child.stderr?.on('data', (text: string) => {
        this.stderr += text;
        if (this.stderr.length > 1 << 16) this.stderr = this.stderr.slice(-(1 << 15));
        if (!settled && /listening on /.test(this.stderr)) {
          settled = true;
          this.statsTimer = setInterval(() => child.kill('SIGUSR1'), STATS_INTERVAL_MS);
          resolve(child.stdout as Readable);
        }
      });
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        reject(error.code === 'ENOENT'
          ? new LiveError('tcpdump-missing', `${command} not found: install it (sudo apt-get install tcpdump, or sudo dnf install tcpdump), or use the default backend (--backend cap)`)
          : new LiveError('other', `cannot run ${command}: ${error.message}`));
      });
      void captureProcess.exited.then(({ code, signal }) => {
        if (settled) return;
        settled = true;
        const said = this.messages().join(' ') || `${command} exited (${signal ?? `exit code ${code}`})`;
        reject(classifyPcapError(said, this.config.iface, this.config.filter));
      });
    });
  }

  /** tcpdump's own lines, without its "tcpdump: " prefix and counters. */
  private messages(): string[] {
    return this.stderr
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !/^\d+ packets? /.test(line) && !/^listening on /.test(line))
      .map((line) => line.replace(/^tcpdump: /, ''));
  }

  private lastCount(what: RegExp): number | null {
    let value: number | null = null;
    for (const m of this.stderr.matchAll(what)) value = Number(m[1]);
    return value;
  }

  counters(): BackendCounters {
    return { kernelDrops: this.lastCount(/(\d+) packets? dropped by kernel/g), queueDrops: null, queuedBytes: null };
  }

  stop(): void {
    this.captureProcess?.stop((child) => {
      if (this.statsTimer !== null) clearInterval(this.statsTimer);
      // SIGINT: tcpdump flushes, prints its counters and exits.
      child.kill('SIGINT');
    });
  }

  kill(): void {
    this.captureProcess?.kill();
  }

  async finish(): Promise<BackendEnd> {
    const { code, signal, byItself } = (await this.captureProcess?.waitForExit()) ?? { code: 0, signal: null, byItself: true };
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    const counters = this.counters();
    const warnings: string[] = [];
    if ((counters.kernelDrops ?? 0) > 0) warnings.push(`${counters.kernelDrops} packets dropped by the kernel (tcpdump's count): the capture buffer overflowed`);
    const ifDrops = this.lastCount(/(\d+) packets? dropped by interface/g);
    if ((ifDrops ?? 0) > 0) warnings.push(`${ifDrops} packets dropped by the interface (tcpdump's count)`);
    let unexpected: string | null = null;
    if (byItself) {
      const said = this.messages().filter((line) => !/^(Warning|WARNING)/.test(line)).at(-1);
      unexpected = said ?? `tcpdump ended (${signal ?? `exit code ${code}`})`;
    } else if (signal === 'SIGKILL') {
      warnings.push('tcpdump did not stop in time and was killed: the last packets may be missing');
    }
    return { ...counters, unexpected, warnings };
  }
}
