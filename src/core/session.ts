import type { CaptureInfo, CaptureRecord } from '../capture/record.js';
import { PacketDecoder, decodeWarnings } from '../decode/decoder.js';
import { DecodedPacket, DecodeStatus } from '../decode/packet.js';
import { DETECTORS } from '../detect/registry.js';
import { DetectorEngine, type FindingListener } from '../detect/engine.js';
import type { Finding } from '../detect/finding.js';
import { emptyPolicy, type Policy } from '../detect/policy.js';
import type { Conversation } from '../flow/conversation.js';
import { flagTable } from '../flow/flags.js';
import type { Segment } from '../flow/segment.js';
import type { ConversationSummary } from '../flow/summary.js';
import { SummaryStore } from '../flow/summary-store.js';
import { FlowTracker, type FlowObserver, type TrackerOptions } from '../flow/tracker.js';
import { PacketFilter, type FilterOptions } from './filter.js';
import { payloadHash } from './payload-hash.js';

export interface SessionOptions {
  tracker?: Partial<TrackerOptions>;
  policy?: Policy;
  filter?: FilterOptions;
  /**
   * Finished conversations kept as summaries. Past this count they are only counted (by how they
   * ended), so memory stays bounded on captures with millions of connections.
   */
  maxStoredConversations?: number;
  onFinding?: FindingListener;
  /** Sees every segment after the detectors (the ladder view of one conversation, the HTML report's data). */
  segmentObserver?: SessionObserver;
  /** Give the segmentObserver a hash of each segment's payload (Segment.payloadHash; costs a pass over the bytes). */
  payloadHash?: boolean;
}

export const DEFAULT_MAX_STORED_CONVERSATIONS = 250_000;

/** A segment observer that may also want to know where each input begins (the HTML report's timelines). */
export interface SessionObserver extends FlowObserver {
  beginInput?(path: string): void;
}

/** Where a live capture's packets came from: the report names it instead of the internal pcap stream. */
export interface LiveSource {
  interface: string;
  backend: 'cap' | 'tcpdump';
  /** The BPF filter, null when none was given. */
  filter: string | null;
}

export interface InputReport {
  path: string;
  /** Only for a live capture, whose `format` is then 'live'. */
  live?: LiveSource;
  format: string;
  byteOrder: string;
  nanosecond: boolean;
  linkTypes: number[];
  packets: number;
  tcpPackets: number;
  bytes: number;
  start: number | null;
  end: number | null;
  truncated: boolean;
  warnings: string[];
  /** Why the input could not be read at all; null when it was read (even partly). */
  error: string | null;
}

export interface AnalysisSummary {
  inputs: number;
  conversations: number;
  /** Conversations counted but not listed because maxStoredConversations was reached. */
  conversationsNotListed: number;
  packets: number;
  tcpPackets: number;
  bytes: number;
  start: number | null;
  end: number | null;
  flags: Record<string, number>;
  flagsByDirection: { client: Record<string, number>; server: Record<string, number> };
  retransmissions: number;
  resets: number;
  closeKinds: Record<string, number>;
  evicted: number;
}

/** What a baseline did to this report (only when --baseline was given). */
export interface BaselineReport {
  path: string;
  /** Ids of findings the baseline accepted: reported, but not counted for --fail-on. */
  suppressed: string[];
  /** Baseline entries no finding matched. */
  stale: { detector: string; client?: string; server?: string; title?: string }[];
}

export interface AnalysisResult {
  inputs: InputReport[];
  summary: AnalysisSummary;
  conversations: ConversationSummary[];
  findings: Finding[];
  baseline?: BaselineReport;
}

/**
 * One capture's way through the pipeline: records in, decoded packets to the flow tracker, the
 * tracker's verdicts to the detectors, finished conversations to summaries. The offline reader and
 * live capture both drive a session, so there is one implementation of everything after capture.
 * Several inputs fed to one session are one capture (rotated or split files), frames numbered on.
 */
export class AnalysisSession implements FlowObserver {
  private readonly decoder = new PacketDecoder();
  private readonly packet = new DecodedPacket();
  private readonly tracker: FlowTracker;
  private readonly engine: DetectorEngine;
  private readonly filter: PacketFilter | null;
  private readonly maxStored: number;
  private readonly segmentObserver: SessionObserver | null;
  private readonly hashPayload: boolean;
  /** Payload hash of the packet being tracked (when hashPayload). */
  private currentHash = 0;
  private readonly stored = new SummaryStore();
  private readonly closeKinds: Record<string, number> = {};
  private notListed = 0;
  private retransmissions = 0;
  private resets = 0;
  private readonly inputs: InputReport[] = [];
  private current: InputReport | null = null;
  private frameOffset = 0;
  private tcpBefore = 0;
  /**
   * First and last packet time of the current input. Kept here and copied to the InputReport when
   * the input ends: its start/end fields may be null, so each store there would box a new number.
   */
  private inputStart = Infinity;
  private inputEnd = -Infinity;

  constructor(options: SessionOptions = {}) {
    this.engine = new DetectorEngine(DETECTORS, options.policy ?? emptyPolicy(), this, options.onFinding ?? null);
    this.tracker = new FlowTracker(this.engine, options.tracker);
    this.filter = options.filter ? PacketFilter.create(options.filter) : null;
    this.maxStored = options.maxStoredConversations ?? DEFAULT_MAX_STORED_CONVERSATIONS;
    this.segmentObserver = options.segmentObserver ?? null;
    this.hashPayload = options.payloadHash === true && this.segmentObserver !== null;
  }

