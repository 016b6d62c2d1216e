import { formatAddress, ipv4Text } from '../decode/address.js';
import type { CloseKind, Conversation, Endpoint, Side } from './conversation.js';
import { CLOSE_KIND_KEYS, type ConversationFacts, type ConversationSummary, type EndpointFacts, summarize } from './summary.js';

/*
 * Finished conversations kept for the report, up to hundreds of thousands of them. As summary
 * objects they cost about 800 bytes each on the heap (a dozen small objects, boxed doubles); here
 * each is the handful of facts a summary is made of, in typed-array chunks (about 280 bytes), and
 * the summaries are built once, when the report is made. Every conversation is still listed.
 */

/** Doubles per conversation: its own, then the client's (at SIDE_F64), then the server's. */
const enum F {
  Id, Start, End, FirstFrame, LastFrame, EstablishedTime, LastSynTime, CloseTime, LongestIdle, PreviousId,
  PreviousCloseTime, Sides,
}
const enum SideF {
  Bytes, PayloadBytes, FinTime, Count,
}
/** 32-bit words per conversation: its own, then each side's. */
const enum W {
  Input, IpVersion, Midstream, CloseKind, FirstFinBy, Sides,
}
const enum SideW {
  Packets, Retransmissions, KeepAlives, ZeroWindows, DupAcks, Rsts, Mss, WindowScale, SackPermitted, Timestamps,
  TtlFirst, Port, Addr, Count = Addr + 4,
}
const F64 = F.Sides + 2 * SideF.Count;
const WORDS = W.Sides + 2 * SideW.Count;

const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;

const CLOSE_KINDS = Object.keys(CLOSE_KIND_KEYS) as CloseKind[];
CLOSE_KINDS.sort((a, b) => CLOSE_KIND_KEYS[a] - CLOSE_KIND_KEYS[b]);

class Chunk {
  readonly f = new Float64Array(CHUNK * F64);
  readonly s = new Int32Array(CHUNK * WORDS);
}

/** One side of a stored conversation, read through the same names as a live Endpoint. */
class StoredEndpoint implements EndpointFacts {
  f: Float64Array;
  s: Int32Array;
  fb = 0;
  wb = 0;
  constructor(chunk: Chunk) {
    this.f = chunk.f;
    this.s = chunk.s;
  }
  get bytes(): number { return this.f[this.fb + SideF.Bytes]; }
  get payloadBytes(): number { return this.f[this.fb + SideF.PayloadBytes]; }
  get finTime(): number { return this.f[this.fb + SideF.FinTime]; }
  // Counters are u32 in the live record; stored as i32 they would turn negative past 2^31.
  get packets(): number { return this.s[this.wb + SideW.Packets] >>> 0; }
  get retransmissions(): number { return this.s[this.wb + SideW.Retransmissions] >>> 0; }
  get keepAlives(): number { return this.s[this.wb + SideW.KeepAlives] >>> 0; }
  get zeroWindows(): number { return this.s[this.wb + SideW.ZeroWindows] >>> 0; }
  get dupAcks(): number { return this.s[this.wb + SideW.DupAcks] >>> 0; }
  get rsts(): number { return this.s[this.wb + SideW.Rsts] >>> 0; }
  get port(): number { return this.s[this.wb + SideW.Port] >>> 0; }
  get mss(): number { return this.s[this.wb + SideW.Mss]; }
  get windowScale(): number { return this.s[this.wb + SideW.WindowScale]; }
  get sackPermitted(): boolean { return this.s[this.wb + SideW.SackPermitted] !== 0; }
  get timestamps(): boolean { return this.s[this.wb + SideW.Timestamps] !== 0; }
  get ttlFirst(): number { return this.s[this.wb + SideW.TtlFirst]; }
  addressWord(i: number): number {
    return this.s[this.wb + SideW.Addr + i] >>> 0;
  }
  ipText(version: 4 | 6): string {
    if (version === 4) return ipv4Text(this.addressWord(3));
    return formatAddress(Uint32Array.from({ length: 4 }, (_, i) => this.addressWord(i)), version);
  }
}

