/**
 * Hand-made hostile captures, end to end (reader, decoder, tracker, detectors, reports): damaged
 * packets are counted and skipped while the analysis goes on; damaged file structure ends reading at
 * that point with one warning and the results so far. The reader's and decoder's own tests
 * (test/capture, test/decode) check each rule in isolation; these check what a user gets.
 *
 * Expected counts come from the lab facts (tshark) and from counting the records written here.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { analyzeFiles } from '../../src/core/analyze.js';
import type { AnalysisResult } from '../../src/core/session.js';
import { capture, facts, REPO_ROOT } from '../helpers/paths.js';
import { connscope, epb, headersOf, idb, packetsOf, shb, tempCapture, writePcap, type Packet } from './craft.js';
import { concat } from './mutate.js';
import { checkResult } from './harness.js';

interface ConversationFacts {
  frames_client_to_server: number;
  frames_server_to_client: number;
}

function tcpFramesOf(name: string): number {
  const { conversations } = facts<{ conversations: ConversationFacts[] }>(name);
  return conversations.reduce((n, c) => n + c.frames_client_to_server + c.frames_server_to_client, 0);
}

function load(name: string): { linkType: number; packets: Packet[] } {
  return packetsOf(new Uint8Array(readFileSync(capture(`${name}.pcap`))));
}

function isTcp(p: Packet): boolean {
  return headersOf(p.data).tcp >= 0;
}

async function analyze(path: string): Promise<AnalysisResult> {
  const { result, errors } = await analyzeFiles([path]);
  assert.deepEqual(errors, []);
  checkResult(result, { inputs: [new Uint8Array(0)], port: undefined });
  return result;
}

/** The CLI's JSON for one capture: exit 0, warnings on stderr, no stack trace. */
function cliJson(path: string): AnalysisResult {
  const run = connscope(['analyze', path, '--json']);
  assert.equal(run.timedOut, false, 'finished');
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  const result = JSON.parse(run.stdout) as AnalysisResult;
  checkResult(result, { inputs: [new Uint8Array(0)], port: undefined });
  return result;
}