  get liveConversations(): number {
    return this.tracker.liveConversations;
  }

  get tcpPackets(): number {
    return this.tracker.stats.tcpPackets;
  }

  beginInput(path: string, live?: LiveSource): void {
    this.segmentObserver?.beginInput?.(path);
    this.current = {
      path, format: 'unknown', byteOrder: 'unknown', nanosecond: false, linkTypes: [], packets: 0,
      tcpPackets: 0, bytes: 0, start: null, end: null, truncated: false, warnings: [], error: null,
    };
    if (live !== undefined) this.current.live = live;
    this.tcpBefore = this.tracker.stats.tcpPackets;
    this.inputStart = Infinity;
    this.inputEnd = -Infinity;
    this.inputs.push(this.current);
  }

  /** The record sink handed to a capture reader. */
  readonly record = (rec: CaptureRecord): void => {
    const input = this.current as InputReport;
    input.packets++;
    input.bytes += rec.originalLength;
    const time = rec.time;
    if (time < this.inputStart) this.inputStart = time;
    if (time > this.inputEnd) this.inputEnd = time;
    if (this.decoder.decode(rec, this.packet) !== DecodeStatus.Tcp) return;
    if (this.filter !== null && !this.filter.matches(this.packet)) return;
    if (this.hashPayload) this.currentHash = payloadHash(rec.data, this.packet);
    this.tracker.packet(this.frameOffset + rec.frame, time, rec.originalLength, this.inputs.length - 1, this.packet);
  };

  /** Closes the current input with what the reader learned about it. */
  endInput(info: CaptureInfo): void {
    const input = this.current as InputReport;
    this.closeTimes(input);
    // A live capture reaches the reader as a pcap stream from cap or tcpdump: its format and byte
    // order are that pipe's, not something the user chose or can act on.
    input.format = input.live !== undefined ? 'live' : info.format;
    input.byteOrder = input.live !== undefined ? 'unknown' : info.byteOrder;
    input.nanosecond = info.nanosecond;
    input.linkTypes = info.linkTypes;
    input.truncated = info.truncated;
    input.warnings.push(...info.warnings, ...decodeWarnings(this.decoder.stats));
    this.decoder.stats.reset();
    input.tcpPackets = this.tracker.stats.tcpPackets - this.tcpBefore;
    if (input.tcpPackets === 0 && input.packets > 0) input.warnings.push('no TCP packets in this capture');
    this.frameOffset += input.packets;
    this.current = null;
  }

  /** The current input could not be read at all. */
  failInput(message: string): void {
    (this.current as InputReport).error = message;
    this.closeTimes(this.current as InputReport);
    this.current = null;
  }

  private closeTimes(input: InputReport): void {
    if (this.inputStart !== Infinity) input.start = this.inputStart;
    if (this.inputEnd !== -Infinity) input.end = this.inputEnd;
  }

  onSegment(conv: Conversation, seg: Segment): void {
    if (this.hashPayload) seg.payloadHash = this.currentHash;
    this.segmentObserver?.onSegment(conv, seg);
  }

  onFinalize(conv: Conversation): void {
    this.segmentObserver?.onFinalize(conv);
    this.retransmissions += conv.client.retransmissions + conv.server.retransmissions;
    this.resets += conv.client.rsts + conv.server.rsts;
    this.closeKinds[conv.closeKind] = (this.closeKinds[conv.closeKind] ?? 0) + 1;
    if (this.stored.size < this.maxStored) this.stored.add(conv);
    else this.notListed++;
  }

  /** Findings so far, while the capture runs. */
  currentFindings(): Finding[] {
    return this.engine.results();
  }

  forEachLiveConversation(fn: (conv: Conversation) => void): void {
    this.tracker.forEachLive(fn);
  }

  finish(): AnalysisResult {
    if (this.current !== null) this.closeTimes(this.current);
    this.tracker.finish();
    this.engine.finish();
    this.inputs.at(-1)?.warnings.push(...this.engine.limitWarnings());
    const conversations = this.stored.summaries().sort((a, b) => a.id - b.id);
    const flags = this.tracker.stats.flagsByDirection;
    const both = new Uint32Array(256);
    for (let i = 0; i < 256; i++) both[i] = flags[0][i] + flags[1][i];
    const starts = this.inputs.map((i) => i.start).filter((t): t is number => t !== null);
    const ends = this.inputs.map((i) => i.end).filter((t): t is number => t !== null);
    return {
      inputs: this.inputs,
      summary: {
        inputs: this.inputs.length,
        conversations: this.tracker.stats.conversations,
        conversationsNotListed: this.notListed,
        packets: this.inputs.reduce((n, i) => n + i.packets, 0),
        tcpPackets: this.tracker.stats.tcpPackets,
        bytes: this.inputs.reduce((n, i) => n + i.bytes, 0),
        start: starts.length > 0 ? Math.min(...starts) : null,
        end: ends.length > 0 ? Math.max(...ends) : null,
        flags: flagTable(both),
        flagsByDirection: { client: flagTable(flags[0]), server: flagTable(flags[1]) },
        retransmissions: this.retransmissions,
        resets: this.resets,
        closeKinds: this.closeKinds,
        evicted: this.tracker.stats.evicted,
      },
      conversations,
      findings: this.engine.results(),
    };
  }
}
