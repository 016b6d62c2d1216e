import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { CaptureParser } from '../../src/capture/parser.js';
import { readCapture } from '../../src/capture/read.js';
import { CaptureError } from '../../src/capture/record.js';
import { fixture } from './helpers.js';

async function captureError(file: string): Promise<string> {
  let message = '';
  await assert.rejects(readCapture(file, () => {}), (err: Error) => {
    assert.ok(err instanceof CaptureError, `expected CaptureError, got ${err}`);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    message = err.message;
    return true;
  });
  return message;
}

/** Where each record's header starts and its data ends (one chunk: offsets are file offsets). */
function recordSpans(name: string, headerLength: number): Array<{ start: number; end: number }> {
  const spans: Array<{ start: number; end: number }> = [];
  const parser = new CaptureParser(name, (r) => spans.push({ start: r.offset - headerLength, end: r.offset + r.capturedLength }));
  parser.push(readFileSync(fixture(name)));
  parser.finish();
  return spans;
}

const pcapSpans = recordSpans('pcap-le-usec.pcap', 16);
const pcapngSpans = recordSpans('pcapng-le-usec.pcapng', 28);

describe('inputs that are not captures', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'connscope-capture-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('missing file', async () => {
    const message = await captureError(path.join(tmp, 'nope.pcap'));
    assert.match(message, /cannot open .*nope\.pcap: no such file/);
  });

  it('directory', async () => {
    assert.match(await captureError(tmp), /is a directory/);
  });

  it('unreadable file', { skip: process.getuid?.() === 0 ? 'running as root: permissions are not enforced' : false }, async () => {
    const file = path.join(tmp, 'secret.pcap');
    writeFileSync(file, readFileSync(fixture('pcap-le-usec.pcap')), { mode: 0o000 });
    assert.match(await captureError(file), /permission denied/);
  });

  it('empty file', async () => {
    assert.match(await captureError(fixture('empty.pcap')), /empty\.pcap: empty file/);
  });

  it('text file: names what it found', async () => {
    const message = await captureError(fixture('not-a-capture.html'));
    assert.match(message, /not a pcap or pcapng file/);
    assert.match(message, /"<!DO"/);
  });

  it('binary file: shows the bytes', async () => {
    const file = path.join(tmp, 'x.bin');
    writeFileSync(file, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));
    assert.match(await captureError(file), /not a pcap or pcapng file \(starts with bytes 7f 45 4c 46\)/);
  });

  it('file cut inside the pcap header', async () => {
    assert.match(await captureError(fixture('truncated-header.pcap')), /truncated pcap header \(10 of 24 bytes\)/);
  });
});

describe('damage after the header keeps the packets before it', () => {
  it('pcap cut mid-record', async () => {
    const name = 'truncated-mid-record.pcap';
    const size = statSync(fixture(name)).size;
    const info = await readCapture(fixture(name), () => {});
    const kept = pcapSpans.filter((s) => s.end <= size).length;
    assert.equal(info.packets, kept);
    assert.equal(info.truncated, true);
    assert.deepEqual(info.warnings, [`capture truncated at byte ${size} (record ${kept + 1} incomplete)`]);
  });

  it('pcapng cut mid-block', async () => {
    const name = 'truncated-mid-block.pcapng';
    const size = statSync(fixture(name)).size;
    const info = await readCapture(fixture(name), () => {});
    // Blocks are contiguous: a packet block ends where the next one starts.
    const kept = pcapngSpans.filter((_, i) => (pcapngSpans[i + 1]?.start ?? Infinity) <= size).length;
    assert.equal(info.packets, kept);
    assert.equal(info.truncated, true);
    assert.deepEqual(info.warnings, [`capture truncated at byte ${size} (record ${kept + 1} incomplete)`]);
  });

  it('pcap record with an absurd captured length', async () => {
    const info = await readCapture(fixture('corrupt-record-length.pcap'), () => {});
    assert.equal(info.packets, 4);
    assert.equal(info.truncated, true);
    assert.equal(info.warnings.length, 1);
    assert.match(
      info.warnings[0]!,
      new RegExp(`^corrupt record 5 at byte ${pcapSpans[4]!.start}: captured length 2147483632 exceeds .*; stopped reading$`),
    );
  });

  it('pcapng block with an absurd length', async () => {
    const info = await readCapture(fixture('corrupt-block-length.pcapng'), () => {});
    assert.equal(info.packets, 4);
    assert.equal(info.truncated, true);
    assert.equal(info.warnings.length, 1);
    assert.match(
      info.warnings[0]!,
      new RegExp(`^bad pcapng block at byte ${pcapngSpans[4]!.start}: block length 1073741824 exceeds .*; stopped reading$`),
    );
  });

  for (const [name, start, header] of [
    ['corrupt-record-length.pcap', pcapSpans[4]!.start, 16],
    ['corrupt-block-length.pcapng', pcapngSpans[4]!.start, 8],
  ] as const) {
    it(`${name}: stops on the length field, before buffering any of the claimed bytes`, () => {
      const parser = new CaptureParser(name, () => {});
      parser.push(readFileSync(fixture(name)).subarray(0, start + header));
      assert.equal(parser.stopped, true);
    });
  }
});