describe('damaged packets: counted, skipped, analysis goes on', () => {
  it('IPv4 IHL < 5, total length < header, TCP data offset < 5 or past the packet, IPv6 header chains; option lengths 0 and 1', async () => {
    const { linkType, packets } = load('healthy-mix');
    const tcpFrames = tcpFramesOf('healthy-mix');
    assert.equal(packets.filter(isTcp).length, tcpFrames, 'the index agrees with tshark on the TCP frames');
    // Damage only segments that carry no SYN, FIN or RST, so that every conversation stays whole.
    const plain = packets.filter((p) => {
      const { tcp } = headersOf(p.data);
      return tcp >= 0 && (p.data[tcp + 13]! & 0x07) === 0;
    });
    const v4Acks = plain.filter((p) => p.data[headersOf(p.data).ip]! >> 4 === 4 && p.data[headersOf(p.data).tcp + 13] === 0x10);
    const v6Big = plain.filter((p) => {
      const { ip, tcp } = headersOf(p.data);
      return p.data[ip]! >> 4 === 6 && p.data.length - tcp >= 80;
    });
    const withOptions = v4Acks.filter((p) => {
      const { tcp } = headersOf(p.data);
      return p.data[tcp + 12]! >> 4 > 5 && p.data[tcp + 20] === 1 && p.data[tcp + 21] === 1 && p.data[tcp + 22] === 8;
    });
    assert.ok(v4Acks.length >= 10 && v6Big.length >= 2 && withOptions.length >= 10, 'enough packets to damage');
    const malformed: ((p: Packet) => void)[] = [
      (p) => { const { ip } = headersOf(p.data); p.data[ip] = 0x44; }, // IHL 4
      (p) => { const { ip } = headersOf(p.data); p.data[ip + 2] = 0; p.data[ip + 3] = 19; }, // total length 19
      (p) => { const { tcp } = headersOf(p.data); p.data[tcp + 12] = 0x40 | (p.data[tcp + 12]! & 0x0f); }, // data offset 4
      (p) => { const { tcp } = headersOf(p.data); p.data[tcp + 12] = 0xf0 | (p.data[tcp + 12]! & 0x0f); }, // 60 bytes: past the packet
    ];
    const damaged = new Set<Packet>();
    const take = (from: Packet[]): Packet => {
      const p = from.find((q) => !damaged.has(q));
      assert.ok(p);
      damaged.add(p);
      return p;
    };
    for (const damage of malformed) damage(take(v4Acks));
    // IPv6: a destination-options header leading back to hop-by-hop (which may only come first), and a
    // chain of nine destination-options headers, each naming the next: longer than RFC 8200 allows.
    {
      const p = take(v6Big);
      const { ip, tcp } = headersOf(p.data);
      p.data[ip + 6] = 60;
      p.data.set([0, 0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0], tcp);
    }
    {
      const p = take(v6Big);
      const { ip, tcp } = headersOf(p.data);
      p.data[ip + 6] = 60;
      for (let i = 0; i < 9; i++) p.data.set([60, 0, 0, 0, 0, 0, 0, 0], tcp + 8 * i);
    }
    const malformedCount = malformed.length + 2;
    // Option lists with a length of 0 and of 1: the options are ignored, the segment is kept.
    for (const length of [0, 1]) {
      const p = take(withOptions);
      p.data[headersOf(p.data).tcp + 23] = length;
    }
    const path = tempCapture(writePcap(linkType, packets));
    for (const result of [await analyze(path), cliJson(path)]) {
      const input = result.inputs[0]!;
      assert.equal(input.packets, packets.length);
      assert.equal(input.truncated, false);
      assert.ok(input.warnings.includes(`${malformedCount} malformed packets skipped`), input.warnings.join('; '));
      assert.ok(input.warnings.includes('2 TCP packets with a damaged option list: options after the damage ignored'), input.warnings.join('; '));
      assert.equal(result.summary.tcpPackets, tcpFrames - malformedCount);
      assert.equal(result.summary.conversations, facts<{ counts: { conversations: number } }>('healthy-mix').counts.conversations);
    }
  });

  it('zero-length records: read, counted as damage or snaplen cuts, the TCP analysis unchanged', async () => {
    const { linkType, packets } = load('idle-timeout-storm');
    const withEmpty: Packet[] = [];
    packets.forEach((p, i) => {
      withEmpty.push(p);
      // Nothing captured and nothing on the wire; nothing captured of a 60-byte frame.
      withEmpty.push({ micros: p.micros, data: new Uint8Array(0), originalLength: i % 2 === 0 ? 0 : 60 });
    });
    const result = await analyze(tempCapture(writePcap(linkType, withEmpty)));
    const input = result.inputs[0]!;
    assert.equal(input.packets, 2 * packets.length);
    assert.ok(input.warnings.includes(`${packets.length / 2} malformed packets skipped`), input.warnings.join('; '));
    assert.ok(input.warnings.includes(`${packets.length / 2} packets skipped: cut by the capture's snaplen before the end of their TCP header`));
    assert.equal(result.summary.tcpPackets, tcpFramesOf('idle-timeout-storm'));
    const storm = facts<{ storm: { client: string; server: string } }>('idle-timeout-storm').storm;
    assert.ok(result.findings.some((f) => f.detector === 'retransmit-storm' &&
      `${f.client?.ip}:${f.client?.port}` === storm.client && `${f.server?.ip}:${f.server?.port}` === storm.server));
  });

  it('a gzip file that inflates to 65,536 zero-length records: read to the end in bounded memory', () => {
    const header = writePcap(1, []);
    const bytes = gzipSync(concat(header, new Uint8Array(65536 * 16)));
    assert.ok(bytes.length < 4096);
    const result = cliJson(tempCapture(bytes, 'zeros.pcap.gz'));
    assert.equal(result.inputs[0]!.packets, 65536);
    assert.ok(result.inputs[0]!.warnings.includes('65,536 malformed packets skipped'));
    assert.equal(result.summary.tcpPackets, 0);
  });

  it('a packet claiming 4 GiB on the wire with IPv4 total length 0 (the BIG TCP rule) is one segment, not an allocation', async () => {
    const { linkType, packets } = load('idle-timeout-storm');
    const p = packets.find((q) => isTcp(q) && q.data.length > 66)!;
    p.originalLength = 0xffffffff;
    const { ip } = headersOf(p.data);
    p.data[ip + 2] = 0;
    p.data[ip + 3] = 0;
    const result = cliJson(tempCapture(writePcap(linkType, packets)));
    assert.equal(result.summary.tcpPackets, tcpFramesOf('idle-timeout-storm'));
    assert.ok(result.summary.bytes >= 0xffffffff);
    assert.ok(result.conversations.some((c) => c.payloadBytes.client + c.payloadBytes.server > 0xffff0000));
  });
});

