import type { Finding } from '../detect/finding.js';
import type { Conversation, Endpoint } from '../flow/conversation.js';
import { Note, type Segment } from '../flow/segment.js';
import { seqDiff } from '../flow/seq.js';
import type { LadderRow } from './ladder.js';
import type { SessionObserver } from './session.js';

/**
 * What the HTML report draws, gathered while the capture is read (the reporter never reads packets
 * and never diagnoses; it draws these numbers next to the detectors' findings):
 *
 * - per capture, counts per second: new connections, RST segments, retransmissions, and the
 *   conversations open during each second;
 * - per conversation, its segments as time-sequence points (Stevens graph and ladder), so that the
 *   conversations the detectors flag can be drawn once the findings are known.
 *
 * Both are bounded whatever the capture's size: per-second counts coarsen (2 s, 4 s, ...) past
 * MAX_BINS, a conversation keeps at most maxPointsPerConversation points (thinning plain data and
 * ACKs first, then retransmissions and probes, never the head of the conversation), and all
 * recordings together stay under maxPoints and maxRecordings: past them, finished conversations are
 * dropped (those no finding names so far and the least troubled first) and, if that is not enough,
 * conversations are recorded only from their first trouble (retransmission, zero window, reset...).
 * Which conversations are flagged is known only at the end; the report draws those.
 */

export interface TimelineOptions {
  /** The inputs are one capture split in files (analyze --merge): one timeline for all of them. */
  merge: boolean;
  maxPointsPerConversation: number;
  /** Points kept across all conversations (live and finished). */
  maxPoints: number;
  /** Conversations with points kept (each costs a few hundred bytes even when short). */
  maxRecordings: number;
}

export const DEFAULT_TIMELINE_OPTIONS: TimelineOptions = {
  merge: false,
  maxPointsPerConversation: 3000,
  maxPoints: 250_000,
  maxRecordings: 40_000,
};

/** Bins per capture before their width doubles. */
const MAX_BINS = 1 << 15;

/** Counts per time bin of one capture (or of merged inputs). */
export interface CaptureTimeline {
  /** Indexes into the report's inputs this timeline covers. */
  inputs: number[];
  /** Start of the first bin, seconds since the epoch; bins are binSeconds wide and contiguous. */
  origin: number;
  binSeconds: number;
  /** Conversations that began with a SYN (connection attempts), by the bin of their first packet. */
  newConnections: number[];
  /** Segments carrying RST. */
  resets: number[];
  /** Segments the tracker marked as retransmissions (SYN retransmissions included). */
  retransmissions: number[];
  /**
   * Conversations open at some time during the bin: from their first packet to their close (both
   * FINs or the first RST), or to their last packet when they were evicted or superseded, or to the
   * end of the capture when the capture ends with them still open.
   */
  open: number[];
}

/** One recorded segment: the ladder's row plus its position among the conversation's packets. */
export interface SequencePoint extends LadderRow {
  /** 0-based index of the packet within its conversation (gaps mean packets not recorded). */
  index: number;
}

export interface SequenceRecording {
  /** Conversation id as the report numbers it. */
  id: number;
  /** Packets in the conversation. */
  packets: number;
  /** Recorded packets, in capture order. */
  points: SequencePoint[];
  /** Whether the sequence numbers are relative to each side's ISN (false: to the first seen). */
  fromIsn: { client: boolean; server: boolean };
  /**
   * About one in how many packets of each kind was kept past the conversation's first packets
   * (1: all): plain data and ACKs; retransmissions, probes, duplicate ACKs and other trouble;
   * SYN, FIN, RST and window changes.
   */
  sampling: { plain: number; trouble: number; marks: number };
}

export interface TimelineData {
  timelines: CaptureTimeline[];
  /** Recorded points of a flagged conversation, or null when none were kept. */
  sequence(id: number): SequenceRecording | null;
  /** Whether some conversations' points were dropped to stay within the bounds. */
  bounded: boolean;
}

