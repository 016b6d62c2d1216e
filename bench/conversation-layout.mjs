#!/usr/bin/env node
/**
 * Writes src/flow/conversation.ts from the field tables below: `node bench/conversation-layout.mjs`.
 *
 * A conversation's fields live in one binary record (see the header of the generated file); this
 * script lays the record out and writes one getter/setter pair per field, so adding a field is one
 * line here. Order matters: fields are placed in the order listed, so those the tracker touches on
 * every packet come first and share the first cache lines of each block.
 *
 * Kinds: f64 (times, frames, byte counts, anything that may be fractional or beyond 2^32),
 * u32 (sequence numbers, counters, ports), i32 (small signed values with -1 for "unknown"),
 * bool, side (Side enum), ipv (4 | 6), kind (CloseKind, stored as an index).
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'flow', 'conversation.ts');

/** [name, kind, initial value, doc] */
const CONVERSATION = [
  ['clientIsLow', 'bool', 'true', "Which of the canonical tuple's endpoints is the client (see FlowTable.sourceIsLow)."],
  ['resetBy', 'side', 'Side.None'],
  ['end', 'f64', '0'],
  ['longestIdle', 'f64', '0', 'Longest silence between two consecutive packets, and when it began.'],
  ['lastFrame', 'f64', '0'],
  ['establishedTime', 'f64', '-1'],
  ['lastSynTime', 'f64', '-1'],
  ['synAckTime', 'f64', '-1'],
  ['closeTime', 'f64', '-1', 'When the conversation closed (second FIN, or the first RST); -1 while open.'],
  ['midstream', 'bool', 'false', 'Orientation was guessed from ports because the capture has no SYN for this conversation.'],
  ['handle', 'i32', '-1', 'FlowTable handle while the conversation is tracked.'],
  ['closeQueued', 'bool', 'false', "Whether the tracker's close queue holds this conversation."],
  ['firstFinBy', 'side', 'Side.None'],
  ['id', 'f64', '0', '1-based, in order of first packet within the analysis.'],
  ['start', 'f64', '0'],
  ['firstFrame', 'f64', '0'],
  ['synTime', 'f64', '-1'],
  ['synFrame', 'f64', '0'],
  ['synAckFrame', 'f64', '0'],
  ['resetTime', 'f64', '-1'],
  ['resetFrame', 'f64', '0'],
  ['longestIdleStart', 'f64', '-1'],
  ['previousId', 'f64', '0', 'The conversation that used this 4-tuple before (0 if none), and facts about how it ended.'],
  ['previousCloseTime', 'f64', '-1'],
  ['input', 'i32', '0', 'Input (capture file) index the conversation was seen in first.'],
  ['ipVersion', 'ipv', '4'],
  ['closeKind', 'kind', "'open-at-end'"],
  ['previousFirstFinBy', 'side', 'Side.None'],
  ['previousClientNextSeq', 'u32', '0'],
  ['previousServerNextSeq', 'u32', '0'],
  ['previousHadTimestamps', 'bool', 'false'],
];

