import type { Writable } from 'node:stream';
import type { AnalysisResult } from '../core/session.js';
import { TOOL } from '../version.js';

/**
 * The JSON report, schemaVersion 1 (documented in the README). It is written as a stream, one
 * conversation at a time, so a report of hundreds of thousands of conversations never exists as one
 * string in memory.
 */
export const SCHEMA_VERSION = 1;

/** Chunks are gathered up to this size before a write, to keep the number of writes small. */
const CHUNK = 1 << 16;

/** Resolves when `out` can take more, or will never take any (closed, destroyed, errored). */
export function drained(out: Writable): Promise<void> {
  if (out.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      out.off('error', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    out.on('error', done);
  });
}

export async function writeJsonReport(result: AnalysisResult, out: Writable): Promise<void> {
  let buffer = '';
  const flush = async (): Promise<void> => {
    if (buffer === '') return;
    const chunk = buffer;
    buffer = '';
    // A reader that went away (`| head`) destroys the stream: 'drain' would never come.
    if (out.destroyed) return;
    if (!out.write(chunk)) await drained(out);
  };
  const emit = async (text: string): Promise<void> => {
    buffer += text;
    if (buffer.length >= CHUNK) await flush();
  };
  await emit(`{"schemaVersion":${SCHEMA_VERSION},"tool":${JSON.stringify(TOOL)},`);
  await emit(`"inputs":${JSON.stringify(result.inputs)},"summary":${JSON.stringify(result.summary)},`);
  if (result.baseline) await emit(`"baseline":${JSON.stringify(result.baseline)},`);
  await emit(`"findings":${JSON.stringify(result.findings)},"conversations":[`);
  for (let i = 0; i < result.conversations.length; i++) {
    await emit((i > 0 ? ',' : '') + JSON.stringify(result.conversations[i]));
  }
  await emit(']}\n');
  await flush();
}
