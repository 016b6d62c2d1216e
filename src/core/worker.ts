import { parentPort, workerData } from 'node:worker_threads';
import { analyzeFiles } from './analyze.js';
import type { WorkerOptions, WorkerReply, WorkerRequest } from './parallel.js';

/**
 * Worker thread entry for analyzeFilesParallel: analyses one capture per request, each in its own
 * session, and posts the result back. Progress is throttled to a few messages per second.
 */
const port = parentPort;
if (port === null) throw new Error('connscope worker: not running in a worker thread');
const options = workerData as WorkerOptions;

port.on('message', (request: WorkerRequest) => {
  if (request.type === 'exit') {
    port.close();
    return;
  }
  const { index, path } = request;
  let lastProgress = 0;
  analyzeFiles([path], {
    policy: options.policy,
    filter: options.filter,
    tracker: options.tracker,
    maxStoredConversations: options.maxStoredConversations,
    onProgress: options.progress
      ? (_path, read, total) => {
          const now = Date.now();
          if (now - lastProgress < 100) return;
          lastProgress = now;
          port.postMessage({ type: 'progress', index, read, total } satisfies WorkerReply);
        }
      : undefined,
  }).then(
    ({ result, errors }) => port.postMessage({ type: 'done', index, result, errors } satisfies WorkerReply),
    (error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      port.postMessage({ type: 'failed', index, message: e.message, stack: e.stack } satisfies WorkerReply);
    },
  );
});
