import { TcpFlag } from '../../decode/packet.js';
import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { type EndpointSummary, endpointSummary, hostPort } from '../../flow/summary.js';
import type { DetectorSpec } from '../detector.js';
import { CappedGroups, maxServersThreshold } from '../capped.js';
import { humanSeconds, median, round } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  minSynRetransmissions: number;
  minRetryIntervalSeconds: number;
  maxServers: number;
};

/** SYN times kept per attempt: Linux sends tcp_syn_retries + 1 = 7 by default. */
const MAX_SYNS = 32;
/** Conversation ids and latencies kept per server. */
const MAX_KEPT = 64;
/** Client addresses counted per server (evidence `clients`). */
const MAX_CLIENTS = 1024;

/** 'inferred': no SYN-ACK in the capture, but the conversation went on, so one was received. */
type Outcome = 'pending' | 'syn-ack' | 'inferred' | 'refused' | 'time-wait-ack';

/** One connection attempt: a client's SYN and its retransmissions until an answer. */
class Attempt {
  /**
   * Literals holding the first SYN: an empty array's first push reserves room for 16, and an
   * attempt lives as long as its conversation (through the TIME_WAIT linger), mostly with one SYN.
   */
  readonly synTimes: number[];
  readonly synFrames: number[];
  /** SYNs sent before any answer (the count goes on past MAX_SYNS). */
  syns = 0;
  lastSynTime = -1;
  outcome: Outcome = 'pending';
  answerTime = -1;
  answerFrame = 0;
  group: ServerGroup;
  conversation: number;
  constructor(group: ServerGroup, conversation: number, synTime: number, synFrame: number) {
    this.group = group;
    this.conversation = conversation;
    this.synTimes = [synTime];
    this.synFrames = [synFrame];
  }
  get retransmissions(): number {
    return this.syns - 1;
  }
}

/** Connection attempts to one server ip:port. */
class ServerGroup {
  attempts = 0;
  answeredFirstTry = 0;
  succeededAfterRetries = 0;
  unanswered = 0;
  /** Unanswered attempts that retransmitted their SYN at least minSynRetransmissions times. */
  unansweredRetried = 0;
  refused = 0;
  /** Refused attempts whose SYN had been retransmitted first (dropped, then refused). */
  refusedAfterRetries = 0;
  /** Answered by a TIME_WAIT socket's ACK, then retried (left to the TIME_WAIT detector). */
  timeWaitAnswered = 0;
  /** Answered attempts whose SYN-ACK is not in the capture (the conversation went on without it). */
  answerNotCaptured = 0;
  /** SYN retransmissions sent before any answer, over all attempts. */
  synRetransmissions = 0;
  readonly retriedLatencies: { conversation: number; seconds: number; syns: number }[] = [];
  /** The unanswered or retried attempt with the most SYNs: its retry intervals show the kernel's pattern. */
  worst: Attempt | null = null;
  /** Attempts still open that retransmitted enough and got no answer yet; open attempts already answered. */
  pendingRetried = 0;
  liveAnswered = 0;
  readonly problemConversations: number[] = [];
  firstProblemTime = -1;
  lastTime = -1;
  client: EndpointSummary | null = null;
  /** Client addresses of its problem attempts: created with the first (a scan makes a group per SYN). */
  clients: Set<string> | null = null;
  constructor(readonly key: string, readonly server: EndpointSummary) {}
}

