import { TcpFlag } from '../decode/packet.js';
import { type Conversation, type Endpoint, Side } from '../flow/conversation.js';
import { Note, type Segment } from '../flow/segment.js';
import { seqGt } from '../flow/seq.js';
import { endpointSummary } from '../flow/summary.js';
import { type Cap, type CapFactory, CappedGroups } from './capped.js';
import { idleTimeoutsBetween, type IdleTimeoutDefault } from './knowledge.js';

/**
 * Idle-gap bookkeeping shared by idle-timeout and keepalive: each detector runs its own IdleGapBook
 * over the same segments, so both reach the same bracket without calling each other.
 *
 * A gap test starts at the first packet that carries something the peer must answer (new data, a
 * FIN, a keep-alive or persist probe) after some silence in both directions, on a conversation
 * nobody had started closing. It ends as
 *  - survived: the peer acknowledged that data (ACK progress past it), or, for a probe, sent
 *    anything but an RST after it;
 *  - failed: an RST from either side (the peer, or a middlebox speaking for it) before any answer,
 *    or `failRetries` retransmissions (or further unanswered probes) of it without an answer;
 *  - unresolved (not counted): the conversation ended first, e.g. the capture stopped mid-storm.
 * A survival counts from `minSurvivedGapSeconds` of silence (any survivor is a valid lower bound);
 * a failure only from `minGapSeconds`, so ordinary loss after a short pause is not taken for an
 * idle timeout.
 * Gap tests are grouped by server address: a NAT, firewall or balancer sits on the path to a host.
 */

export const DEFAULT_MIN_GAP_SECONDS = 5;
export const DEFAULT_MIN_SURVIVED_GAP_SECONDS = 1;
export const DEFAULT_FAIL_RETRIES = 2;
/** Failed gaps kept per group as evidence (the shortest one is always kept). */
const MAX_FAILED_KEPT = 16;
/** Survived gap lengths kept per group (beyond it only the longest is tracked). */
const MAX_SURVIVED_KEPT = 65536;
/**
 * Survived gap lengths kept over all groups: 8 MB. Every answered packet after a second of silence is
 * one, so a long capture of many idle-then-busy connections makes millions; past this the brackets
 * still hold (the longest survivor is always kept) but contradicting survivals are undercounted.
 */
const MAX_SURVIVED_TOTAL = 1_000_000;
/**
 * Conversation ids kept per group for the finding's list. Not a loss worth a warning: a busy server
 * has tens of thousands of conversations with idle gaps, the gap counts and brackets cover them all,
 * and a longer list is a report nobody reads (keepalive lists 64).
 */
const MAX_GROUP_CONVERSATIONS = 1000;

/** Segments the book must see: gap starters, answers, retries and resets. */
export const IDLE_GAP_INTEREST =
  Note.NewData | Note.Retransmission | Note.KeepAlive | Note.ZeroWindowProbe | Note.AckProgress | Note.Reset | Note.Fin;

export type GapHow = 'answered' | 'reset' | 'retransmissions' | 'unanswered-probes';

export interface GapResult {
  conversation: number;
  outcome: 'survived' | 'failed';
  how: GapHow;
  /** Silence before the first packet after the gap, in seconds. */
  gapSeconds: number;
  /** Which side sent the first packet after the gap. */
  direction: 'client' | 'server';
  /** The first packet after the gap was a keep-alive or persist probe (no new data). */
  probe: boolean;
  frame: number;
  time: number;
  /** The packet that decided the outcome (answer, RST, or the retry that reached failRetries). */
  resolvedFrame: number;
  resolvedTime: number;
  /** Retransmissions (or further probes) of it seen without an answer, counted on after the verdict. */
  retries: number;
  /** Last packet of the failure seen: the verdict, or a later retransmission of the same data. */
  lastTime: number;
  resetBy: 'client' | 'server' | null;
  client: { ip: string; port: number };
  server: { ip: string; port: number };
}

/** One server address's gap tests. */
export class GapGroup {
  survivedCount = 0;
  failedCount = 0;
  longestSurvived: GapResult | null = null;
  shortestFailed: GapResult | null = null;
  /** Failed gaps, in order of resolution (capped). */
  readonly failed: GapResult[] = [];
  /** Survived gap lengths (capped), to count those contradicting the bracket (ones ≥ a failed gap). */
  readonly survivedGaps: number[] = [];
  readonly conversations = new Set<number>();
  constructor(readonly serverIp: string) {}
}

