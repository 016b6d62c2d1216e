import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { analyzeFiles, type AnalyzeOptions, type AnalyzeOutcome, combineResults } from './analyze.js';
import { type AnalysisResult, AnalysisSession } from './session.js';

/**
 * Separate captures analysed on several cores: one worker thread per job, each taking the next
 * input when it is done with one, every input in its own session exactly as the sequential path
 * does it. The per-input results are joined in input order by combineResults, so the report is the
 * same as analyzeFiles gives, whatever the number of jobs or the order inputs finish in.
 */

/** What the worker needs to run a session: the serialisable part of AnalyzeOptions. */
export interface WorkerOptions {
  policy?: AnalyzeOptions['policy'];
  filter?: AnalyzeOptions['filter'];
  tracker?: AnalyzeOptions['tracker'];
  maxStoredConversations?: number;
  progress: boolean;
}

export type WorkerRequest = { type: 'analyze'; index: number; path: string } | { type: 'exit' };

export type WorkerReply =
  | { type: 'progress'; index: number; read: number; total: number | undefined }
  | { type: 'done'; index: number; result: AnalysisResult; errors: string[] }
  | { type: 'failed'; index: number; message: string; stack: string | undefined };

export function defaultJobs(): number {
  return availableParallelism();
}

/**
 * Whether these options and inputs can go to worker threads: listeners and observers are
 * functions that must run in this thread, merged inputs are one session, and standard input
 * belongs to this process.
 */
export function canRunInParallel(paths: readonly string[], options: AnalyzeOptions, jobs: number): boolean {
  return jobs > 1 && paths.length > 1 && options.merge !== true && options.onFinding === undefined &&
    options.segmentObserver === undefined && !paths.includes('-');
}

/** analyzeFiles on up to `jobs` threads; falls back to it when parallelism cannot apply. */
export async function analyzeFilesParallel(
  paths: readonly string[],
  options: AnalyzeOptions = {},
  jobs: number = defaultJobs(),
): Promise<AnalyzeOutcome> {
  if (!canRunInParallel(paths, options, jobs)) return analyzeFiles(paths, options);
  // Bad options (filter, policy) fail here, as the same typed errors the sequential path throws.
  new AnalysisSession(options);
  const workerOptions: WorkerOptions = {
    policy: options.policy,
    filter: options.filter,
    tracker: options.tracker,
    maxStoredConversations: options.maxStoredConversations,
    progress: options.onProgress !== undefined,
  };
  const results: (AnalysisResult | undefined)[] = new Array(paths.length);
  const errors: string[][] = paths.map(() => []);
  let next = 0;
  const threads = Math.min(jobs, paths.length);
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      const fail = (error: Error): void => {
        if (failed) return;
        failed = true;
        reject(error);
      };
      const feed = (worker: Worker): void => {
        if (failed) return;
        if (next < paths.length) {
          const index = next++;
          worker.postMessage({ type: 'analyze', index, path: paths[index] } satisfies WorkerRequest);
          return;
        }
        worker.postMessage({ type: 'exit' } satisfies WorkerRequest);
        running--;
        if (running === 0) resolve();
      };
      for (let i = 0; i < threads; i++) {
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: workerOptions });
        workers.push(worker);
        running++;
        worker.on('message', (reply: WorkerReply) => {
          switch (reply.type) {
            case 'progress':
              options.onProgress?.(paths[reply.index], reply.read, reply.total);
              break;
            case 'done':
              results[reply.index] = reply.result;
              errors[reply.index] = reply.errors;
              feed(worker);
              break;
            case 'failed': {
              const error = new Error(reply.message);
              if (reply.stack !== undefined) error.stack = reply.stack;
              fail(error);
              break;
            }
          }
        });
        worker.on('error', fail);
        worker.on('exit', (code) => {
          if (code !== 0) fail(new Error(`analysis worker exited with code ${code}`));
        });
        feed(worker);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return { result: combineResults(results as AnalysisResult[]), errors: errors.flat() };
}
