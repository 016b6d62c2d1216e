/**
 * One fuzz case end to end: mutated capture bytes through the reader (streamed in random chunks,
 * sometimes gzip-compressed), the decoder, the flow tracker (sometimes with a tiny conversation cap),
 * every detector and every report format, then checks that the result is well-formed. Shared by the
 * bounded run in `npm test` (fuzz.test.ts) and the long run (`npm run fuzz`, bench/fuzz.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readCaptureStream } from '../../src/capture/read.js';
import { CaptureError } from '../../src/capture/record.js';
import { LadderRecorder } from '../../src/core/ladder.js';
import { AnalysisSession, type AnalysisResult } from '../../src/core/session.js';
import { SEVERITIES } from '../../src/detect/finding.js';
import { DETECTORS } from '../../src/detect/registry.js';
import { makeChalk } from '../../src/report/color.js';
import { writeJsonReport } from '../../src/report/json.js';
import { renderJunit } from '../../src/report/junit.js';
import { renderLadder } from '../../src/report/ladder.js';
import { writeNdjsonReport } from '../../src/report/ndjson.js';
import { renderText } from '../../src/report/text.js';
import { CORPUS_DIR, REPO_ROOT } from '../helpers/paths.js';
import { caseSeed, crop, layout, mutate, Rng, type Seed } from './mutate.js';

/** Seeds larger than this many records or blocks are cut to it, so that a case stays quick. */
const SEED_UNITS = 120;
/** Corpus files up to this size become seeds too (odd link types, tunnels, IPv6 chains). */
const CORPUS_SEED_BYTES = 256 * 1024;

function readSeed(path: string): Uint8Array | null {
  // A plain Uint8Array, not a Buffer: Buffer's slice() is a view, and mutants must be copies.
  let bytes: Uint8Array = new Uint8Array(readFileSync(path));
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = new Uint8Array(gunzipSync(bytes));
    } catch {
      return null;
    }
  }
  bytes = crop(bytes, SEED_UNITS);
  // Only captures with packets in a structure that can be walked: the rest (header-only files,
  // unsupported versions) would only ever test the sniffing, which the capture tests cover.
  return layout(bytes).units.some((u) => u.data >= 0) ? bytes : null;
}

/**
 * Real captures to mutate: the format fixtures, the lab captures (cut to their first records), and
 * the small files of the public corpus when it is beside the repository. Sorted by name, so that a
 * seed number means the same cases on every machine with the same files.
 */
export function loadSeeds(options: { corpus?: boolean } = {}): Seed[] {
  const files: string[] = [];
  for (const dir of ['fixtures/formats', 'fixtures/captures']) {
    const abs = join(REPO_ROOT, dir);
    if (!existsSync(abs)) continue;
    for (const name of readdirSync(abs).sort()) {
      if (/\.(pcap|pcapng)(\.gz)?$/.test(name)) files.push(join(abs, name));
    }
  }
  if (options.corpus !== false && existsSync(CORPUS_DIR)) {
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir).sort()) {
        const path = join(dir, name);
        const stat = statSync(path);
        if (stat.isDirectory()) walk(path);
        else if (/\.(pcap|pcapng)(\.gz)?$/.test(name) && stat.size <= CORPUS_SEED_BYTES) files.push(path);
      }
    };
    walk(CORPUS_DIR);
  }
  const seeds: Seed[] = [];
  for (const path of files) {
    const bytes = readSeed(path);
    if (bytes !== null) seeds.push({ name: relative(REPO_ROOT, path), bytes });
  }
  return seeds;
}

export interface FuzzCase {
  index: number;
  /** Seed file(s) the inputs were made from. */
  origin: string[];
  /** The mutations applied, in order (for the report of a failure). */
  mutations: string[];
  /** One input, or several analysed as one capture (--merge). */
  inputs: Uint8Array[];
  /** Chunk sizes the reader gets the bytes in (cycled). */
  chunkSizes: number[];
  gzip: boolean;
  maxConversations: number | undefined;
  maxStoredConversations: number | undefined;
  port: number | undefined;
}

