import type { ChildProcess } from 'node:child_process';

/** How long a capture process may take to finish after it was asked to stop before it is killed. */
const STOP_GRACE_MS = 3000;

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The lifetime both backends give their capture process: asked to stop in its own way, killed when
 * it has not gone within the grace period, and waited for without ever hanging the report on a
 * wedged capture.
 */
export class CaptureProcess {
  readonly exited: Promise<ProcessExit>;
  private stopRequested = false;
  private killTimer: NodeJS.Timeout | null = null;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  }

  /** Only the first request counts: a second Ctrl-C goes through kill(). */
  stop(ask: (child: ChildProcess) => void): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    ask(this.child);
    this.killAfterGrace();
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Call once the packet stream has ended; `byItself`: it ended without stop() (the capture failed or the interface went). */
  async waitForExit(): Promise<ProcessExit & { byItself: boolean }> {
    const byItself = !this.stopRequested;
    // The stream ended without stop(): the process is exiting (or wedged: do not wait forever).
    if (byItself) this.killAfterGrace();
    const exit = await this.exited;
    if (this.killTimer !== null) clearTimeout(this.killTimer);
    return { ...exit, byItself };
  }

  private killAfterGrace(): void {
    const { child } = this;
    this.killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  }
}
