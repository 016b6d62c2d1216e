import type { Conversation } from '../flow/conversation.js';
import type { Segment } from '../flow/segment.js';
import { type ConversationSummary, summarize } from '../flow/summary.js';
import type { FlowObserver } from '../flow/tracker.js';
import { FilterError, parseAddress } from './filter.js';

/** One packet of a conversation as the ladder shows it, sequence numbers relative to each ISN. */
export interface LadderRow {
  frame: number;
  time: number;
  fromClient: boolean;
  flags: number;
  relSeq: number;
  relAck: number | null;
  payloadLength: number;
  window: number;
  notes: number;
  idleBefore: number;
}

/** Which conversation to show: its id, or its tuple as `client:port-server:port` (either order). */
export type ConversationSelector = { id: number } | { a: { ip: Uint32Array; port: number }; b: { ip: Uint32Array; port: number } };

export function parseSelector(text: string): ConversationSelector {
  if (/^#?\d+$/.test(text)) return { id: Number(text.replace('#', '')) };
  const match = /^\[?([^\]]+?)\]?:(\d+)-\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  if (!match) throw new FilterError(`expected a conversation id or client:port-server:port, got "${text}"`);
  return {
    a: { ip: parseAddress(match[1]), port: Number(match[2]) },
    b: { ip: parseAddress(match[3]), port: Number(match[4]) },
  };
}

function endpointIs(conv: Conversation, which: 'client' | 'server', ep: { ip: Uint32Array; port: number }): boolean {
  const e = conv[which];
  return e.port === ep.port && e.addr.every((w, i) => w === ep.ip[i]);
}

/**
 * Records the segments of the selected conversation(s) as the tracker saw them. A tuple can have
 * several conversations (port reuse): all of them are recorded, each with its summary.
 */
export class LadderRecorder implements FlowObserver {
  readonly ladders = new Map<number, { rows: LadderRow[]; summary: ConversationSummary | null; truncated: boolean }>();

  constructor(
    private readonly selector: ConversationSelector,
    private readonly maxRows = 200_000,
  ) {}

  private selects(conv: Conversation): boolean {
    const s = this.selector;
    if ('id' in s) return conv.id === s.id;
    return (endpointIs(conv, 'client', s.a) && endpointIs(conv, 'server', s.b)) ||
      (endpointIs(conv, 'client', s.b) && endpointIs(conv, 'server', s.a));
  }

  onSegment(conv: Conversation, seg: Segment): void {
    if (!this.selects(conv)) return;
    let ladder = this.ladders.get(conv.id);
    if (ladder === undefined) {
      ladder = { rows: [], summary: null, truncated: false };
      this.ladders.set(conv.id, ladder);
    }
    if (ladder.rows.length >= this.maxRows) {
      ladder.truncated = true;
      return;
    }
    const sender = seg.fromClient ? conv.client : conv.server;
    const receiver = seg.fromClient ? conv.server : conv.client;
    ladder.rows.push({
      frame: seg.frame,
      time: seg.time,
      fromClient: seg.fromClient,
      flags: seg.flags,
      relSeq: sender.isnKnown ? (seg.seq - sender.isn) >>> 0 : seg.seq,
      relAck: (seg.flags & 0x10) !== 0 ? (receiver.isnKnown ? (seg.ack - receiver.isn) >>> 0 : seg.ack) : null,
      payloadLength: seg.payloadLength,
      window: seg.window,
      notes: seg.notes,
      idleBefore: seg.idleBefore,
    });
  }

  onFinalize(conv: Conversation): void {
    const ladder = this.ladders.get(conv.id);
    if (ladder !== undefined) ladder.summary = summarize(conv);
  }
}