const F_INDEX = 0;
const F_FRAME = 1;
const F_TIME = 2;
/** Flags byte, plus 256 when sent by the client. */
const F_DIR_FLAGS = 3;
const F_SEQ = 4;
/** NaN when the segment carries no ACK. */
const F_ACK = 5;
const F_LEN = 6;
const F_WINDOW = 7;
const F_NOTES = 8;
const F_IDLE = 9;
const FIELDS = 10;

const SYN = 0x02;
const ACK = 0x10;

/** Notes that make a conversation worth keeping when memory is short. */
const TROUBLE = Note.Retransmission | Note.SynRetransmission | Note.ZeroWindow | Note.ZeroWindowProbe |
  Note.DupAck | Note.OutOfOrder | Note.AckOfPreviousConversation | Note.AfterReset | Note.Reset | Note.KeepAlive |
  Note.PreviousNotCaptured | Note.AckedUnseen;
/** Points never thinned before everything else was (they mark where things change). */
const CRITICAL = Note.Reset | Note.Fin | Note.ZeroWindow | Note.WindowReopened | Note.AckOfPreviousConversation;
/** Conversation packets always kept at the start of a recording (the handshake and first exchange). */
const HEAD = 12;

function levelOf(notes: number, flags: number): 0 | 1 | 2 {
  if ((notes & CRITICAL) !== 0 || (flags & SYN) !== 0) return 2;
  if ((notes & TROUBLE) !== 0) return 1;
  return 0;
}

/** A 32-bit sequence space followed as a growing number (relative to a base, across wraps). */
class Stream {
  known = false;
  fromIsn = false;
  private refRaw = 0;
  private refRel = 0;

  start(raw: number, rel: number, fromIsn: boolean): void {
    this.known = true;
    this.fromIsn = fromIsn;
    this.refRaw = raw;
    this.refRel = rel;
  }

  relative(raw: number): number {
    const rel = this.refRel + seqDiff(raw, this.refRaw);
    if (rel > this.refRel) {
      this.refRaw = raw;
      this.refRel = rel;
    }
    return rel;
  }
}

class Recording {
  data: Float64Array;
  count = 0;
  /** Points seen at each level since the last thinning, and the stride each level is sampled at. */
  private readonly seen = [0, 0, 0];
  private readonly stride = [1, 1, 1];
  troubles = 0;
  flagged = false;
  packets = 0;
  readonly client = new Stream();
  readonly server = new Stream();

  constructor(
    public id: number,
    capacity: number,
  ) {
    this.data = new Float64Array(capacity * FIELDS);
  }

  get score(): number {
    return (this.flagged ? 1e12 : 0) + this.troubles * 1e4 + Math.min(this.packets, 9999);
  }

  /** Adds one point; returns the change in the number of points held. */
  add(conv: Conversation, seg: Segment, index: number, cap: number, sampleOnly: boolean): number {
    const level = levelOf(seg.notes, seg.flags);
    const before = this.count;
    if (index >= HEAD) {
      const keep = this.seen[level]++ % this.stride[level] === 0;
      if (!keep) return 0;
      if (sampleOnly && level === 0) return 0;
    }
    if (this.count >= cap) this.thin();
    if ((this.count + 1) * FIELDS > this.data.length) {
      const grown = new Float64Array(Math.min(cap + 1, this.count * 2 + 4) * FIELDS);
      grown.set(this.data.subarray(0, this.count * FIELDS));
      this.data = grown;
    }
    const sender = seg.fromClient ? conv.client : conv.server;
    const senderStream = seg.fromClient ? this.client : this.server;
    const receiverStream = seg.fromClient ? this.server : this.client;
    const receiver = seg.fromClient ? conv.server : conv.client;
    if (!senderStream.known) startStream(senderStream, sender, seg.seq);
    const o = this.count * FIELDS;
    const d = this.data;
    d[o + F_INDEX] = index;
    d[o + F_FRAME] = seg.frame;
    d[o + F_TIME] = seg.time;
    d[o + F_DIR_FLAGS] = (seg.fromClient ? 256 : 0) | (seg.flags & 0xff);
    d[o + F_SEQ] = senderStream.relative(seg.seq);
    if ((seg.flags & ACK) !== 0) {
      if (!receiverStream.known) startStream(receiverStream, receiver, seg.ack);
      d[o + F_ACK] = receiverStream.relative(seg.ack);
    } else d[o + F_ACK] = Number.NaN;
    d[o + F_LEN] = seg.payloadLength;
    d[o + F_WINDOW] = seg.window;
    d[o + F_NOTES] = seg.notes;
    d[o + F_IDLE] = seg.idleBefore;
    this.count++;
    return this.count - before;
  }

