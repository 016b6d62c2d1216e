import type { Conversation, Endpoint } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { type EndpointSummary, endpointSummary, hostPort } from '../../flow/summary.js';
import type { DetectorSpec } from '../detector.js';
import {
  bracketOf,
  DEFAULT_FAIL_RETRIES,
  DEFAULT_MIN_GAP_SECONDS,
  DEFAULT_MIN_SURVIVED_GAP_SECONDS,
  GapState,
  IDLE_GAP_INTEREST,
  IdleGapBook,
} from '../idle-gaps.js';
import { CappedGroups, maxServersThreshold } from '../capped.js';
import { MIDDLEBOX_IDLE_TIMEOUTS } from '../knowledge.js';
import { humanSeconds, median, round, scratchState } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  minProbes: number;
  minIdleSeconds: number;
  maxServers: number;
};

/** Probe-shaped copies closer than this to the previous probe are capture duplicates (TCP_KEEPINTVL ≥ 1 s). */
const DUPLICATE_SECONDS = 0.5;

/** Intervals and idle times kept per group and kind for the medians. */
const MAX_SAMPLES = 4096;
/** Samples kept over all groups (8 MB): a probe flood towards many servers must not multiply the above. */
const MAX_SAMPLES_TOTAL = 1_000_000;

/** One side's probes on one conversation. */
class SideProbes {
  probes = 0;
  lastTime = -1;
  /** Peer's non-RST packet count at the last probe: more at the next probe means it was answered. */
  peerQuietAtLast = 0;
}

/**
 * Per conversation, only while it holds something: an idle-gap test under way, or probes (sides,
 * from the first probe on). Most conversations have think-time gaps and no probe at all.
 */
class State {
  sides: [SideProbes, SideProbes] | null = null;
  readonly gaps = new GapState();
}

/** Probes towards one server (ip:port) sent by one role, across conversations. */
class Group {
  readonly conversations: number[] = [];
  conversationCount = 0;
  probes = 0;
  answered = 0;
  unanswered = 0;
  /** Between consecutive probes of one side with no data in between. */
  readonly intervals: number[] = [];
  /** From the last data (either direction) to the first probe after it. */
  readonly afterData: number[] = [];
  /** Silences the sender let pass before probing: afterData, and intervals after an answered probe. */
  readonly periods: number[] = [];
  /** Intervals after an unanswered probe: the retry interval (TCP_KEEPINTVL). */
  readonly retryIntervals: number[] = [];
  firstFrame = 0;
  firstTime = -1;
  lastTime = -1;
  constructor(
    readonly key: string,
    readonly sender: 'client' | 'server',
    readonly client: EndpointSummary,
    readonly server: EndpointSummary,
  ) {}
}

function nonResetPackets(endpoint: Endpoint): number {
  return endpoint.packets - endpoint.rsts;
}