/** A stored conversation, read through the same names as a live Conversation. */
class StoredConversation implements ConversationFacts {
  f: Float64Array;
  s: Int32Array;
  fb = 0;
  wb = 0;
  readonly client: StoredEndpoint;
  readonly server: StoredEndpoint;
  constructor(chunk: Chunk) {
    this.f = chunk.f;
    this.s = chunk.s;
    this.client = new StoredEndpoint(chunk);
    this.server = new StoredEndpoint(chunk);
  }
  /** Points this view at stored conversation `index` of `chunk`. */
  at(chunk: Chunk, index: number): this {
    this.f = this.client.f = this.server.f = chunk.f;
    this.s = this.client.s = this.server.s = chunk.s;
    this.fb = index * F64;
    this.wb = index * WORDS;
    this.client.fb = this.fb + F.Sides;
    this.server.fb = this.fb + F.Sides + SideF.Count;
    this.client.wb = this.wb + W.Sides;
    this.server.wb = this.wb + W.Sides + SideW.Count;
    return this;
  }
  get id(): number { return this.f[this.fb + F.Id]; }
  get start(): number { return this.f[this.fb + F.Start]; }
  get end(): number { return this.f[this.fb + F.End]; }
  get firstFrame(): number { return this.f[this.fb + F.FirstFrame]; }
  get lastFrame(): number { return this.f[this.fb + F.LastFrame]; }
  get establishedTime(): number { return this.f[this.fb + F.EstablishedTime]; }
  get lastSynTime(): number { return this.f[this.fb + F.LastSynTime]; }
  get closeTime(): number { return this.f[this.fb + F.CloseTime]; }
  get longestIdle(): number { return this.f[this.fb + F.LongestIdle]; }
  get previousId(): number { return this.f[this.fb + F.PreviousId]; }
  get previousCloseTime(): number { return this.f[this.fb + F.PreviousCloseTime]; }
  get input(): number { return this.s[this.wb + W.Input]; }
  get ipVersion(): 4 | 6 { return this.s[this.wb + W.IpVersion] as 4 | 6; }
  get midstream(): boolean { return this.s[this.wb + W.Midstream] !== 0; }
  get closeKind(): CloseKind { return CLOSE_KINDS[this.s[this.wb + W.CloseKind]]; }
  get firstFinBy(): Side { return this.s[this.wb + W.FirstFinBy] as Side; }
}

function storeEndpoint(e: Endpoint, f: Float64Array, fb: number, s: Int32Array, wb: number): void {
  f[fb + SideF.Bytes] = e.bytes;
  f[fb + SideF.PayloadBytes] = e.payloadBytes;
  f[fb + SideF.FinTime] = e.finTime;
  s[wb + SideW.Packets] = e.packets;
  s[wb + SideW.Retransmissions] = e.retransmissions;
  s[wb + SideW.KeepAlives] = e.keepAlives;
  s[wb + SideW.ZeroWindows] = e.zeroWindows;
  s[wb + SideW.DupAcks] = e.dupAcks;
  s[wb + SideW.Rsts] = e.rsts;
  s[wb + SideW.Mss] = e.mss;
  s[wb + SideW.WindowScale] = e.windowScale;
  s[wb + SideW.SackPermitted] = e.sackPermitted ? 1 : 0;
  s[wb + SideW.Timestamps] = e.timestamps ? 1 : 0;
  s[wb + SideW.TtlFirst] = e.ttlFirst;
  s[wb + SideW.Port] = e.port;
  for (let i = 0; i < 4; i++) s[wb + SideW.Addr + i] = e.addressWord(i);
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
    const f = chunk.f;
    const s = chunk.s;
    const fb = index * F64;
    const wb = index * WORDS;
    f[fb + F.Id] = conv.id;
    f[fb + F.Start] = conv.start;
    f[fb + F.End] = conv.end;
    f[fb + F.FirstFrame] = conv.firstFrame;
    f[fb + F.LastFrame] = conv.lastFrame;
    f[fb + F.EstablishedTime] = conv.establishedTime;
    f[fb + F.LastSynTime] = conv.lastSynTime;
    f[fb + F.CloseTime] = conv.closeTime;
    f[fb + F.LongestIdle] = conv.longestIdle;
    f[fb + F.PreviousId] = conv.previousId;
    f[fb + F.PreviousCloseTime] = conv.previousCloseTime;
    s[wb + W.Input] = conv.input;
    s[wb + W.IpVersion] = conv.ipVersion;
    s[wb + W.Midstream] = conv.midstream ? 1 : 0;
    s[wb + W.CloseKind] = CLOSE_KIND_KEYS[conv.closeKind];
    s[wb + W.FirstFinBy] = conv.firstFinBy;
    storeEndpoint(conv.client, f, fb + F.Sides, s, wb + W.Sides);
    storeEndpoint(conv.server, f, fb + F.Sides + SideF.Count, s, wb + W.Sides + SideW.Count);
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
