import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { readCapture, readCaptureStream } from '../../src/capture/read.js';
import { CaptureError } from '../../src/capture/record.js';
import { copyRecord, fixture, parseFile, repoRoot, type Parsed, type Rec } from './helpers.js';

const reference = parseFile(fixture('pcap-le-usec.pcap'));

/** Runs `readCapture('-')` in a child node process with the file piped to its standard input. */
function readThroughStdin(file: string): Promise<Parsed | { error: string }> {
  const url = (p: string) => pathToFileURL(path.join(repoRoot, 'dist', p)).href;
  const script = `
    import { readCapture } from ${JSON.stringify(url('src/capture/read.js'))};
    import { copyRecord } from ${JSON.stringify(url('test/capture/helpers.js'))};
    const records = [];
    try {
      const info = await readCapture('-', (r) => records.push(copyRecord(r)));
      process.stdout.write(JSON.stringify({ info, records }));
    } catch (err) {
      process.stdout.write(JSON.stringify({ error: err.name + ': ' + err.message }));
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  createReadStream(file).pipe(child.stdin);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`child exited with ${code}`))));
  });
}

describe('standard input', () => {
  for (const name of ['pcap-le-usec.pcap', 'pcapng-le-usec.pcapng.gz']) {
    it(`- reads ${name} piped in`, async () => {
      const got = await readThroughStdin(fixture(name));
      assert.ok('info' in got, JSON.stringify(got));
      assert.equal(got.info.path, '-');
      assert.deepEqual(got.records, reference.records);
    });
  }

  it('- with a non-capture piped in fails with CaptureError', async () => {
    const got = await readThroughStdin(fixture('not-a-capture.html'));
    assert.ok('error' in got);
    assert.match(got.error, /^CaptureError: -: not a pcap or pcapng file/);
  });
});

function pieces(bytes: Uint8Array, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let o = 0; o < bytes.length; o += size) yield Buffer.from(bytes.subarray(o, o + size));
    })(),
  );
}

describe('streams', () => {
  it('delivers each packet as soon as its last byte arrives (live tcpdump -U -w -)', async () => {
    const bytes = readFileSync(fixture('pcap-le-usec.pcap'));
    const input = new PassThrough();
    const records: Rec[] = [];
    let firstArrived!: () => void;
    const first = new Promise<void>((resolve) => (firstArrived = resolve));
    const reading = readCaptureStream('tcpdump', input, (r) => {
      records.push(copyRecord(r));
      firstArrived();
    });
    // Header, the first packet and part of the second; the stream stays open.
    const firstEnd = 24 + 16 + reference.records[0]!.capturedLength;
    input.write(bytes.subarray(0, firstEnd + 20));
    await first;
    assert.equal(records.length, 1);
    input.end(bytes.subarray(firstEnd + 20));
    const info = await reading;
    assert.equal(info.path, 'tcpdump');
    assert.deepEqual(records, reference.records);
  });

  it('abort ends a read that is waiting for data', async () => {
    const input = new PassThrough();
    const controller = new AbortController();
    const reading = readCaptureStream('live', input, () => controller.abort(), { signal: controller.signal });
    input.write(readFileSync(fixture('pcap-le-usec.pcap')).subarray(0, 200));
    await assert.rejects(reading, { name: 'AbortError' });
  });

  it('gzip arriving one byte at a time', async () => {
    const records: Rec[] = [];
    const info = await readCaptureStream('gz', pieces(readFileSync(fixture('pcapng-le-usec.pcapng.gz')), 1), (r) =>
      records.push(copyRecord(r)),
    );
    assert.equal(info.format, 'pcapng');
    assert.deepEqual(records, reference.records);
  });

  it('gzip cut short: packets before the cut, then a warning', async () => {
    const gz = readFileSync(fixture('pcap-le-usec.pcap.gz'));
    const records: Rec[] = [];
    const info = await readCaptureStream('cut.gz', pieces(gz.subarray(0, gz.length >> 1), 512), (r) =>
      records.push(copyRecord(r)),
    );
    assert.equal(info.truncated, true);
    assert.ok(records.length > 0 && records.length < reference.records.length);
    assert.deepEqual(records, reference.records.slice(0, records.length));
    assert.match(info.warnings.join('\n'), /gzip/);
  });

  it('gzip magic followed by garbage is a CaptureError', async () => {
    const garbage = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    await assert.rejects(readCaptureStream('bad.gz', pieces(garbage, 4), () => {}), (err: Error) => {
      assert.ok(err instanceof CaptureError);
      assert.match(err.message, /bad\.gz: corrupt gzip data/);
      return true;
    });
  });
});

describe('files', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'connscope-read-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const name of ['pcap-le-usec.pcap', 'pcap-le-usec.pcap.gz']) {
    it(`progress on ${name} ends at the file size`, async () => {
      const calls: Array<[number, number | undefined]> = [];
      await readCapture(fixture(name), () => {}, { onProgress: (n, total) => calls.push([n, total]) });
      const size = statSync(fixture(name)).size;
      assert.deepEqual(calls.at(-1), [size, size]);
    });
  }

  it('an aborted signal stops a file read', async () => {
    await assert.rejects(readCapture(fixture('pcap-le-usec.pcap'), () => {}, { signal: AbortSignal.abort() }), {
      name: 'AbortError',
    });
  });

  it('memory does not grow with the file: a 60 MB capture through fixed buffers', async () => {
    // A large file made of the reference capture's records repeated.
    const bytes = readFileSync(fixture('pcap-le-usec.pcap'));
    const records = bytes.subarray(24);
    const copies = 10_000;
    const file = path.join(tmp, 'big.pcap');
    const out = createWriteStream(file);
    out.write(bytes.subarray(0, 24));
    for (let i = 0; i < copies; i++) if (!out.write(records)) await once(out, 'drain');
    out.end();
    await finished(out);

    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const info = await readCapture(file, () => {}, {
      onProgress: () => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)),
    });
    assert.equal(info.packets, copies * reference.records.length);
    assert.equal(info.bytesRead, statSync(file).size);
    assert.ok(peak < 16 * 1024 * 1024, `array buffers grew by ${peak} bytes`);
  });
});