describe('damaged file structure: reading stops there, with a warning and the results so far', () => {
  const { linkType, packets } = load('idle-timeout-storm');
  /** The packet before which the damage goes: past the storm's start, so there is something to keep. */
  const cut = 20;
  const before = packets.slice(0, cut);
  const tcpBefore = before.filter(isTcp).length;

  async function expectStopped(bytes: Uint8Array, warning: RegExp, name: string): Promise<void> {
    const path = tempCapture(bytes, name);
    for (const result of [await analyze(path), cliJson(path)]) {
      const input = result.inputs[0]!;
      assert.equal(input.truncated, true);
      assert.equal(input.packets, cut);
      assert.equal(result.summary.tcpPackets, tcpBefore);
      assert.equal(input.warnings.filter((w) => warning.test(w)).length, 1, input.warnings.join('; '));
      assert.ok(result.summary.conversations >= 1);
    }
  }

  it('pcap: a record claiming 4 GiB', async () => {
    const damaged = [...before, { ...packets[cut]!, caplenField: 0xffffffff }, ...packets.slice(cut + 1)];
    await expectStopped(writePcap(linkType, damaged), /^corrupt record 21 at byte \d+: captured length 4294967295 exceeds the 262144-byte maximum; stopped reading$/, 'claim.pcap');
  });

  it('pcap: cut inside a record', async () => {
    const whole = writePcap(linkType, packets.slice(0, cut + 1));
    await expectStopped(whole.subarray(0, whole.length - 5), /^capture truncated at byte \d+ \(record 21 incomplete\)$/, 'cut.pcap');
  });

  /** pcapng of the same packets (microsecond timestamps), with block `cut` replaced by `bad`. */
  function pcapng(bad: Uint8Array): Uint8Array {
    const blocks = packets.map((p) => epb(BigInt(p.micros), p.data, p.originalLength));
    return concat(shb(), idb(linkType), ...blocks.slice(0, cut), bad, ...blocks.slice(cut + 1));
  }

  function patched(edit: (v: DataView, block: Uint8Array) => void): Uint8Array {
    const p = packets[cut]!;
    const block = epb(BigInt(p.micros), p.data, p.originalLength);
    edit(new DataView(block.buffer), block);
    return block;
  }

  it('pcapng: a block length that is not a multiple of 4', async () => {
    await expectStopped(pcapng(patched((v) => v.setUint32(4, v.getUint32(4, true) + 2, true))), /block length \d+ is not a multiple of 4; stopped reading$/, 'odd.pcapng');
  });

  it('pcapng: a block length of 0, which would read the same block forever if taken as the step', async () => {
    await expectStopped(pcapng(patched((v) => v.setUint32(4, 0, true))), /block length 0 is below the 12-byte minimum; stopped reading$/, 'zero.pcapng');
  });

  it('pcapng: a packet block shorter than its header', async () => {
    const short = new Uint8Array(16);
    const v = new DataView(short.buffer);
    v.setUint32(0, 6, true);
    v.setUint32(4, 16, true);
    v.setUint32(12, 16, true);
    await expectStopped(pcapng(short), /block length 16 is below the 32-byte minimum; stopped reading$/, 'short.pcapng');
  });

  it('pcapng: trailing length differs from the leading one', async () => {
    await expectStopped(pcapng(patched((v, b) => v.setUint32(b.length - 4, 4096, true))), /trailing length 4096 differs from leading length \d+; stopped reading$/, 'trailer.pcapng');
  });

  it('pcapng: a packet block claiming 4 GiB captured inside a small block', async () => {
    await expectStopped(pcapng(patched((v) => v.setUint32(20, 0xffffffff, true))), /captured length 4294967295 exceeds its \d+-byte block; stopped reading$/, 'caplen.pcapng');
  });

  it('pcapng: a block claiming 4 GiB', async () => {
    await expectStopped(pcapng(patched((v) => v.setUint32(4, 0xfffffffc, true))), /block length 4294967292 exceeds the 16777216-byte limit; stopped reading$/, 'huge.pcapng');
  });
});

describe('timestamps no calendar can show', () => {
  it('pcapng with if_tsresol 10^0 (seconds): every time is past year 9999; the text report still renders', () => {
    const { linkType, packets } = load('idle-timeout-storm');
    // The microsecond counts read as seconds: around 1.8e15 s, beyond what Date can represent.
    const bytes = concat(shb(), idb(linkType, 0), ...packets.map((p) => epb(BigInt(p.micros), p.data, p.originalLength)));
    const path = tempCapture(bytes, 'seconds.pcapng');
    const text = connscope(['analyze', path]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /\d+\.\d{6} s since 1970/);
    const result = cliJson(path);
    assert.equal(result.summary.tcpPackets, tcpFramesOf('idle-timeout-storm'));
    assert.ok(result.summary.start! > 253402300800, 'past 9999-12-31');
  });
});

describe('inputs the long fuzz run once failed on (test/hostile/regressions)', () => {
  const dir = join(REPO_ROOT, 'test', 'hostile', 'regressions');
  for (const name of readdirSync(dir).filter((n) => /\.(pcap|pcapng)(\.gz)?$/.test(n)).sort()) {
    it(name, () => {
      const path = join(dir, name);
      const text = connscope(['analyze', path]);
      assert.equal(text.code, 0, text.stderr);
      cliJson(path);
    });
  }
});