  /**
   * Halves the points past the head at one level, and samples that level at twice the stride from
   * now on.
   */
  private thin(): void {
    const d = this.data;
    const counts = [0, 0, 0];
    for (let i = 0; i < this.count; i++) {
      const o = i * FIELDS;
      if (d[o + F_INDEX] >= HEAD) counts[levelOf(d[o + F_NOTES], d[o + F_DIR_FLAGS] & 0xff)]++;
    }
    // The level with the most points goes first (the lower one on a tie), so rare events keep more
    // of their points than plain data does without crowding it out of the picture.
    let level = 0;
    if (counts[1] > counts[level]) level = 1;
    if (counts[2] > counts[level]) level = 2;
    let kept = 0;
    let nth = 0;
    for (let i = 0; i < this.count; i++) {
      const o = i * FIELDS;
      const drop = d[o + F_INDEX] >= HEAD && levelOf(d[o + F_NOTES], d[o + F_DIR_FLAGS] & 0xff) === level && nth++ % 2 === 1;
      if (drop) continue;
      if (kept !== i) d.copyWithin(kept * FIELDS, o, o + FIELDS);
      kept++;
    }
    this.count = kept;
    this.stride[level] *= 2;
    this.seen[level] = 0;
  }

  toSequence(): SequenceRecording {
    const points: SequencePoint[] = [];
    const d = this.data;
    for (let i = 0; i < this.count; i++) {
      const o = i * FIELDS;
      const ack = d[o + F_ACK];
      points.push({
        index: d[o + F_INDEX],
        frame: d[o + F_FRAME],
        time: d[o + F_TIME],
        fromClient: (d[o + F_DIR_FLAGS] & 256) !== 0,
        flags: d[o + F_DIR_FLAGS] & 0xff,
        relSeq: d[o + F_SEQ],
        relAck: Number.isNaN(ack) ? null : ack,
        payloadLength: d[o + F_LEN],
        window: d[o + F_WINDOW],
        notes: d[o + F_NOTES],
        idleBefore: d[o + F_IDLE],
      });
    }
    return {
      id: this.id,
      packets: this.packets,
      points,
      fromIsn: { client: this.client.fromIsn, server: this.server.fromIsn },
      sampling: { plain: this.stride[0], trouble: this.stride[1], marks: this.stride[2] },
    };
  }
}

/** Relative to the ISN when the handshake was seen (as `connscope flow` numbers), else to this value. */
function startStream(stream: Stream, endpoint: Endpoint, raw: number): void {
  if (endpoint.isnKnown) stream.start(endpoint.isn, 0, true);
  else stream.start(raw, 0, false);
}

/** Per-bin counts whose bins double in width when the capture spans more than MAX_BINS of them. */
class Bins {
  /** Series: new connections, resets, retransmissions, open-interval starts, open-interval ends. */
  static readonly SERIES = 5;
  width = 1;
  /** Index of the first bin in units of width since the epoch (its start is firstBin * width). */
  firstBin = 0;
  size = 0;
  series: Float64Array[] = [];
  private capacity = 0;

  add(series: number, time: number, amount: number): void {
    if (!Number.isFinite(time)) return;
    let bin = Math.floor(time / this.width);
    if (this.size === 0) {
      this.firstBin = bin;
      this.ensure(1);
      this.size = 1;
    }
    while (bin - this.firstBin >= MAX_BINS || this.firstBin + this.size - 1 - bin >= MAX_BINS) {
      this.coarsen();
      bin = Math.floor(time / this.width);
    }
    if (bin < this.firstBin) {
      const shift = this.firstBin - bin;
      this.ensure(this.size + shift);
      for (const s of this.series) {
        s.copyWithin(shift, 0, this.size);
        s.fill(0, 0, shift);
      }
      this.firstBin = bin;
      this.size += shift;
    } else if (bin >= this.firstBin + this.size) {
      this.ensure(bin - this.firstBin + 1);
      this.size = bin - this.firstBin + 1;
    }
    this.series[series][bin - this.firstBin] += amount;
  }