/** Describes consecutive SYN intervals: Linux 6.5+ keeps tcp_syn_linear_timeouts 1 s retries before doubling. */
export function synRetryPattern(intervals: readonly number[]): { pattern: string; text: string } {
  const list = intervals.map((s) => humanSeconds(s)).join(', ');
  if (intervals.length === 0) return { pattern: 'none', text: 'no retransmission' };
  if (intervals.length === 1) return { pattern: 'single', text: `one retry after ${list}` };
  const base = intervals[0];
  const near = (a: number, b: number) => Math.abs(a - b) <= 0.25 * b;
  let linear = 1;
  while (linear < intervals.length && near(intervals[linear], base)) linear++;
  let doubling = true;
  for (let i = Math.max(linear, 1); i < intervals.length; i++) {
    const ratio = intervals[i] / intervals[i - 1];
    if (ratio < 1.6 || ratio > 2.5) doubling = false;
  }
  if (linear === intervals.length) {
    return { pattern: 'linear', text: `${intervals.length} intervals of ${humanSeconds(base)} (${list}): Linux 6.5+ linear SYN timeouts (net.ipv4.tcp_syn_linear_timeouts), doubling not reached` };
  }
  if (doubling && linear >= 2) {
    // The first interval is the initial RTO; each further equal one is a backoff left undoubled.
    return { pattern: 'linear-then-doubling', text: `${linear} intervals of ${humanSeconds(base)}, then doubling (${list}): Linux 6.5+ with net.ipv4.tcp_syn_linear_timeouts=${linear - 1}` };
  }
  if (doubling) return { pattern: 'doubling', text: `intervals doubling from ${humanSeconds(base)} (${list}): classic exponential SYN backoff (Linux before 6.5, other systems)` };
  return { pattern: 'irregular', text: `intervals ${list}` };
}