/** The case `index` of the run seeded with `seed`: the same bytes and options every time. */
export function makeCase(seeds: readonly Seed[], seed: number, index: number): FuzzCase {
  const rng = new Rng(caseSeed(seed, index));
  const count = rng.chance(0.1) ? 2 : 1;
  const origin: string[] = [];
  const inputs: Uint8Array[] = [];
  const mutations: string[] = [];
  for (let i = 0; i < count; i++) {
    const source = rng.pick(seeds);
    origin.push(source.name);
    inputs.push(mutate(rng, source.bytes, seeds, mutations));
  }
  const chunking = rng.int(4);
  const chunkSizes = chunking === 0 ? [1 << 20] : chunking === 1 ? [1 + rng.int(64)] : chunking === 2
    ? [1 + rng.int(4096), 1 + rng.int(16), 1 + rng.int(300)] : [4096];
  const capped = rng.int(4);
  return {
    index,
    origin,
    mutations,
    inputs,
    chunkSizes,
    gzip: rng.chance(0.05),
    maxConversations: capped === 0 ? 1 + rng.int(8) : capped === 1 ? 1 + rng.int(100) : undefined,
    maxStoredConversations: rng.chance(0.1) ? rng.int(4) : undefined,
    port: rng.chance(0.05) ? rng.pick([80, 443, 6379, rng.int(65536)]) : undefined,
  };
}

async function* chunked(bytes: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    // A fresh copy each time: a consumer must not rely on a chunk outliving its turn.
    yield bytes.slice(at, at + size);
    at += size;
  }
}

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString('utf8');
    callback();
  }
}

/** Runs one case through everything; throws (assertion or not) when anything is wrong. */
export async function runCase(c: FuzzCase): Promise<AnalysisResult> {
  const ladder = new LadderRecorder({ id: 1 }, 1000);
  const session = new AnalysisSession({
    tracker: c.maxConversations !== undefined ? { maxConversations: c.maxConversations } : {},
    maxStoredConversations: c.maxStoredConversations,
    filter: c.port !== undefined ? { ports: [c.port] } : undefined,
    segmentObserver: ladder,
  });
  const errors: string[] = [];
  for (const [i, raw] of c.inputs.entries()) {
    const bytes = c.gzip ? gzipSync(raw) : raw;
    session.beginInput(`mutant-${c.index}-${i}`);
    try {
      session.endInput(await readCaptureStream(`mutant-${c.index}-${i}`, chunked(bytes, c.chunkSizes), session.record));
    } catch (error) {
      // Only "this is not a capture we can read": anything else is a bug.
      if (!(error instanceof CaptureError)) throw error;
      assert.doesNotMatch(error.message, /\n/, 'a capture error is one line');
      errors.push(error.message);
      session.failInput(error.message);
    }
  }
  const result = session.finish();
  checkResult(result, c);
  await checkReports(result, c.index);
  for (const { rows, summary, truncated } of ladder.ladders.values()) renderLadder(summary, rows, truncated, makeChalk(1));
  return result;
}

