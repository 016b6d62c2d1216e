import { formatAddress, ipv4Text } from '../decode/address.js';
import type { CloseKind, Conversation, Endpoint, Side } from './conversation.js';
import { CLOSE_KIND_KEYS, type ConversationFacts, type ConversationSummary, type EndpointFacts, summarize } from './summary.js';

/*
 * Finished conversations kept for the report, up to hundreds of thousands of them. As summary
 * objects they cost about 800 bytes each on the heap (a dozen small objects, boxed doubles); here
 * each is the handful of facts a summary is made of, in typed-array chunks (about 280 bytes), and
 * the summaries are built once, when the report is made.
 *
 * Every conversation is still listed up to maxStoredConversations (250,000 by default), past which
 * they are only counted (closeKinds, conversationsNotListed): the "summarised and, past a
 * configurable count, aggregated". The default count is kept rather than lowered: a lower one would
 * drop conversations from default reports of ordinary captures to save memory that a compact form
 * saves without losing any.
 *
 * The facts are read back through views with the same property names as a live Conversation and
 * Endpoint, so one summarize() serves both.
 */

type Fields<T> = readonly (keyof T & string)[];

/** Facts per kind of slot: doubles, unsigned and signed 32-bit words, flags (0 or 1 in a word). */
interface Layout<T> {
  f64: Fields<T>;
  u32: Fields<T>;
  i32: Fields<T>;
  flags: Fields<T>;
}

const CONVERSATION: Layout<ConversationFacts> = {
  f64: ['id', 'start', 'end', 'firstFrame', 'lastFrame', 'establishedTime', 'lastSynTime', 'closeTime', 'longestIdle',
    'previousId', 'previousCloseTime'],
  u32: [],
  i32: ['input', 'ipVersion', 'firstFinBy'],
  flags: ['midstream'],
};

const ENDPOINT: Layout<EndpointFacts> = {
  f64: ['bytes', 'payloadBytes', 'finTime'],
  u32: ['packets', 'retransmissions', 'keepAlives', 'zeroWindows', 'dupAcks', 'rsts', 'port'],
  i32: ['mss', 'windowScale', 'ttlFirst'],
  flags: ['sackPermitted', 'timestamps'],
};

/** Word offsets in a block: u32 facts, then i32, then flags; then, for a conversation, its close kind. */
function wordsOf<T>(layout: Layout<T>): number {
  return layout.u32.length + layout.i32.length + layout.flags.length;
}

const CLOSE_KIND_WORD = wordsOf(CONVERSATION);
/** Four address words after an endpoint's facts. */
const ADDR_WORD = wordsOf(ENDPOINT);
const CONVERSATION_WORDS = CLOSE_KIND_WORD + 1;
const ENDPOINT_WORDS = ADDR_WORD + 4;
const F64 = CONVERSATION.f64.length + 2 * ENDPOINT.f64.length;
const WORDS = CONVERSATION_WORDS + 2 * ENDPOINT_WORDS;

const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;

const CLOSE_KINDS = (Object.keys(CLOSE_KIND_KEYS) as CloseKind[]).sort((a, b) => CLOSE_KIND_KEYS[a] - CLOSE_KIND_KEYS[b]);

class Chunk {
  readonly f = new Float64Array(CHUNK * F64);
  readonly u = new Uint32Array(CHUNK * WORDS);
  readonly s = new Int32Array(this.u.buffer);
}

/** A view of one stored block: its chunk and where its doubles and words start. */
class BlockView {
  f: Float64Array;
  u: Uint32Array;
  s: Int32Array;
  fb = 0;
  wb = 0;
  constructor(chunk: Chunk) {
    this.f = chunk.f;
    this.u = chunk.u;
    this.s = chunk.s;
  }
  point(chunk: Chunk, fb: number, wb: number): void {
    this.f = chunk.f;
    this.u = chunk.u;
    this.s = chunk.s;
    this.fb = fb;
    this.wb = wb;
  }
}

type Store<T> = (from: T, f: Float64Array, u: Uint32Array, s: Int32Array, fb: number, wb: number) => void;

/**
 * Compiles, once, a function copying `layout`'s facts of an object into a block. A loop over the
 * names would read each property by computed name: a slow lookup per fact and conversation, a
 * twentieth of the whole run at 200k flows. The names are this file's constants.
 */
function compileStore<T>(layout: Layout<T>): Store<T> {
  let w = 0;
  const body = [
    ...layout.f64.map((name, i) => `f[fb + ${i}] = o.${name};`),
    ...layout.u32.map((name) => `u[wb + ${w++}] = o.${name};`),
    ...layout.i32.map((name) => `s[wb + ${w++}] = o.${name};`),
    ...layout.flags.map((name) => `u[wb + ${w++}] = o.${name} ? 1 : 0;`),
  ];
  return new Function('o', 'f', 'u', 's', 'fb', 'wb', body.join('\n')) as Store<T>;
}

const storeConversationFacts = compileStore(CONVERSATION);
const storeEndpointFacts = compileStore(ENDPOINT);