export const synUnanswered: DetectorSpec<Thresholds> = {
  id: 'syn-unanswered',
  title: 'SYNs retransmitted without answer',
  severity: 'warning',
  summary: 'Clients re-send SYNs that get no SYN-ACK: a full listen backlog, a filtered port or a host that is down.',
  explanation: [
    'A client that gets no SYN-ACK re-sends its SYN after 1 s (Linux, RFC 6298), then keeps a 1 s',
    'interval for tcp_syn_linear_timeouts = 4 retries (Linux 6.5+) or doubles it each time (older',
    'kernels and most other systems), tcp_syn_retries = 6 times (127 s, or about 11 s with linear',
    'timeouts) before connect() fails with ETIMEDOUT. Silence means the SYN was dropped: by a firewall',
    'or security group, by a server whose accept queue (listen backlog) is full, or because the host',
    'is down; a refusal (RST) would mean the host is up with nothing listening. Per server (ip:port)',
    'this detector counts attempts, those answered at once, those answered only after SYN',
    'retransmissions (with their connect latency, first SYN to SYN-ACK), those never answered, and',
    'those refused, and describes the retry intervals seen. Attempts whose SYN was answered by a',
    'TIME_WAIT socket\'s ACK are left to the TIME_WAIT detector; refusals count for reset-ratio.',
  ].join(' '),
  evidence: {
    server: 'the server ip:port',
    attempts: 'connection attempts (first SYNs) seen to it',
    answeredFirstTry: 'attempts whose first SYN was answered',
    succeededAfterRetries: 'attempts answered only after SYN retransmissions',
    unanswered: 'attempts that never got a SYN-ACK or RST in the capture',
    refused: 'attempts answered by an RST (connection refused)',
    refusedAfterRetries: 'refused attempts whose SYN had been retransmitted before the RST',
    answerNotCaptured: 'answered attempts whose SYN-ACK is missing from the capture (the client went on); their latency runs to the client\'s next packet seen',
    synRetransmissions: 'SYNs re-sent before any answer, over all attempts',
    connectLatencySeconds: 'first SYN to SYN-ACK of the attempts answered after retries (up to 64)',
    medianConnectLatencySeconds: 'their median',
    retryIntervalsSeconds: 'intervals between the SYNs of the attempt with the most retries',
    retryPattern: 'linear, linear-then-doubling, doubling, single or irregular',
    worstAttempt: 'that attempt: conversation, SYN frames, outcome',
    clients: 'distinct client addresses that tried',
  },
  thresholds: {
    minSynRetransmissions: { default: 1, unit: 'SYNs', description: 'SYN retransmissions in one attempt before it counts as a problem' },
    minRetryIntervalSeconds: { default: 0.25, unit: 's', description: 'a SYN closer than this to the previous one is a copy from a duplicating capture (mirror port, several interfaces, NFLOG), not a retry (SYN RTOs start at 1 s)' },
    // A scan or a SYN flood to many addresses makes one group per server: when the table is full the
    // groups with nothing to report are forgotten, and if that frees too little, new servers are not followed.
    maxServers: maxServersThreshold('servers (ip:port) receiving SYNs'),
  },
  advice: [
    'Server side, a full accept queue: raise the listen() backlog in the service and net.core.somaxconn (default 4096 on Linux 5.4+, 128 before), net.ipv4.tcp_max_syn_backlog, keep net.ipv4.tcp_syncookies=1; check `nstat -az TcpExtListenOverflows TcpExtListenDrops` and `ss -ltn` (Recv-Q against Send-Q) on the server, and whether the application accepts fast enough.',
    'Path: a firewall, security group or network ACL dropping the SYNs (allow the port from this client), or the host or service is down (check the health of the target and the route to it).',
    'Client side: with no answer, connect() hangs for tcp_syn_retries (default 6: 127 s, or ~11 s with Linux 6.5+ linear timeouts); set an application connect timeout of a few seconds and retry on another backend.',
  ],
  create({ thresholds, slot, report, cap }) {
    const groups = new CappedGroups<ServerGroup>(cap(thresholds.maxServers, 'servers receiving SYNs followed', 'connection attempts to further servers not analysed'));
    const clientsKept = cap(MAX_CLIENTS, 'client addresses counted per server', 'problem attempts from client addresses past that count not told apart');
    /** Set when forgetting quiet groups freed too little: sweeping again would cost per packet. */
    let sweepFutile = false;
    const forgetQuiet = (): void => {
      for (const [key, group] of groups.entries()) {
        if (group.problemConversations.length === 0 && group.pendingRetried === 0) groups.delete(key);
      }
      if (groups.size > thresholds.maxServers / 2) sweepFutile = true;
    };

    // An attempt without any retransmission is never a problem here (a scan, or the capture ended).
    const minRetransmissions = Math.max(1, thresholds.minSynRetransmissions);
    const isProblem = (a: Attempt): boolean => a.retransmissions >= minRetransmissions;

    const emit = (group: ServerGroup): void => {
      const unanswered = group.unanswered + group.pendingRetried;
      const unansweredRetried = group.unansweredRetried + group.pendingRetried;
      // Once reported live, an attempt stays a problem whatever its end: its SYNs did go unanswered.
      if (unansweredRetried === 0 && group.succeededAfterRetries === 0 && group.refusedAfterRetries === 0) return;
      const everAnswered = group.answeredFirstTry + group.succeededAfterRetries + group.refused + group.timeWaitAnswered +
        group.answerNotCaptured + group.liveAnswered > 0;
      const critical = !everAnswered && unansweredRetried > 0;
      const worst = group.worst as Attempt;
      const intervals: number[] = [];
      for (let i = 1; i < worst.synTimes.length; i++) intervals.push(worst.synTimes[i] - worst.synTimes[i - 1]);
      const pattern = synRetryPattern(intervals);
      const latency = median(group.retriedLatencies.map((l) => l.seconds));
      const server = hostPort(group.server);
      const parts: string[] = [];
      if (unansweredRetried > 0) {
        parts.push(`${unanswered} of ${plural(group.attempts, 'connection attempt')} to ${server} never got a SYN-ACK${critical ? ', and nothing in this capture ever answered this server' : ''}.`);
      }
      if (group.succeededAfterRetries > 0) {
        parts.push(`${group.succeededAfterRetries} attempt${group.succeededAfterRetries === 1 ? ' was' : 's were'} answered only after SYN retransmissions${Number.isFinite(latency) ? `, connecting in ${humanSeconds(latency)} (median) instead of one round trip` : ''}.`);
      }
      parts.push(`The worst attempt (conversation ${worst.conversation}) sent ${worst.syns} SYNs: ${pattern.text}.`);
      if (group.refused > 0) {
        const after = group.refusedAfterRetries > 0 ? `, ${group.refusedAfterRetries} of them after unanswered SYN retransmissions` : '';
        parts.push(`${group.refused} attempt${group.refused === 1 ? ' was' : 's were'} refused with an RST${after} (see reset-ratio).`);
      }
      if (group.answeredFirstTry > 0) parts.push(`${group.answeredFirstTry} got a SYN-ACK to their first SYN.`);
      parts.push(critical
        ? 'Silence from the first SYN on points at a firewall or security group dropping SYNs, or a host that is down.'
        : 'SYNs dropped while others are answered point at a listen backlog that overflows under load, or at drops on the path.');
      report({
        key: server,
        severity: critical ? 'critical' : 'warning',
        title: critical
          ? `No answer to ${plural(group.attempts, 'connection attempt')}: ${server}`
          : `SYNs to ${server} dropped: ${[
            unanswered > 0 ? `${unanswered} never answered` : '',
            group.succeededAfterRetries > 0 ? `${group.succeededAfterRetries} answered only after retries${Number.isFinite(latency) ? ` (${humanSeconds(latency)})` : ''}` : '',
            group.refusedAfterRetries > 0 ? `${group.refusedAfterRetries} refused after retries` : '',
          ].filter((p) => p !== '').join(', ')} of ${plural(group.attempts, 'attempt')}`,
        conversations: group.problemConversations,
        client: group.clients?.size === 1 ? group.client : null,
        server: group.server,
        start: group.firstProblemTime,
        end: group.lastTime,
        evidence: {
          server,
          attempts: group.attempts,
          answeredFirstTry: group.answeredFirstTry,
          succeededAfterRetries: group.succeededAfterRetries,
          unanswered,
          refused: group.refused,
          refusedAfterRetries: group.refusedAfterRetries,
          answerNotCaptured: group.answerNotCaptured,
          synRetransmissions: group.synRetransmissions,
          connectLatencySeconds: group.retriedLatencies.map((l) => round(l.seconds)),
          medianConnectLatencySeconds: Number.isFinite(latency) ? round(latency) : null,
          retryIntervalsSeconds: intervals.map(round),
          retryPattern: pattern.pattern,
          worstAttempt: {
            conversation: worst.conversation,
            syns: worst.syns,
            synFrames: worst.synFrames,
            firstSynTime: round(worst.synTimes[0]),
            outcome: worst.outcome === 'pending' ? 'unanswered' : worst.outcome === 'inferred' ? 'answered (SYN-ACK not captured)' : worst.outcome,
            answerFrame: worst.outcome === 'pending' || worst.answerFrame === 0 ? null : worst.answerFrame,
          },
          clients: group.clients?.size ?? 0,
        },
        explanation: parts.join(' '),
        advice: critical ? [synUnanswered.advice[1], synUnanswered.advice[2]] : synUnanswered.advice,
      });
    };

    const noteProblem = (group: ServerGroup, attempt: Attempt, conv: Conversation): void => {
      if (group.problemConversations.length < MAX_KEPT && !group.problemConversations.includes(attempt.conversation)) {
        group.problemConversations.push(attempt.conversation);
      }
      if (group.firstProblemTime < 0 || attempt.synTimes[0] < group.firstProblemTime) group.firstProblemTime = attempt.synTimes[0];
      const client = endpointSummary(conv.client, conv.ipVersion);
      if (group.client === null) group.client = client;
      group.clients ??= new Set();
      if (group.clients.size < MAX_CLIENTS) group.clients.add(client.ip);
      else if (!group.clients.has(client.ip)) clientsKept.refuse();
      if (group.worst === null || attempt.syns > group.worst.syns) group.worst = attempt;
    };

    return {
      interest: Note.NewData | Note.SynRetransmission | Note.Reset | Note.AckOfPreviousConversation,
      onSegment(conv: Conversation, seg: Segment) {
        const syn = (seg.flags & TcpFlag.SYN) !== 0;
        let attempt = conv.scratch[slot] as Attempt | undefined;
        if (attempt === undefined) {
          // A connection attempt starts at the client's first SYN; conversations joined midstream have none.
          if (!syn || !seg.fromClient || (seg.flags & TcpFlag.ACK) !== 0 || (seg.notes & Note.NewData) === 0) return;
          const server = endpointSummary(conv.server, conv.ipVersion);
          const key = hostPort(server);
          if (groups.full && !sweepFutile && groups.get(key) === undefined) forgetQuiet();
          const group = groups.obtain(key, () => new ServerGroup(key, server));
          if (group === null) return;
          group.attempts++;
          attempt = new Attempt(group, conv.id, seg.time, seg.frame);
          conv.scratch[slot] = attempt;
        }
        const group = attempt.group;
        group.lastTime = seg.time;
        if (attempt.outcome !== 'pending') return;
        if (seg.fromClient) {
          if (syn && (seg.flags & TcpFlag.ACK) === 0) {
            if (attempt.syns > 0 && seg.time - attempt.lastSynTime < thresholds.minRetryIntervalSeconds) return;
            attempt.syns++;
            attempt.lastSynTime = seg.time;
            if (attempt.syns > 1 && attempt.synTimes.length < MAX_SYNS) {
              attempt.synTimes.push(seg.time);
              attempt.synFrames.push(seg.frame);
            }
            if (attempt.syns > 1) {
              group.synRetransmissions++;
              if (attempt.retransmissions === minRetransmissions) group.pendingRetried++;
              if (isProblem(attempt)) {
                noteProblem(group, attempt, conv);
                // Report while the client is still retrying (live capture), then update.
                emit(group);
              }
            }
          }
          // Anything else from the client but an RST means it received a SYN-ACK the capture missed.
          if (syn || (seg.notes & Note.Reset) !== 0) return;
          attempt.outcome = 'inferred';
        } else if (syn && (seg.flags & TcpFlag.ACK) !== 0) attempt.outcome = 'syn-ack';
        else if ((seg.notes & Note.Reset) !== 0) attempt.outcome = 'refused';
        else if ((seg.notes & Note.AckOfPreviousConversation) !== 0) attempt.outcome = 'time-wait-ack';
        else attempt.outcome = 'inferred';
        if (isProblem(attempt)) group.pendingRetried--;
        group.liveAnswered++;
        attempt.answerTime = seg.time;
        attempt.answerFrame = seg.frame;
      },
      onFinalize(conv: Conversation) {
        const attempt = conv.scratch[slot] as Attempt | undefined;
        if (attempt === undefined) return;
        const group = attempt.group;
        if (attempt.outcome !== 'pending') group.liveAnswered--;
        else if (isProblem(attempt)) group.pendingRetried--;
        if (conv.end > group.lastTime) group.lastTime = conv.end;
        if (attempt.outcome === 'pending') {
          // Packets the detector is not shown (a pure ACK has no note) still show the handshake went on.
          const client = conv.client;
          const server = conv.server;
          if (client.packets - client.syns - client.rsts > 0 || server.packets - server.rsts > 0) attempt.outcome = 'inferred';
        }
        switch (attempt.outcome) {
          case 'syn-ack':
          case 'inferred': {
            if (attempt.outcome === 'inferred') group.answerNotCaptured++;
            if (!isProblem(attempt)) {
              group.answeredFirstTry++;
              break;
            }
            group.succeededAfterRetries++;
            // Without the SYN-ACK the latency is only known up to the client's next packet seen.
            const seconds = attempt.outcome === 'syn-ack' || attempt.answerTime >= 0 ? attempt.answerTime - attempt.synTimes[0] : NaN;
            if (group.retriedLatencies.length < MAX_KEPT && Number.isFinite(seconds)) {
              group.retriedLatencies.push({ conversation: conv.id, seconds, syns: attempt.syns });
            }
            noteProblem(group, attempt, conv);
            emit(group);
            break;
          }
          case 'refused':
            group.refused++;
            if (isProblem(attempt)) {
              group.refusedAfterRetries++;
              noteProblem(group, attempt, conv);
              emit(group);
            }
            break;
          case 'time-wait-ack':
            group.timeWaitAnswered++;
            break;
          case 'pending': {
            group.unanswered++;
            if (isProblem(attempt)) {
              group.unansweredRetried++;
              noteProblem(group, attempt, conv);
              emit(group);
            }
            break;
          }
        }
      },
      finish() {
        for (const group of groups.values()) emit(group);
      },
    };
  },
};