/** A bracket on a middlebox idle timeout: low < timeout ≤ high, either side possibly open. */
export interface IdleBracket {
  /** Longest gap that survived and is shorter than the shortest failure; null when none did. */
  low: number | null;
  /** Shortest gap after which the next packet failed; null when none failed. */
  high: number | null;
  /** Survived gaps at least as long as the shortest failure: not explained by one idle timeout. */
  contradicting: number;
  /** Known defaults inside the bracket (only when high is known). */
  matches: IdleTimeoutDefault[];
}

/** The bracket a group's gap tests put on an idle timeout (pure: depends only on the lengths). */
export function idleBracket(survivedGaps: readonly number[], failedGaps: readonly number[]): IdleBracket {
  const high = failedGaps.length > 0 ? Math.min(...failedGaps) : null;
  let low: number | null = null;
  let contradicting = 0;
  for (const gap of survivedGaps) {
    if (high !== null && gap >= high) contradicting++;
    else if (low === null || gap > low) low = gap;
  }
  const matches = high === null ? [] : idleTimeoutsBetween(low ?? 0, high).filter((d) => low === null || d.seconds > low);
  return { low, high, contradicting, matches };
}

export function bracketOf(group: GapGroup): IdleBracket {
  // Past a cap the longest survivor may be missing from the list: add it (the bracket needs it).
  const full = group.survivedGaps.length < group.survivedCount && group.longestSurvived !== null;
  const survived = full ? [...group.survivedGaps, (group.longestSurvived as GapResult).gapSeconds] : group.survivedGaps;
  return idleBracket(survived, group.failed.map((f) => f.gapSeconds));
}

class PendingGap {
  fromClient = true;
  probe = false;
  seq = 0;
  gap = 0;
  frame = 0;
  time = 0;
  retries = 0;
  /** Peer's packets that were not RSTs when the test began: more later means it answered a probe. */
  peerQuiet = 0;
}

/** Per-conversation state, kept by the detector in its scratch slot. */
export class GapState {
  pending: PendingGap | null = null;
  /** A failure still being retransmitted: its retries keep counting until an answer or the end. */
  failed: GapResult | null = null;
  failedFromClient = true;

  /** Nothing under way: the same as no state at all, so a detector may drop it. */
  get idle(): boolean {
    return this.pending === null && this.failed === null;
  }
}

function nonResetPackets(endpoint: Endpoint): number {
  return endpoint.packets - endpoint.rsts;
}

export class IdleGapBook {
  readonly groups: CappedGroups<GapGroup>;

  private readonly minTestGap: number;
  private readonly survivedKept: Cap;

  constructor(
    private readonly minGapSeconds: number,
    private readonly minSurvivedGapSeconds: number,
    private readonly failRetries: number,
    maxServers: number,
    cap: CapFactory,
    /** Called when a gap test ends (live reporting). */
    private readonly onResult: ((outcome: GapResult['outcome'], group: GapGroup) => void) | null = null,
  ) {
    this.minTestGap = Math.min(minGapSeconds, minSurvivedGapSeconds);
    this.groups = new CappedGroups(cap(maxServers, 'server addresses with idle-gap tests', 'idle-gap tests towards further addresses not analysed'));
    this.survivedKept = cap(MAX_SURVIVED_TOTAL, 'survived gap lengths kept', 'survived gaps only counted (contradicting survivals may be undercounted)');
  }

  /** Gaps shorter than this start no test: state is worth keeping only from here. */
  get minimumGap(): number {
    return this.minTestGap;
  }

