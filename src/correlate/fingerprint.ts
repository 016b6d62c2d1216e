import type { Conversation } from '../flow/conversation.js';
import type { Segment } from '../flow/segment.js';
import { type ConversationSummary, summarize } from '../flow/summary.js';
import type { FlowObserver } from '../flow/tracker.js';

/** Flag bits of PacketLog.bits. */
export const FROM_CLIENT = 1;
export const HAS_TIMESTAMP = 2;

/**
 * The packets of one conversation as the correlator keeps them: one typed array per field, grown by
 * doubling, so a million packets cost ~41 MB (up to twice that while growing) rather than a
 * million objects.
 */
export class PacketLog {
  length = 0;
  frame = new Uint32Array(16);
  time = new Float64Array(16);
  seq = new Uint32Array(16);
  ack = new Uint32Array(16);
  len = new Uint32Array(16);
  window = new Uint32Array(16);
  ipId = new Int32Array(16);
  hash = new Uint32Array(16);
  flags = new Uint8Array(16);
  ttl = new Uint8Array(16);
  bits = new Uint8Array(16);
  notes = new Uint16Array(16);

  fromClient(i: number): boolean {
    return (this.bits[i] & FROM_CLIENT) !== 0;
  }

  hasTimestamp(i: number): boolean {
    return (this.bits[i] & HAS_TIMESTAMP) !== 0;
  }

  push(seg: Segment): void {
    if (this.length === this.frame.length) this.grow();
    const i = this.length++;
    this.frame[i] = seg.frame;
    this.time[i] = seg.time;
    this.seq[i] = seg.seq;
    this.ack[i] = seg.ack;
    this.len[i] = seg.payloadLength;
    this.window[i] = seg.window > 0xffffffff ? 0xffffffff : seg.window;
    this.ipId[i] = seg.ipId;
    this.hash[i] = seg.payloadHash;
    this.flags[i] = seg.flags;
    this.ttl[i] = seg.ttl;
    this.bits[i] = (seg.fromClient ? FROM_CLIENT : 0) | (seg.hasTimestamp ? HAS_TIMESTAMP : 0);
    this.notes[i] = seg.notes;
  }

  private grow(): void {
    const size = this.frame.length * 2;
    const grow = <T extends Uint32Array | Float64Array | Int32Array | Uint16Array | Uint8Array>(old: T, make: new (n: number) => T): T => {
      const next = new make(size);
      next.set(old);
      return next;
    };
    this.frame = grow(this.frame, Uint32Array);
    this.time = grow(this.time, Float64Array);
    this.seq = grow(this.seq, Uint32Array);
    this.ack = grow(this.ack, Uint32Array);
    this.len = grow(this.len, Uint32Array);
    this.window = grow(this.window, Uint32Array);
    this.ipId = grow(this.ipId, Int32Array);
    this.hash = grow(this.hash, Uint32Array);
    this.flags = grow(this.flags, Uint8Array);
    this.ttl = grow(this.ttl, Uint8Array);
    this.bits = grow(this.bits, Uint8Array);
    this.notes = grow(this.notes, Uint16Array);
  }
}

/** One conversation of one capture, with its packets (up to the caps). */
export interface ConvPrint {
  /** Position in CaptureFingerprints.conversations. */
  index: number;
  /** The conversation's summary, id as in this capture's own analysis. */
  summary: ConversationSummary;
  /** Initial sequence numbers, when the capture saw the SYN / SYN-ACK. */
  isn: { client: number | null; server: number | null };
  packets: PacketLog;
  /** Packets not recorded because a cap was reached (counted in the summary all the same). */
  unrecorded: number;
  /** Time of the last recorded packet when packets went unrecorded; Infinity otherwise. */
  recordedUntil: number;
}

export interface CaptureFingerprints {
  path: string;
  conversations: ConvPrint[];
  /** Capture span (first and last packet), null without packets. */
  start: number | null;
  end: number | null;
  /** Conversations whose packets were not recorded at all (the conversation cap). */
  conversationsNotRecorded: number;
  packetsNotRecorded: number;
}

export interface CollectorLimits {
  /** Packets recorded per conversation. */
  maxPacketsPerConversation: number;
  /** Packets recorded per capture, over all conversations. */
  maxPackets: number;
  /** Conversations recorded per capture. */
  maxConversations: number;
}

export const DEFAULT_COLLECTOR_LIMITS: CollectorLimits = {
  maxPacketsPerConversation: 200_000,
  maxPackets: 2_000_000,
  maxConversations: 200_000,
};

/**
 * A FlowObserver that keeps per-conversation packet fingerprints (seq, ack, length, flags, TTL,
 * IP ID, window, options, payload hash) for correlating two captures, within fixed memory caps.
 */
export class FingerprintCollector implements FlowObserver {
  private readonly live = new Map<Conversation, ConvPrint>();
  private readonly done: ConvPrint[] = [];
  private recorded = 0;
  private conversationsNotRecorded = 0;
  private packetsNotRecorded = 0;
  private readonly limits: CollectorLimits;

  constructor(limits: Partial<CollectorLimits> = {}) {
    this.limits = { ...DEFAULT_COLLECTOR_LIMITS, ...limits };
    // Pairing packs a packet's index into 21 bits.
    this.limits.maxPacketsPerConversation = Math.min(this.limits.maxPacketsPerConversation, 2_000_000);
  }

  onSegment(conv: Conversation, seg: Segment): void {
    let print = this.live.get(conv);
    if (print === undefined) {
      if (this.live.size + this.done.length >= this.limits.maxConversations) {
        this.packetsNotRecorded++;
        return;
      }
      print = {
        index: -1,
        summary: undefined as unknown as ConversationSummary,
        isn: { client: null, server: null },
        packets: new PacketLog(),
        unrecorded: 0,
        recordedUntil: Infinity,
      };
      this.live.set(conv, print);
    }
    if (print.packets.length >= this.limits.maxPacketsPerConversation || this.recorded >= this.limits.maxPackets) {
      if (print.unrecorded === 0) print.recordedUntil = print.packets.length > 0 ? print.packets.time[print.packets.length - 1] : seg.time;
      print.unrecorded++;
      this.packetsNotRecorded++;
      return;
    }
    print.packets.push(seg);
    this.recorded++;
  }

  onFinalize(conv: Conversation): void {
    const print = this.live.get(conv);
    if (print === undefined) {
      this.conversationsNotRecorded++;
      return;
    }
    this.live.delete(conv);
    print.summary = summarize(conv);
    print.isn.client = conv.client.isnKnown ? conv.client.isn : null;
    print.isn.server = conv.server.isnKnown ? conv.server.isn : null;
    this.done.push(print);
  }

  /** After the session finished: every conversation, in order of first packet. */
  result(path: string, start: number | null, end: number | null): CaptureFingerprints {
    const conversations = this.done.sort((a, b) => a.summary.id - b.summary.id);
    conversations.forEach((c, i) => {
      c.index = i;
    });
    return {
      path,
      conversations,
      start,
      end,
      conversationsNotRecorded: this.conversationsNotRecorded,
      packetsNotRecorded: this.packetsNotRecorded,
    };
  }
}