/** Numbers a report can carry: finite (JSON would turn NaN and Infinity into null). */
function assertFinite(value: unknown, path: string): void {
  if (typeof value === 'number') {
    assert.ok(Number.isFinite(value), `${path} is ${value}`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => assertFinite(v, `${path}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) assertFinite(v, `${path}.${k}`);
  } else {
    assert.ok(value === null || ['string', 'boolean'].includes(typeof value), `${path} is a ${typeof value}`);
  }
}

const sum = (values: number[]): number => values.reduce((n, v) => n + v, 0);

/** What any result must satisfy, whatever the input: counts that add up, ids that resolve. */
export function checkResult(result: AnalysisResult, c: Pick<FuzzCase, 'inputs' | 'port'>): void {
  assertFinite(result, 'result');
  const { summary, inputs, conversations, findings } = result;
  assert.equal(inputs.length, c.inputs.length);
  assert.equal(summary.inputs, inputs.length);
  for (const input of inputs) {
    assert.ok(Number.isInteger(input.packets) && input.packets >= 0);
    assert.ok(input.tcpPackets <= input.packets, `input tcpPackets ${input.tcpPackets} > packets ${input.packets}`);
    for (const w of input.warnings) assert.doesNotMatch(w, /\n/, 'a warning is one line');
    if (input.error !== null) {
      assert.equal(input.packets, 0, 'an unreadable input delivered no packets');
      assert.doesNotMatch(input.error, /\n/);
    }
    if (input.start !== null && input.end !== null) assert.ok(input.start <= input.end);
  }
  assert.equal(summary.packets, sum(inputs.map((i) => i.packets)));
  assert.equal(summary.tcpPackets, sum(inputs.map((i) => i.tcpPackets)));
  assert.ok(summary.tcpPackets <= summary.packets);
  assert.equal(summary.conversations, conversations.length + summary.conversationsNotListed);
  assert.ok(summary.evicted <= summary.conversations);
  assert.equal(sum(Object.values(summary.closeKinds)), summary.conversations, 'every conversation ended once');
  assert.equal(sum(Object.values(summary.flags)), summary.tcpPackets, 'every TCP packet has a flags entry');
  assert.equal(
    sum(Object.values(summary.flagsByDirection.client)) + sum(Object.values(summary.flagsByDirection.server)),
    summary.tcpPackets,
  );
  const ids = new Set<number>();
  for (const conv of conversations) {
    assert.ok(!ids.has(conv.id), `conversation id ${conv.id} twice`);
    ids.add(conv.id);
    assert.ok(conv.id >= 1 && conv.id <= summary.conversations);
    assert.ok(conv.start <= conv.end, `conversation ${conv.id} ends before it starts`);
    assert.ok(conv.firstFrame <= conv.lastFrame && conv.lastFrame <= summary.packets);
    assert.ok(conv.packets.client + conv.packets.server >= 1);
    assert.ok(conv.retransmissions.client <= conv.packets.client && conv.retransmissions.server <= conv.packets.server);
    assert.ok(conv.previousId === null || conv.previousId < conv.id);
    assert.ok(conv.input >= 0 && conv.input < inputs.length);
  }
  if (summary.conversationsNotListed === 0) {
    // Each tracked packet belongs to exactly one conversation.
    assert.equal(sum(conversations.map((v) => v.packets.client + v.packets.server)), summary.tcpPackets);
    assert.equal(sum(conversations.map((v) => v.retransmissions.client + v.retransmissions.server)), summary.retransmissions);
    assert.equal(sum(conversations.map((v) => v.resets.client + v.resets.server)), summary.resets);
    assert.equal(conversations.filter((v) => v.close.kind === 'timeout-evicted').length, summary.evicted);
  }
  const findingIds = new Set<string>();
  for (const f of findings) {
    assert.ok(!findingIds.has(f.id), `finding ${f.id} twice`);
    findingIds.add(f.id);
    assert.ok((SEVERITIES as readonly string[]).includes(f.severity));
    assert.ok(DETECTORS.some((d) => d.id === f.detector), `unknown detector ${f.detector}`);
    assert.ok(f.title.length > 0 && f.explanation.length > 0, `${f.id}: title and explanation`);
    assert.ok(Array.isArray(f.advice) && f.advice.every((a) => typeof a === 'string'));
    assert.ok(f.start <= f.end, `${f.id}: start ${f.start} after end ${f.end}`);
    assert.ok(f.conversations.length > 0, `${f.id}: about no conversation`);
    for (const id of f.conversations) {
      assert.ok(Number.isInteger(id) && id >= 1 && id <= summary.conversations, `${f.id}: conversation ${id}`);
      if (summary.conversationsNotListed === 0) assert.ok(ids.has(id), `${f.id}: conversation ${id} not in the report`);
    }
  }
}

/** Every report format renders, and the machine-readable ones parse back. */
async function checkReports(result: AnalysisResult, index: number): Promise<void> {
  const json = new Collect();
  await writeJsonReport(result, json);
  const parsed = JSON.parse(json.text) as { conversations: unknown[]; findings: unknown[] };
  assert.equal(parsed.conversations.length, result.conversations.length);
  assert.equal(parsed.findings.length, result.findings.length);
  const ndjson = new Collect();
  await writeNdjsonReport(result, ndjson);
  const lines = ndjson.text.trimEnd().split('\n').map((line) => JSON.parse(line) as { type: string });
  assert.equal(lines.length, 2 + result.inputs.length + result.findings.length + result.conversations.length);
  // The table library takes longer than the analysis: one case in four is rendered as text.
  if (index % 4 === 0) renderText(result, { chalk: makeChalk(1), flows: 'interesting', limit: 5, quiet: false });
  const junit = renderJunit(result, {
    detectors: DETECTORS.map((d) => d.id), failOn: 'warning', timestamp: new Date(0), hostname: 'fuzz',
  });
  assert.match(junit, /^<\?xml[^]*<\/testsuites>\s*$/);
}
