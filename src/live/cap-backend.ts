import { fork } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { BackendCounters, BackendEnd, LiveBackend } from './backend.js';
import { CaptureProcess } from './capture-process.js';
import type { CapChildConfig, CapChildCounters, CapChildMessage, CapParentMessage } from './cap-child.js';
import { LiveError } from './errors.js';

const CHILD = fileURLToPath(new URL('./cap-child.js', import.meta.url));

/**
 * The default backend: libpcap through `cap`, in a capture process of its own (cap-child.ts).
 *
 * Why a process and not the analysing one: (1) cap 0.2.1 aborts the whole process (a libuv
 * assertion) when the interface goes down or disappears; in a child that is an event we report, in
 * the analysing process it would lose the report and the end of the -w file. (2) The kernel ring
 * holds only bufferSize / 64-128 KiB packets, so the process reading it must never stall: the
 * analysis (decoding, tracking, detectors, screen, garbage collection) runs on another core and the
 * capture process only timestamps and copies, queueing up to maxQueueBytes in memory when analysis
 * falls behind, and counting what it had to drop beyond that.
 */
export class CapBackend implements LiveBackend {
  readonly name = 'cap';
  private captureProcess: CaptureProcess | null = null;
  private last: CapChildCounters | null = null;
  private endSeen = false;
  private stderr = '';
  linkType: number | null = null;

  constructor(private readonly config: CapChildConfig) {}

  start(): Promise<Readable> {
    const child = fork(CHILD, [JSON.stringify(this.config)], {
      // fd 3: the packet stream (a pipe the child writes without blocking); fd 4: control.
      // stderr is kept: libpcap's warnings and cap's assertion when the interface goes down are
      // ours to explain in one line, not to pass on raw.
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'ipc'],
      cwd: '/',
      // Its own process group: Ctrl-C reaches only connscope, which then stops the capture in order.
      detached: true,
      serialization: 'json',
      // Not the analysing process's flags (--inspect would collide on its port).
      execArgv: [],
    });
    const captureProcess = new CaptureProcess(child);
    this.captureProcess = captureProcess;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      this.stderr = (this.stderr + text).slice(-8192);
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      child.on('message', (message: CapChildMessage) => {
        switch (message.type) {
          case 'ready':
            this.linkType = message.linkType;
            settled = true;
            resolve(child.stdio[3] as Readable);
            break;
          case 'error':
            settled = true;
            reject(new LiveError(message.kind, message.message));
            break;
          case 'stats':
            this.last = message;
            break;
          case 'end':
            this.last = message;
            this.endSeen = true;
            break;
        }
      });
      child.once('error', (error) => {
        if (settled) return;
        settled = true;
        reject(new LiveError('other', `cannot start the capture process: ${error.message}`));
      });
      void captureProcess.exited.then(({ code, signal }) => {
        if (settled) return;
        settled = true;
        reject(new LiveError('other', `the capture process exited before capturing (${signal ?? `exit code ${code}`})`));
      });
    });
  }

  counters(): BackendCounters {
    return { kernelDrops: null, queueDrops: this.last?.queueDrops ?? 0, queuedBytes: this.last?.queuedBytes ?? 0 };
  }

  stop(): void {
    this.captureProcess?.stop((child) => {
      if (child.connected) child.send({ type: 'stop' } satisfies CapParentMessage, () => undefined);
      else child.kill('SIGTERM');
    });
  }

  kill(): void {
    this.captureProcess?.kill();
  }

  async finish(): Promise<BackendEnd> {
    const { code, signal, byItself } = (await this.captureProcess?.waitForExit()) ?? { code: 0, signal: null, byItself: true };
    const counters = this.counters();
    const warnings: string[] = [];
    if ((counters.queueDrops ?? 0) > 0) {
      warnings.push(`${counters.queueDrops} packets dropped by connscope: analysis fell more than ${Math.round(this.config.maxQueueBytes / 2 ** 20)} MiB behind the capture`);
    }
    if ((this.last?.truncated ?? 0) > 0) warnings.push(`${this.last?.truncated} packets longer than 65535 bytes were cut short`);
    let unexpected: string | null = null;
    if (!this.endSeen && byItself) {
      const said = this.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/This may not actually work/.test(l)).at(-1);
      unexpected = `the capture process ended (${signal !== null ? `signal ${signal}` : `exit code ${code}`})${said !== undefined ? `: ${said}` : ''}`;
    } else if (!this.endSeen && signal === 'SIGKILL') {
      warnings.push('the capture process did not stop in time and was killed: the last packets may be missing');
    }
    return { ...counters, unexpected, warnings };
  }
}