const ENDPOINT = [
  ['packets', 'u32', '0'],
  ['payloadPackets', 'u32', '0'],
  ['bytes', 'f64', '0'],
  ['payloadBytes', 'f64', '0'],
  ['lastTime', 'f64', '-1'],
  ['firstTime', 'f64', '-1'],
  ['nextSeq', 'u32', '0', 'One past the highest sequence number this side has sent (snd.nxt as seen on the wire).'],
  ['seqKnown', 'bool', 'false'],
  ['lastAck', 'u32', '0', "Highest acknowledgement this side has sent, i.e. how far it has received the peer's stream."],
  ['ackKnown', 'bool', 'false'],
  ['window', 'f64', '-1', 'Last advertised receive window in bytes (scaled when the scale is known).'],
  ['lastAckWindowRaw', 'i32', '-1', 'Raw window field of the last pure ACK, to recognise duplicate ACKs.'],
  ['windowScale', 'i32', '-1'],
  ['advancedTime', 'f64', '-1', 'When this side last advanced its highest sequence: out-of-order versus retransmission hinges on it.'],
  ['ttlFirst', 'i32', '-1'],
  ['ttlMin', 'i32', '256'],
  ['ttlMax', 'i32', '-1'],
  ['ttlLast', 'i32', '-1'],
  ['ipIdLast', 'i32', '-1', "IPv4 ID of this side's last packet that was not an RST (-1 for IPv6)."],
  ['isnKnown', 'bool', 'false'],
  ['isn', 'u32', '0'],
  ['mss', 'i32', '-1'],
  ['zeroWindowSince', 'f64', '-1', 'Since when this side has advertised a zero window (-1 when open), and the longest such stall.'],
  ['lastNewSeq', 'u32', '0', [
    'The last segment from this side that carried new data (Note.NewData: payload, SYN or FIN beyond',
    'anything sent before): its sequence number, time, frame, the silence before it (Segment.idleBefore),',
    "and whether it was this side's first packet. lastNewTime is -1 before any.",
  ]],
  ['lastNewFirst', 'bool', 'false'],
  ['lastNewTime', 'f64', '-1'],
  ['lastNewFrame', 'f64', '0'],
  ['lastNewIdle', 'f64', '0'],
  ['headSeq', 'u32', '0', [
    'The head of the flight in the air: the last new-data segment from this side that started at the',
    "peer's cumulative acknowledgement (or before any), i.e. the oldest unacknowledged segment when it",
    'was sent, which a retransmission timeout re-sends. Same facts as lastNew*; headTime is -1 before any.',
  ]],
  ['headFirst', 'bool', 'false'],
  ['headTime', 'f64', '-1'],
  ['headFrame', 'f64', '0'],
  ['headIdle', 'f64', '0'],
  ['zeroWindowLongest', 'f64', '0'],
  ['retransmittedBytes', 'f64', '0'],
  ['finTime', 'f64', '-1'],
  ['finFrame', 'f64', '0'],
  ['rstTime', 'f64', '-1'],
  ['rstFrame', 'f64', '0'],
  ['sackPermitted', 'bool', 'false'],
  ['timestamps', 'bool', 'false'],
  ['retransmissions', 'u32', '0'],
  ['keepAlives', 'u32', '0'],
  ['zeroWindowProbes', 'u32', '0'],
  ['zeroWindows', 'u32', '0'],
  ['dupAcks', 'u32', '0'],
  ['outOfOrder', 'u32', '0'],
  ['previousNotCaptured', 'u32', '0'],
  ['syns', 'u32', '0'],
  ['fins', 'u32', '0'],
  ['rsts', 'u32', '0'],
  ['port', 'u32', '0'],
  ['addr', 'addr', ''],
];

const TYPES = { f64: 'number', u32: 'number', i32: 'number', bool: 'boolean', side: 'Side', ipv: '4 | 6', kind: 'CloseKind' };

/** Byte offsets in order of the list: doubles 8-aligned, 32-bit words packed. Block size rounded to 8. */
function layout(fields) {
  let at = 0;
  const placed = [];
  for (const [name, kind, init, doc] of fields) {
    if (kind === 'f64') at = (at + 7) & ~7;
    placed.push({ name, kind, init, doc, at });
    at += kind === 'f64' ? 8 : kind === 'addr' ? 16 : 4;
  }
  return { placed, bytes: (at + 7) & ~7 };
}

const conv = layout(CONVERSATION);
const endpoint = layout(ENDPOINT);
const record = conv.bytes + 2 * endpoint.bytes;
const addrAt = endpoint.placed.find((f) => f.name === 'addr').at / 4;