/** Defines a getter on `view`'s prototype for each of `layout`'s facts. */
function defineReaders<T>(view: { prototype: BlockView }, layout: Layout<T>): void {
  const define = (name: string, get: (this: BlockView) => unknown): void => {
    Object.defineProperty(view.prototype, name, { get, configurable: true });
  };
  layout.f64.forEach((name, i) => define(name, function () { return this.f[this.fb + i]; }));
  let w = 0;
  for (const name of layout.u32) {
    const at = w++;
    define(name, function () { return this.u[this.wb + at]; });
  }
  for (const name of layout.i32) {
    const at = w++;
    define(name, function () { return this.s[this.wb + at]; });
  }
  for (const name of layout.flags) {
    const at = w++;
    define(name, function () { return this.u[this.wb + at] !== 0; });
  }
}

/** One side of a stored conversation. Its facts are getters defined from ENDPOINT below. */
class StoredEndpoint extends BlockView implements EndpointFacts {
  declare readonly bytes: number;
  declare readonly payloadBytes: number;
  declare readonly finTime: number;
  declare readonly packets: number;
  declare readonly retransmissions: number;
  declare readonly keepAlives: number;
  declare readonly zeroWindows: number;
  declare readonly dupAcks: number;
  declare readonly rsts: number;
  declare readonly port: number;
  declare readonly mss: number;
  declare readonly windowScale: number;
  declare readonly ttlFirst: number;
  declare readonly sackPermitted: boolean;
  declare readonly timestamps: boolean;

  addressWord(i: number): number {
    return this.u[this.wb + ADDR_WORD + i];
  }

  ipText(version: 4 | 6): string {
    if (version === 4) return ipv4Text(this.addressWord(3));
    return formatAddress(this.u.subarray(this.wb + ADDR_WORD, this.wb + ADDR_WORD + 4), version);
  }
}
defineReaders(StoredEndpoint, ENDPOINT);

/** A stored conversation. Its facts are getters defined from CONVERSATION below. */
class StoredConversation extends BlockView implements ConversationFacts {
  declare readonly id: number;
  declare readonly start: number;
  declare readonly end: number;
  declare readonly firstFrame: number;
  declare readonly lastFrame: number;
  declare readonly establishedTime: number;
  declare readonly lastSynTime: number;
  declare readonly closeTime: number;
  declare readonly longestIdle: number;
  declare readonly previousId: number;
  declare readonly previousCloseTime: number;
  declare readonly input: number;
  declare readonly ipVersion: 4 | 6;
  declare readonly firstFinBy: Side;
  declare readonly midstream: boolean;
  readonly client: StoredEndpoint;
  readonly server: StoredEndpoint;

  constructor(chunk: Chunk) {
    super(chunk);
    this.client = new StoredEndpoint(chunk);
    this.server = new StoredEndpoint(chunk);
  }

  /** Points this view at stored conversation `index` of `chunk`. */
  at(chunk: Chunk, index: number): this {
    const fb = index * F64;
    const wb = index * WORDS;
    this.point(chunk, fb, wb);
    this.client.point(chunk, fb + CONVERSATION.f64.length, wb + CONVERSATION_WORDS);
    this.server.point(chunk, fb + CONVERSATION.f64.length + ENDPOINT.f64.length, wb + CONVERSATION_WORDS + ENDPOINT_WORDS);
    return this;
  }

  get closeKind(): CloseKind {
    return CLOSE_KINDS[this.u[this.wb + CLOSE_KIND_WORD]];
  }
}
defineReaders(StoredConversation, CONVERSATION);

function storeEndpoint(e: Endpoint, chunk: Chunk, fb: number, wb: number): void {
  storeEndpointFacts(e, chunk.f, chunk.u, chunk.s, fb, wb);
  for (let i = 0; i < 4; i++) chunk.u[wb + ADDR_WORD + i] = e.addressWord(i);
}

/** Finished conversations, kept compactly until their summaries are wanted. */
export class SummaryStore {
  private readonly chunks: Chunk[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(conv: Conversation): void {
    const index = this.count & (CHUNK - 1);
    if (index === 0) this.chunks.push(new Chunk());
    const chunk = this.chunks[this.chunks.length - 1];
    this.count++;
    const fb = index * F64;
    const wb = index * WORDS;
    storeConversationFacts(conv, chunk.f, chunk.u, chunk.s, fb, wb);
    chunk.u[wb + CLOSE_KIND_WORD] = CLOSE_KIND_KEYS[conv.closeKind];
    storeEndpoint(conv.client, chunk, fb + CONVERSATION.f64.length, wb + CONVERSATION_WORDS);
    storeEndpoint(conv.server, chunk, fb + CONVERSATION.f64.length + ENDPOINT.f64.length, wb + CONVERSATION_WORDS + ENDPOINT_WORDS);
  }

  /** The summaries, in the order the conversations were added. */
  summaries(): ConversationSummary[] {
    const out: ConversationSummary[] = new Array(this.count);
    if (this.count === 0) return out;
    const view = new StoredConversation(this.chunks[0]);
    for (let i = 0; i < this.count; i++) {
      out[i] = summarize(view.at(this.chunks[i >> CHUNK_BITS], i & (CHUNK - 1)));
    }
    return out;
  }
}
