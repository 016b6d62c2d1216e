import { open, type FileHandle } from 'node:fs/promises';
import { Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { CaptureParser } from './parser.js';
import { CaptureError, type CaptureInfo, type RecordSink } from './record.js';

/** Bytes per read: large enough that per-chunk costs vanish, small enough to stay cache-friendly. */
export const CHUNK_SIZE = 1 << 20;

export interface ReadOptions {
  signal?: AbortSignal;
  /**
   * Called after each chunk with the input bytes read so far (compressed bytes for gzip input) and
   * the input's size when known (regular files), so it can drive a progress bar.
   */
  onProgress?: (bytesRead: number, totalBytes: number | undefined) => void;
}

/**
 * Reads a pcap or pcapng file, plain or gzip-compressed, streaming it in CHUNK_SIZE pieces. `-`
 * reads standard input. Throws CaptureError when the input cannot be read as a capture at all.
 */
export async function readCapture(path: string, sink: RecordSink, options: ReadOptions = {}): Promise<CaptureInfo> {
  if (path === '-') {
    if (process.stdin.isTTY) {
      throw new CaptureError('standard input is a terminal: pipe a capture into it (tcpdump -U -w - | ...)');
    }
    return readCaptureStream('-', process.stdin, sink, options);
  }
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw openError(path, err);
  }
  try {
    const stat = await fh.stat();
    if (stat.isDirectory()) throw new CaptureError(`${path} is a directory`);
    return await consume(path, fileChunks(fh, path), sink, options, stat.isFile() ? stat.size : undefined);
  } finally {
    await fh.close();
  }
}

/**
 * Reads a capture from a stream, e.g. the stdout of `tcpdump -U -w -`: each packet reaches the sink
 * as soon as its last byte arrives. `name` stands for the input in messages.
 */
export function readCaptureStream(
  name: string,
  input: Readable | AsyncIterable<Uint8Array>,
  sink: RecordSink,
  options: ReadOptions = {},
): Promise<CaptureInfo> {
  // Destroying the stream on abort also ends a read that is waiting for data that may never come.
  if (options.signal && input instanceof Readable) addAbortSignal(options.signal, input);
  return consume(name, input, sink, options, undefined);
}

function openError(path: string, err: unknown): CaptureError {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new CaptureError(`cannot open ${path}: no such file`);
    case 'EACCES':
    case 'EPERM':
      return new CaptureError(`cannot open ${path}: permission denied`);
    case 'EISDIR':
      return new CaptureError(`${path} is a directory`);
    case 'ENOTDIR':
      return new CaptureError(`cannot open ${path}: a parent of it is not a directory`);
    default:
      return new CaptureError(`cannot open ${path}: ${(err as Error).message}`);
  }
}

/**
 * Reads the file through two reused buffers: the next read runs while the consumer parses the
 * current chunk. A chunk is valid only until the consumer asks for the next one.
 */
async function* fileChunks(fh: FileHandle, path: string): AsyncGenerator<Uint8Array> {
  const buffers = [new Uint8Array(CHUNK_SIZE), new Uint8Array(CHUNK_SIZE)];
  const read = (i: number): Promise<number> =>
    fh.read(buffers[i]!, 0, CHUNK_SIZE, null).then(
      (r) => r.bytesRead,
      (err: Error) => {
        throw new CaptureError(`cannot read ${path}: ${err.message}`);
      },
    );
  let i = 0;
  let pending = read(0);
  try {
    for (;;) {
      const n = await pending;
      if (n === 0) return;
      const current = buffers[i]!;
      i ^= 1;
      pending = read(i);
      yield current.subarray(0, n);
    }
  } finally {
    // Never close the file under a read still in flight.
    await pending.catch(() => undefined);
  }
}

async function consume(
  name: string,
  input: AsyncIterable<Uint8Array>,
  sink: RecordSink,
  options: ReadOptions,
  total: number | undefined,
): Promise<CaptureInfo> {
  const { signal, onProgress } = options;
  signal?.throwIfAborted();
  const parser = new CaptureParser(name, sink);
  const it = input[Symbol.asyncIterator]();
  let raw = 0;
  const next = async (): Promise<Uint8Array | undefined> => {
    signal?.throwIfAborted();
    const r = await it.next();
    if (r.done) return undefined;
    raw += r.value.length;
    onProgress?.(raw, total);
    return r.value;
  };
  try {
    // gzip is told by its magic, which a pipe may deliver one byte at a time.
    let head: Uint8Array = new Uint8Array(0);
    while (head.length < 2) {
      const chunk = await next();
      if (!chunk) break;
      head = head.length === 0 && chunk.length >= 2 ? chunk : concat(head, chunk);
    }
    if (head[0] === 0x1f && head[1] === 0x8b) return await gunzipInto(name, parser, head, next, signal);
    parser.push(head);
    while (!parser.stopped) {
      const chunk = await next();
      if (!chunk) break;
      parser.push(chunk);
    }
    return parser.finish();
  } finally {
    await it.return?.();
  }
}

async function gunzipInto(
  name: string,
  parser: CaptureParser,
  head: Uint8Array,
  next: () => Promise<Uint8Array | undefined>,
  signal: AbortSignal | undefined,
): Promise<CaptureInfo> {
  let inflated = 0;
  try {
    await pipeline(
      async function* () {
        // zlib holds on to what it is given, and the file reader reuses its buffers: copy.
        yield head.slice();
        for (let chunk = await next(); chunk && !parser.stopped; chunk = await next()) yield chunk.slice();
      },
      createGunzip({ chunkSize: 256 * 1024 }),
      async function (source: AsyncIterable<Uint8Array>) {
        for await (const chunk of source) {
          inflated += chunk.length;
          parser.push(chunk);
        }
      },
      signal ? { signal } : {},
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !code.startsWith('Z_')) throw err;
    // Once the parser stops we stop feeding zlib, which then reports an unfinished stream.
    if (!parser.stopped) {
      const message = (err as Error).message;
      if (inflated === 0) throw new CaptureError(`${name}: corrupt gzip data (${message})`);
      const info = parser.finish();
      info.truncated = true;
      info.warnings.push(`gzip data damaged after ${inflated} decompressed bytes (${message}); stopped reading`);
      return info;
    }
  }
  return parser.finish();
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