  private ensure(size: number): void {
    if (size <= this.capacity) return;
    const capacity = Math.min(MAX_BINS * 2, Math.max(size, this.capacity * 2, 64));
    this.series = Array.from({ length: Bins.SERIES }, (_, i) => {
      const grown = new Float64Array(capacity);
      if (this.series[i] !== undefined) grown.set(this.series[i].subarray(0, this.size));
      return grown;
    });
    this.capacity = capacity;
  }

  private coarsen(): void {
    const newFirst = Math.floor(this.firstBin / 2);
    const offset = this.firstBin - newFirst * 2;
    const newSize = ((this.size - 1 + offset) >> 1) + 1;
    for (const s of this.series) {
      for (let j = 0; j < newSize; j++) {
        const a = 2 * j - offset;
        s[j] = (a >= 0 ? s[a] : 0) + (a + 1 < this.size ? s[a + 1] : 0);
      }
      s.fill(0, newSize, this.size);
    }
    this.firstBin = newFirst;
    this.size = newSize;
    this.width *= 2;
  }

  toTimeline(inputs: number[]): CaptureTimeline {
    const pick = (i: number) => Array.from(this.series[i]?.subarray(0, this.size) ?? []);
    const open: number[] = [];
    let started = 0;
    let ended = 0;
    for (let b = 0; b < this.size; b++) {
      started += this.series[3][b];
      open.push(started - ended);
      ended += this.series[4][b];
    }
    return {
      inputs,
      origin: this.firstBin * this.width,
      binSeconds: this.width,
      newConnections: pick(0),
      resets: pick(1),
      retransmissions: pick(2),
      open,
    };
  }
}

interface Epoch {
  inputs: number[];
  bins: Bins;
  /** Latest segment time seen: the end of the capture for conversations still open at its end. */
  lastTime: number;
}

/**
 * Collects the HTML report's data as a session's segment observer. Hand it to analyzeFiles as
 * `segmentObserver` and its `onFinding` as `onFinding`, then call `data(result.findings)`.
 */
export class TimelineRecorder implements SessionObserver {
  private readonly options: TimelineOptions;
  private readonly epochs: Epoch[] = [];
  private epoch: Epoch | null = null;
  private inputCount = 0;
  /** Report ids of this session's conversations are its own ids plus this (combineResults' numbering). */
  private idOffset = 0;
  private maxIdThisSession = 0;
  private readonly live = new Map<Conversation, Recording>();
  private finished: Recording[] = [];
  private points = 0;
  private pointLimit: number;
  private recordingLimit: number;
  /** Past the budget: new conversations are recorded only from their first trouble. */
  private shedding = false;
  /** Recordings dropped for the budget. */
  private dropped = 0;
  private readonly flagged = new Set<number>();

  constructor(options: Partial<TimelineOptions> = {}) {
    this.options = { ...DEFAULT_TIMELINE_OPTIONS, ...options };
    this.pointLimit = this.options.maxPoints;
    this.recordingLimit = this.options.maxRecordings;
  }

  beginInput(): void {
    const index = this.inputCount++;
    if (this.epoch !== null && this.options.merge) {
      this.epoch.inputs.push(index);
      return;
    }
    // Separate captures are separate sessions: conversation ids start again at 1 in each.
    this.idOffset += this.maxIdThisSession;
    this.maxIdThisSession = 0;
    this.epoch = { inputs: [index], bins: new Bins(), lastTime: Number.NEGATIVE_INFINITY };
    this.epochs.push(this.epoch);
  }

  /** The session's finding listener: conversations a finding names are the last to be dropped. */
  readonly onFinding = (finding: Finding): void => {
    for (const id of finding.conversations) this.flagged.add(id + this.idOffset);
  };