export const keepalive: DetectorSpec<Thresholds> = {
  id: 'keepalive',
  title: 'TCP keepalive in use',
  severity: 'info',
  summary: 'Who sends TCP keep-alive probes, how often, whether they are answered, and whether they come often enough for the idle timeout seen on the path.',
  explanation: [
    'A TCP keep-alive probe is a segment carrying no new data (zero bytes, or one old byte) at snd.una-1,',
    'sent after the connection was idle for TCP_KEEPIDLE (Linux net.ipv4.tcp_keepalive_time, default',
    '7200 s); the peer answers with an ACK. Unanswered probes are repeated every TCP_KEEPINTVL (default',
    '75 s) up to TCP_KEEPCNT (default 9) times before the connection is dropped. Probes refresh L4 state on',
    'the path (conntrack, NAT gateways, NLB) but not L7 balancers, which need payload. This detector',
    'groups probes by server and sending side, measures the median time between probes on a',
    'conversation (and the idle time before each), counts answers, and compares the interval with the',
    'idle-timeout bracket the idle-timeout detector infers from the same capture (the same gap',
    'bookkeeping, run here too) and with known middlebox defaults. Persist probes sent into a zero',
    'window are not keep-alives (see zero-window).',
  ].join(' '),
  evidence: {
    sender: 'which side sends the probes (client or server)',
    server: 'the server (ip:port) of the conversations',
    conversations: 'conversations with probes from that side',
    probes: 'keep-alive probes seen',
    answeredProbes: 'probes after which the peer sent something before the next probe or the end',
    unansweredProbes: 'probes followed by another probe (or the end) with nothing from the peer',
    medianIntervalSeconds: 'median time between consecutive probes from the same side of a conversation with no data between (null: none)',
    medianAfterDataSeconds: 'median time from the last data (either direction) to the first probe after it: TCP_KEEPIDLE',
    periodSeconds: 'median silence the sender lets pass before probing (after data, or after an answered probe): the effective TCP_KEEPIDLE, compared with idle timeouts',
    retryIntervalSeconds: 'median interval after an unanswered probe: TCP_KEEPINTVL (null when every probe was answered)',
    firstProbeFrame: 'frame of the first probe',
    idleTimeoutBracket: 'idle-timeout bracket for this server address from this capture ({low, high}, null when no idle gap failed)',
    intervalVsIdleTimeout: 'periodSeconds against the bracket: shorter (at most the longest gap that survived), longer (at least the shortest gap that failed), inside, unknown (no bracket)',
    longerThanKnownDefaults: 'known L4 idle-timeout defaults (refreshed by keep-alives) shorter than the probe interval',
  },
  thresholds: {
    minProbes: { default: 1, unit: 'probes', description: 'keep-alive probes from one side towards one server before it is reported' },
    minIdleSeconds: { default: 1, unit: 's', description: 'time since the last data before a keep-alive-shaped segment counts as a probe (Linux TCP_KEEPIDLE is at least 1 s; sooner it is a duplicate of an old ACK)' },
    maxServers: maxServersThreshold('servers (ip:port and probing side) receiving probes, and server addresses with idle-gap tests,'),
  },
  advice: [
    'Keep the keep-alive period (TCP_KEEPIDLE, or net.ipv4.tcp_keepalive_time) below the shortest idle timeout on the path; L7 balancers need application-level pings instead.',
    'Unanswered probes mean the peer or the path is gone: with TCP_KEEPINTVL and TCP_KEEPCNT the connection is dropped after KEEPIDLE + KEEPINTVL x KEEPCNT; lower them to detect dead peers sooner.',
  ],
  create({ thresholds, slot, report, cap }) {
    const groups = new CappedGroups<Group>(cap(thresholds.maxServers, 'servers with keep-alive probes followed', 'keep-alive probes towards further servers not analysed'));
    const samples = cap(MAX_SAMPLES_TOTAL, 'probe intervals and idle times kept', 'probe intervals and idle times left out of the medians');
    // The same gap bookkeeping as idle-timeout, with its default thresholds, for the same bracket.
    const gapBook = new IdleGapBook(DEFAULT_MIN_GAP_SECONDS, DEFAULT_MIN_SURVIVED_GAP_SECONDS, DEFAULT_FAIL_RETRIES, thresholds.maxServers, cap);

    const stateOf = (conv: Conversation): State => scratchState(conv, slot, State);

    const groupOf = (conv: Conversation, fromClient: boolean): Group | null => {
      const server = endpointSummary(conv.server, conv.ipVersion);
      const sender = fromClient ? 'client' : 'server';
      const key = `${hostPort(server)}/${sender}`;
      return groups.obtain(key, () => new Group(key, sender, endpointSummary(conv.client, conv.ipVersion), server));
    };

    /** Keeps one sample for a median, within the per-group and overall bounds. */
    const sample = (list: number[], value: number): void => {
      if (list.length >= MAX_SAMPLES) samples.refuse();
      else if (samples.take()) list.push(value);
    };

    /** Settles whether the last probe of a side was answered (at its next probe or the end). */
    const settle = (conv: Conversation, side: SideProbes, fromClient: boolean, group: Group): boolean => {
      const peer = fromClient ? conv.server : conv.client;
      const answered = nonResetPackets(peer) > side.peerQuietAtLast;
      if (answered) group.answered++;
      else group.unanswered++;
      return answered;
    };

    const emit = (group: Group): void => {
      if (group.probes < thresholds.minProbes) return;
      const interval = group.intervals.length > 0 ? median(group.intervals) : NaN;
      const afterData = median(group.afterData);
      const period = median(group.periods);
      const retry = median(group.retryIntervals);
      const gapGroup = gapBook.groups.get(group.server.ip);
      const bracket = gapGroup !== undefined && gapGroup.failedCount > 0 ? bracketOf(gapGroup) : null;
      let versus: 'shorter' | 'longer' | 'inside' | 'unknown' = 'unknown';
      if (bracket !== null && Number.isFinite(period)) {
        if (bracket.low !== null && period <= bracket.low) versus = 'shorter';
        else if (bracket.high !== null && period >= bracket.high) versus = 'longer';
        else versus = 'inside';
      }
      const longerThan = Number.isFinite(period) ? MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.refreshedByKeepalive && d.seconds < period) : [];
      const settled = group.answered + group.unanswered;
      const parts = [
        `The ${group.sender} sent ${plural(group.probes, 'TCP keep-alive probe')} on ${plural(group.conversationCount, 'conversation')} with ${hostPort(group.server)}`,
        `, each after ${humanSeconds(period)} of silence (median): its TCP_KEEPIDLE.`,
        Number.isFinite(interval) ? ` Consecutive probes came ${humanSeconds(interval)} apart (median).` : '',
        settled > 0 ? ` ${group.answered} of ${settled} were answered by the peer.` : '',
        Number.isFinite(retry) ? ` Unanswered probes were repeated after ${humanSeconds(retry)} (TCP_KEEPINTVL): the peer or the path stopped answering.` : '',
      ];
      if (bracket !== null && bracket.high !== null) {
        const range = bracket.low === null ? `at most ${humanSeconds(bracket.high)}` : `between ${humanSeconds(bracket.low)} and ${humanSeconds(bracket.high)}`;
        const verdict = versus === 'longer'
          ? 'the probes come too rarely to keep the connection alive through it'
          : versus === 'shorter'
            ? 'the probes come often enough'
            : 'the probe period lies inside the bracket, so it may or may not be short enough';
        parts.push(` Idle connections to ${group.server.ip} fail after an idle timeout ${range} in this capture: ${verdict}.`);
      } else if (longerThan.length > 0) {
        parts.push(` That period is longer than ${longerThan.map((d) => `${d.name} (${humanSeconds(d.seconds)})`).join(', ')}: probes would not keep such a path alive.`);
      }
      report({
        key: group.key,
        severity: 'info',
        title: `TCP keep-alive from the ${group.sender} every ${humanSeconds(period)}: ${hostPort(group.server)}`,
        conversations: group.conversations,
        client: group.conversationCount === 1 ? group.client : null,
        server: group.server,
        start: group.firstTime,
        end: group.lastTime,
        evidence: {
          sender: group.sender,
          server: hostPort(group.server),
          conversations: group.conversationCount,
          probes: group.probes,
          answeredProbes: group.answered,
          unansweredProbes: group.unanswered,
          medianIntervalSeconds: Number.isFinite(interval) ? round(interval) : null,
          minIntervalSeconds: group.intervals.length > 0 ? round(Math.min(...group.intervals)) : null,
          maxIntervalSeconds: group.intervals.length > 0 ? round(Math.max(...group.intervals)) : null,
          medianAfterDataSeconds: Number.isFinite(afterData) ? round(afterData) : null,
          periodSeconds: round(period),
          retryIntervalSeconds: Number.isFinite(retry) ? round(retry) : null,
          firstProbeFrame: group.firstFrame,
          firstProbeTime: round(group.firstTime),
          idleTimeoutBracket: bracket === null ? null : { low: bracket.low === null ? null : round(bracket.low), high: bracket.high === null ? null : round(bracket.high) },
          intervalVsIdleTimeout: versus,
          longerThanKnownDefaults: longerThan.map((d) => d.name),
        },
        explanation: parts.join(''),
        advice: keepalive.advice,
      });
    };

    return {
      interest: IDLE_GAP_INTEREST,
      onSegment(conv: Conversation, seg: Segment) {
        const isProbe = (seg.notes & Note.KeepAlive) !== 0;
        let state = conv.scratch[slot] as State | undefined;
        if (state === undefined) {
          if (!isProbe && seg.idleBefore < gapBook.minimumGap) return;
          state = stateOf(conv);
        }
        gapBook.onSegment(state.gaps, conv, seg);
        if (!isProbe) {
          if (state.sides === null && state.gaps.idle) conv.scratch[slot] = undefined;
          return;
        }
        state.sides ??= [new SideProbes(), new SideProbes()];
        const side = state.sides[seg.fromClient ? 0 : 1];
        // Silence of the application: since the last data either side sent (or the handshake).
        let lastData = Math.max(conv.client.advancedTime, conv.server.advancedTime);
        if (lastData < 0) lastData = conv.establishedTime >= 0 ? conv.establishedTime : conv.start;
        // Keep-alive shaped but too soon after data, or right after the previous probe: a copy of an
        // old ACK from a duplicating capture (mirror port, several interfaces), not a probe.
        if (seg.time - lastData < thresholds.minIdleSeconds) return;
        if (side.lastTime >= 0 && seg.time - side.lastTime < DUPLICATE_SECONDS) return;
        const group = groupOf(conv, seg.fromClient);
        if (group === null) return;
        let answered = true;
        if (side.probes === 0) {
          group.conversationCount++;
          if (group.conversations.length < 64) group.conversations.push(conv.id);
        } else {
          answered = settle(conv, side, seg.fromClient, group);
        }
        if (side.lastTime < 0 || lastData > side.lastTime) {
          // Data since the previous probe (or none yet): the silence since that data.
          sample(group.afterData, seg.time - lastData);
          sample(group.periods, seg.time - lastData);
        } else {
          const interval = seg.time - side.lastTime;
          sample(group.intervals, interval);
          sample(answered ? group.periods : group.retryIntervals, interval);
        }
        side.probes++;
        side.lastTime = seg.time;
        side.peerQuietAtLast = nonResetPackets(seg.fromClient ? conv.server : conv.client);
        group.probes++;
        if (group.firstTime < 0) {
          group.firstTime = seg.time;
          group.firstFrame = seg.frame;
        }
        group.lastTime = seg.time;
        // Report at the first probe (live capture), then as the group grows.
        emit(group);
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined) return;
        gapBook.onFinalize(state.gaps, conv);
        if (state.sides === null) return;
        for (let i = 0; i < 2; i++) {
          const side = state.sides[i];
          const group = side.probes > 0 ? groupOf(conv, i === 0) : null;
          if (group !== null) settle(conv, side, i === 0, group);
        }
      },
      finish() {
        for (const group of groups.values()) emit(group);
      },
    };
  },
};