  onSegment(state: GapState, conv: Conversation, seg: Segment): void {
    const notes = seg.notes;
    const failed = state.failed;
    if (failed !== null) {
      if ((notes & Note.Reset) !== 0 || (seg.fromClient !== state.failedFromClient && (notes & Note.AckProgress) !== 0)) {
        state.failed = null;
      } else if (seg.fromClient === state.failedFromClient && (notes & Note.Retransmission) !== 0 && (notes & Note.SynRetransmission) === 0) {
        failed.retries++;
        failed.lastTime = seg.time;
      }
    }
    const pending = state.pending;
    let consumed = false;
    if (pending !== null) {
      const peer = pending.fromClient ? conv.server : conv.client;
      if ((notes & Note.Reset) !== 0) {
        this.resolve(state, conv, 'failed', 'reset', seg);
        consumed = true;
      } else if (pending.probe && nonResetPackets(peer) > pending.peerQuiet + (seg.fromClient !== pending.fromClient ? 1 : 0)) {
        // The peer answered the probe earlier with a packet that carried no note (a pure ACK).
        this.resolve(state, conv, 'survived', 'answered', null);
      } else if (seg.fromClient !== pending.fromClient) {
        if (pending.probe || ((notes & Note.AckProgress) !== 0 && seqGt(seg.ack, pending.seq))) {
          this.resolve(state, conv, 'survived', 'answered', seg);
          consumed = true;
        }
      } else if ((notes & Note.SynRetransmission) === 0 &&
                 ((notes & Note.Retransmission) !== 0 || (pending.probe && (notes & (Note.KeepAlive | Note.ZeroWindowProbe)) !== 0))) {
        pending.retries++;
        consumed = true;
        if (pending.retries >= this.failRetries) {
          this.resolve(state, conv, 'failed', pending.probe ? 'unanswered-probes' : 'retransmissions', seg);
        }
      }
    }
    if (consumed || state.pending !== null) return;
    if (seg.idleBefore < this.minTestGap) return;
    if ((notes & (Note.NewData | Note.KeepAlive | Note.ZeroWindowProbe)) === 0 || (notes & Note.Reset) !== 0) return;
    if ((seg.flags & TcpFlag.SYN) !== 0) return; // a SYN opens a conversation: there was no idle connection
    if (conv.resetBy !== Side.None) return;
    // A conversation one side had started closing before the gap is not an idle connection.
    const sender = seg.fromClient ? conv.client : conv.server;
    const peer = seg.fromClient ? conv.server : conv.client;
    if (peer.finTime >= 0 || (sender.finTime >= 0 && sender.finTime < seg.time)) return;
    const test = new PendingGap();
    test.fromClient = seg.fromClient;
    test.probe = (notes & Note.NewData) === 0;
    test.seq = seg.seq;
    test.gap = seg.idleBefore;
    test.frame = seg.frame;
    test.time = seg.time;
    test.peerQuiet = nonResetPackets(peer);
    state.pending = test;
  }

  onFinalize(state: GapState, conv: Conversation): void {
    const pending = state.pending;
    if (pending === null) return;
    const peer = pending.fromClient ? conv.server : conv.client;
    if (pending.probe && nonResetPackets(peer) > pending.peerQuiet) this.resolve(state, conv, 'survived', 'answered', null);
    state.pending = null;
  }

  private resolve(state: GapState, conv: Conversation, outcome: 'survived' | 'failed', how: GapHow, seg: Segment | null): void {
    const pending = state.pending as PendingGap;
    state.pending = null;
    if (outcome === 'failed' && pending.gap < this.minGapSeconds) return;
    if (outcome === 'survived' && pending.gap < this.minSurvivedGapSeconds) return;
    const serverIp = conv.server.ipText(conv.ipVersion);
    const group = this.groups.obtain(serverIp, () => new GapGroup(serverIp));
    if (group === null) return;
    if (group.conversations.size < MAX_GROUP_CONVERSATIONS) group.conversations.add(conv.id);
    if (outcome === 'survived') {
      group.survivedCount++;
      if (group.survivedGaps.length >= MAX_SURVIVED_KEPT) this.survivedKept.refuse();
      else if (this.survivedKept.take()) group.survivedGaps.push(pending.gap);
      // Every think time of a busy capture is a survived gap: only the longest is kept whole.
      if (group.longestSurvived === null || pending.gap > group.longestSurvived.gapSeconds) {
        group.longestSurvived = gapResult(conv, pending, outcome, how, seg);
      }
    } else {
      const result = gapResult(conv, pending, outcome, how, seg);
      group.failedCount++;
      if (group.shortestFailed === null || result.gapSeconds < group.shortestFailed.gapSeconds) group.shortestFailed = result;
      if (group.failed.length < MAX_FAILED_KEPT) group.failed.push(result);
      else if (result === group.shortestFailed) group.failed[MAX_FAILED_KEPT - 1] = result;
      if (how !== 'reset') {
        state.failed = result;
        state.failedFromClient = pending.fromClient;
      }
    }
    this.onResult?.(outcome, group);
  }
}

function gapResult(conv: Conversation, pending: PendingGap, outcome: 'survived' | 'failed', how: GapHow, seg: Segment | null): GapResult {
  const peer = pending.fromClient ? conv.server : conv.client;
  return {
    conversation: conv.id,
    outcome,
    how,
    gapSeconds: pending.gap,
    direction: pending.fromClient ? 'client' : 'server',
    probe: pending.probe,
    frame: pending.frame,
    time: pending.time,
    // Without the answering segment (a pure ACK carries no note) the peer's last packet is it.
    resolvedFrame: seg !== null ? seg.frame : 0,
    resolvedTime: seg !== null ? seg.time : peer.lastTime,
    retries: pending.retries,
    lastTime: seg !== null ? seg.time : peer.lastTime,
    resetBy: how === 'reset' && seg !== null ? (seg.fromClient ? 'client' : 'server') : null,
    client: endpointSummary(conv.client, conv.ipVersion),
    server: endpointSummary(conv.server, conv.ipVersion),
  };
}