  onSegment(conv: Conversation, seg: Segment): void {
    const epoch = this.epoch ?? this.startImplicitEpoch();
    const time = seg.time;
    if (time > epoch.lastTime) epoch.lastTime = time;
    const packets = conv.client.packets + conv.server.packets;
    if (packets === 1) {
      if (conv.id > this.maxIdThisSession) this.maxIdThisSession = conv.id;
      if (!conv.midstream) epoch.bins.add(0, time, 1);
    }
    const notes = seg.notes;
    if ((notes & Note.Reset) !== 0) epoch.bins.add(1, time, 1);
    if ((notes & Note.Retransmission) !== 0) epoch.bins.add(2, time, 1);

    let rec = this.live.get(conv);
    const trouble = (notes & TROUBLE) !== 0;
    if (rec === undefined) {
      if ((packets !== 1 || this.shedding) && !trouble) return;
      rec = new Recording(conv.id + this.idOffset, 2);
      this.live.set(conv, rec);
    }
    rec.packets = packets;
    if (trouble) rec.troubles++;
    this.points += rec.add(conv, seg, packets - 1, this.options.maxPointsPerConversation, this.shedding);
    if (this.points > this.pointLimit || this.live.size + this.finished.length > this.recordingLimit) this.makeRoom();
  }

  onFinalize(conv: Conversation): void {
    const epoch = this.epoch ?? this.startImplicitEpoch();
    const openUntil = conv.closeTime >= 0 ? conv.closeTime : conv.closeKind === 'open-at-end' ? Math.max(epoch.lastTime, conv.end) : conv.end;
    epoch.bins.add(3, conv.start, 1);
    epoch.bins.add(4, Math.max(openUntil, conv.start), 1);
    const rec = this.live.get(conv);
    if (rec === undefined) return;
    this.live.delete(conv);
    rec.packets = conv.client.packets + conv.server.packets;
    this.finished.push(rec);
  }

  /** The timelines, and the recordings of the conversations the findings name. */
  data(findings: readonly Finding[]): TimelineData {
    const named = new Set(findings.flatMap((f) => f.conversations));
    const byId = new Map<number, Recording>();
    for (const rec of this.finished) if (named.has(rec.id)) byId.set(rec.id, rec);
    for (const rec of this.live.values()) if (named.has(rec.id)) byId.set(rec.id, rec);
    this.finished = [];
    this.live.clear();
    return {
      timelines: this.epochs.map((e) => e.bins.toTimeline(e.inputs)),
      sequence: (id) => byId.get(id)?.toSequence() ?? null,
      bounded: this.shedding || this.dropped > 0,
    };
  }

  /** An observer used without beginInput (a live session): one timeline. */
  private startImplicitEpoch(): Epoch {
    this.epoch = { inputs: [0], bins: new Bins(), lastTime: Number.NEGATIVE_INFINITY };
    this.epochs.push(this.epoch);
    return this.epoch;
  }

  /**
   * Over budget: drops finished recordings, those no finding names and the least troubled first,
   * down to 3/4 of the budget; if live conversations alone still exceed it, stops recording the
   * untroubled ones and records new conversations only from their first trouble.
   */
  private makeRoom(): void {
    const { maxPoints, maxRecordings } = this.options;
    const pointTarget = Math.floor(maxPoints * 0.75);
    const recordingTarget = Math.floor(maxRecordings * 0.75);
    const over = () => this.points > pointTarget || this.live.size + this.finished.length > recordingTarget;
    for (const rec of this.finished) rec.flagged = this.flagged.has(rec.id);
    this.finished.sort((a, b) => b.score - a.score);
    while (over() && this.finished.length > 0) {
      const last = this.finished.pop() as Recording;
      this.points -= last.count;
      this.dropped++;
    }
    if (over()) {
      this.shedding = true;
      for (const [conv, rec] of this.live) {
        if (rec.troubles > 0 || this.flagged.has(rec.id)) continue;
        this.live.delete(conv);
        this.points -= rec.count;
        this.dropped++;
      }
    }
    // Live troubled conversations may still exceed the budget: look again only after some growth.
    this.pointLimit = Math.max(maxPoints, this.points + maxPoints / 4);
    this.recordingLimit = Math.max(maxRecordings, this.live.size + this.finished.length + maxRecordings / 4);
  }
}