function docLines(doc, indent) {
  if (doc === undefined) return [];
  const lines = Array.isArray(doc) ? doc : [doc];
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`), `${indent} */`];
}

function accessors(placed) {
  const out = [];
  for (const { name, kind, doc, at } of placed) {
    if (kind === 'addr') continue;
    out.push(...docLines(doc, '  '));
    const type = TYPES[kind];
    let get;
    let set;
    if (kind === 'f64') {
      get = `this.f[this.fb + ${at / 8}]`;
      set = `this.f[this.fb + ${at / 8}] = value;`;
    } else {
      const slot = `this.wb + ${at / 4}`;
      switch (kind) {
        case 'u32':
          get = `this.u[${slot}]`;
          set = `this.u[${slot}] = value;`;
          break;
        case 'i32':
          get = `this.s[${slot}]`;
          set = `this.s[${slot}] = value;`;
          break;
        case 'side':
          get = `this.s[${slot}] as Side`;
          set = `this.s[${slot}] = value;`;
          break;
        case 'ipv':
          get = `this.s[${slot}] as 4 | 6`;
          set = `this.s[${slot}] = value;`;
          break;
        case 'bool':
          get = `this.s[${slot}] !== 0`;
          set = `this.s[${slot}] = value ? 1 : 0;`;
          break;
        case 'kind':
          get = `CLOSE_KINDS[this.s[${slot}]]`;
          set = `this.s[${slot}] = closeKindIndex(value);`;
          break;
        default:
          throw new Error(kind);
      }
    }
    out.push(`  get ${name}(): ${type} {`, `    return ${get};`, '  }', '');
    out.push(`  set ${name}(value: ${type}) {`, `    ${set}`, '  }', '');
  }
  if (out.at(-1) === '') out.pop();
  return out;
}

function initializers(placed) {
  const out = [];
  for (const { kind, init, at } of placed) {
    if (kind === 'addr' || kind === 'kind') continue;
    if (kind === 'f64') {
      if (init !== '0') out.push(`    f[fb + ${at / 8}] = ${init};`);
      continue;
    }
    const value = kind === 'bool' ? (init === 'true' ? '1' : '0') : init;
    if (value !== '0' && value !== 'Side.None') out.push(`    s[wb + ${at / 4}] = ${value};`);
  }
  return out;
}

if (CONVERSATION.find(([name]) => name === 'closeKind')[2] !== "'open-at-end'") throw new Error('closeKind starts at index 0');

const text = `// Generated by bench/conversation-layout.mjs: edit the field tables there and run it again.
import { formatAddress, ipv4Text } from '../decode/address.js';

/**
 * Live state of one TCP conversation (one instance of a 4-tuple) and of its two endpoints.
 *
 * Hundreds of thousands of these are alive at once on a busy capture, and the tracker touches one
 * for every packet, so their layout decides both memory and speed. The fields live in one binary
 * record per conversation (${record} bytes: doubles for times, frames and byte counts, 32-bit words for
 * sequence numbers, counters, small enums and flags), records in shared pages of RECORDS_PER_PAGE;
 * Conversation and Endpoint are small objects whose accessors read and write their record. As plain
 * objects they took about 1.9 KB each, every double boxed in its own heap object somewhere else in
 * the heap; as records they take about half of that, and the fields one packet touches sit in a few
 * adjacent cache lines (each block starts with the fields the tracker updates on every packet).
 *
 * Records are never reused: a conversation's record stays valid for as long as anything holds the
 * conversation, whether or not the tracker still does. The tracker releases a conversation when it
 * finalises it; a page with a quarter of its records released has its live conversations moved to the
 * current page, after which only released conversations (usually none) keep it alive and it is
 * garbage collected. So memory follows live conversations: at most 4/3 of their records.
 */

export const enum Side {
  None = 0,
  Client = 1,
  Server = 2,
}

export type CloseKind = 'fin' | 'rst-client' | 'rst-server' | 'open-at-end' | 'timeout-evicted' | 'superseded';

const CLOSE_KINDS: readonly CloseKind[] = ['open-at-end', 'fin', 'rst-client', 'rst-server', 'timeout-evicted', 'superseded'];

function closeKindIndex(kind: CloseKind): number {
  const index = CLOSE_KINDS.indexOf(kind);
  if (index < 0) throw new RangeError(\`not a close kind: \${String(kind)}\`);
  return index;
}

/** Bytes per record: the conversation's block, then the client's, then the server's. */
export const RECORD_BYTES = ${record};
const RECORD_F64 = RECORD_BYTES / 8;
const RECORD_WORDS = RECORD_BYTES / 4;
/** Where the client's and server's blocks start in a record, in doubles and in 32-bit words. */
const CLIENT_F64 = ${conv.bytes / 8};
const CLIENT_WORDS = ${conv.bytes / 4};
const SERVER_F64 = ${(conv.bytes + endpoint.bytes) / 8};
const SERVER_WORDS = ${(conv.bytes + endpoint.bytes) / 4};
/** Word offset of the four address words in an endpoint's block. */
const ADDR = ${addrAt};

export const RECORDS_PER_PAGE = 1024;

/** A page of records. Conversations and their endpoints hold views of it and their indexes in it. */
class Page {
  readonly buffer = new ArrayBuffer(RECORDS_PER_PAGE * RECORD_BYTES);
  readonly f = new Float64Array(this.buffer);
  readonly u = new Uint32Array(this.buffer);
  readonly s = new Int32Array(this.buffer);
  /** Next record to hand out. */
  next = 0;
  /** Records handed out and not yet released. */
  live = 0;
  /** The unreleased conversation of each record handed out (null once released or moved). */
  readonly owners: (Conversation | null)[] = [];
}

let current = new Page();

/** Hands out a zeroed record on the current page, opening a new page when it is full. */
function allocate(owner: Conversation): Page {
  if (current.next === RECORDS_PER_PAGE) current = new Page();
  const page = current;
  owner.record = page.next++;
  page.live++;
  page.owners.push(owner);
  return page;
}

/** Moves the unreleased conversations of a page a quarter released to the current page. */
function compactPage(page: Page): void {
  const owners = page.owners;
  for (let r = 0; r < owners.length; r++) {
    const conv = owners[r];
    if (conv === null) continue;
    owners[r] = null;
    const from = r * RECORD_WORDS;
    const target = allocate(conv);
    target.u.set(page.u.subarray(from, from + RECORD_WORDS), conv.record * RECORD_WORDS);
    conv.attach(target);
  }
  page.live = 0;
}

export class Endpoint {
  /** @internal The page's views and this endpoint's block in them (index in doubles, in words). */
  f: Float64Array;
  u: Uint32Array;
  s: Int32Array;
  fb: number;
  wb: number;

  constructor(page: Page, fb: number, wb: number) {
    this.f = page.f;
    this.u = page.u;
    this.s = page.s;
    this.fb = fb;
    this.wb = wb;
  }

  /** @internal Points the endpoint at its block in a (new) page. */
  attach(page: Page, fb: number, wb: number): void {
    this.f = page.f;
    this.u = page.u;
    this.s = page.s;
    this.fb = fb;
    this.wb = wb;
  }

  /** @internal Sets the initial values of a zeroed block. */
  init(): void {
    const f = this.f;
    const s = this.s;
    const fb = this.fb;
    const wb = this.wb;
${initializers(endpoint.placed).join('\n')}
  }

  /** The address as four 32-bit words (IPv4-mapped for IPv4): a view of the record. */
  get addr(): Uint32Array {
    const at = this.wb + ADDR;
    return this.u.subarray(at, at + 4);
  }

  /** Word i (0-3) of the address, without building the addr view. */
  addressWord(i: number): number {
    return this.u[this.wb + ADDR + i];
  }

  /** The address as text (formatAddress), without building the addr view. */
  ipText(version: 4 | 6): string {
    return version === 4 ? ipv4Text(this.u[this.wb + ADDR + 3]) : formatAddress(this.addr, version);
  }

  /** @internal Copies an address in the decoder's four-word form. */
  setAddress(words: ArrayLike<number>): void {
    const u = this.u;
    const at = this.wb + ADDR;
    u[at] = words[0];
    u[at + 1] = words[1];
    u[at + 2] = words[2];
    u[at + 3] = words[3];
  }

${accessors(endpoint.placed).join('\n')}
}

export class Conversation {
  /**
   * Per-detector state, indexed by the detector's position in the engine. Created with one slot per
   * detector: an empty array's first store at index n would reserve room for n + 16.
   */
  scratch: unknown[];
  readonly client: Endpoint;
  readonly server: Endpoint;
  /** @internal The record: its page, its index there, the page's views and the record's base indexes. */
  page: Page;
  record = 0;
  f: Float64Array;
  u: Uint32Array;
  s: Int32Array;
  fb = 0;
  wb = 0;

  constructor(scratchSlots = 0) {
    this.scratch = new Array(scratchSlots);
    const page = allocate(this);
    this.page = page;
    this.f = page.f;
    this.u = page.u;
    this.s = page.s;
    const fb = (this.fb = this.record * RECORD_F64);
    const wb = (this.wb = this.record * RECORD_WORDS);
    this.client = new Endpoint(page, fb + CLIENT_F64, wb + CLIENT_WORDS);
    this.server = new Endpoint(page, fb + SERVER_F64, wb + SERVER_WORDS);
    this.init();
    this.client.init();
    this.server.init();
  }

  /** @internal Points the conversation and its endpoints at its record in \`page\` (after a move). */
  attach(page: Page): void {
    this.page = page;
    this.f = page.f;
    this.u = page.u;
    this.s = page.s;
    const fb = (this.fb = this.record * RECORD_F64);
    const wb = (this.wb = this.record * RECORD_WORDS);
    this.client.attach(page, fb + CLIENT_F64, wb + CLIENT_WORDS);
    this.server.attach(page, fb + SERVER_F64, wb + SERVER_WORDS);
  }

  /**
   * @internal The tracker is done with this conversation (it was finalised). Its fields stay
   * readable and unchanged for whoever still holds it; its page may now be compacted, unless
   * \`compact\` is false (the tracker is releasing everything: moving records would be wasted).
   */
  release(compact = true): void {
    const page = this.page;
    if (page.owners[this.record] !== this) return;
    page.owners[this.record] = null;
    page.live--;
    if (compact && page !== current && page.live * 4 < RECORDS_PER_PAGE * 3) compactPage(page);
  }

  private init(): void {
    const f = this.f;
    const s = this.s;
    const fb = this.fb;
    const wb = this.wb;
${initializers(conv.placed).join('\n')}
  }

  get closed(): boolean {
    return this.closeTime >= 0;
  }

  get established(): boolean {
    return this.establishedTime >= 0;
  }

  endpoint(side: Side.Client | Side.Server): Endpoint {
    return side === Side.Client ? this.client : this.server;
  }

${accessors(conv.placed).join('\n')}
}
`;

writeFileSync(OUTPUT, text);
process.stdout.write(`${OUTPUT}: record ${record} bytes (conversation ${conv.bytes}, endpoint ${endpoint.bytes})\n`);
