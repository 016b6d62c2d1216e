import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { seqGt } from '../../flow/seq.js';
import type { DetectorSpec } from '../detector.js';
import { idleTimeoutsBetween, LINUX_TCP_RETRIES2, linuxGiveUpSeconds, MIDDLEBOX_IDLE_TIMEOUTS } from '../knowledge.js';
import { endpointsOf, humanSeconds, median, round, tupleText } from '../util.js';

type Thresholds = {
  minRetransmits: number;
  criticalRetransmits: number;
  minBackoff: number;
  longIdleSeconds: number;
};

/** Retransmission times kept per storm: Linux gives up after tcp_retries2 + a tail-loss probe. */
const MAX_TIMES = 64;

/** One direction's unacknowledged-data stall, from its original send to ACK progress or the end. */
class Storm {
  seq = 0;
  originalTime = -1;
  originalFrame = 0;
  idleBefore = 0;
  readonly times: number[] = [];
  readonly frames: number[] = [];
  count = 0;
  recoveredTime = -1;
  fin = false;
}

/** Per conversation: the storm in progress per direction and the last new data sent per direction. */
class State {
  readonly storms: [Storm | null, Storm | null] = [null, null];
  readonly lastNewSeq = [0, 0];
  readonly lastNewTime = [-1, -1];
  readonly lastNewFrame = [0, 0];
  readonly lastNewIdle = [0, 0];
  /**
   * Storms already reported and over, per direction, so a later storm in the same direction gets
   * its own key. Per direction: a shared count let one direction's finished storm move the key of
   * the other direction's storm in progress, which then appeared twice (early and final report).
   */
  readonly reported = [0, 0];
}

export const retransmitStorm: DetectorSpec<Thresholds> = {
  id: 'retransmit-storm',
  title: 'Retransmission backoff storm',
  severity: 'critical',
  summary: 'The same unacknowledged data sent again and again with doubling intervals: the path or the peer is gone.',
  explanation: [
    'A TCP sender that gets no acknowledgement re-sends its oldest unacknowledged segment when its',
    'retransmission timer expires, doubling the timer each time (exponential backoff, RFC 6298). Linux',
    'keeps this up for tcp_retries2 = 15 retransmissions: about 924.6 s (15 min 25 s) from a 200 ms RTO,',
    'and then gives up without sending anything, so the application sees its request hang for a quarter',
    'of an hour (the classic case: a Redis SET that took 15 min 31 s). When the data went out after a long',
    'idle period, the usual cause is a NAT, firewall or load balancer that expired the idle connection',
    'and now drops (or answers nothing to) its packets. This detector follows each direction of each',
    'conversation: a run of retransmissions of the same sequence number with no ACK progress from the',
    'peer, at least minRetransmits long, is a storm; the ratio between consecutive intervals shows the',
    'backoff. On Linux the first re-send of a lost tail segment is often a tail-loss probe (~2 RTT), the RTO',
    'retransmission follows, and doubling starts from there. SYN retries are left to syn-unanswered.',
  ].join(' '),
  evidence: {
    direction: 'which side is retransmitting (client or server)',
    seq: 'relative sequence number of the stalled segment (FIN when it is a lone FIN)',
    originalFrame: 'frame of the original transmission, when the capture has it',
    frames: 'frames of each retransmission',
    times: 'capture times of each retransmission (seconds since the epoch)',
    intervalsSeconds: 'time between consecutive transmissions, starting from the original',
    backoffFactor: 'median ratio between consecutive intervals (2 for RTO doubling)',
    idleBeforeSeconds: 'silence in both directions before the original transmission',
    peerHeardAfter: 'whether the peer sent anything after the first retransmission',
    coveredSeconds: 'from the original transmission to the last retransmission seen',
    initialRtoSeconds: 'the first RTO interval observed (after any tail-loss probe)',
    projectedGiveUpSeconds: 'when Linux with tcp_retries2 = 15 would give up, from the original send',
    recovered: 'whether the peer finally acknowledged the data',
  },
  thresholds: {
    minRetransmits: { default: 3, unit: 'segments', description: 'retransmissions of the same data before it is a storm' },
    criticalRetransmits: { default: 5, unit: 'segments', description: 'retransmissions after which an unrecovered storm is critical' },
    minBackoff: { default: 1.5, unit: 'ratio', description: 'median interval ratio that counts as exponential backoff' },
    longIdleSeconds: { default: 30, unit: 's', description: 'idle gap before the original send that points at an idle timeout' },
  },
  advice: [
    'If the connection sat idle first: enable TCP keepalive (or application heartbeats) with an interval below every middlebox idle timeout on the path, e.g. Redis `tcp-keepalive 60`, or SO_KEEPALIVE with TCP_KEEPIDLE below the timeout. Keepalive probes refresh L4 flow tables (NLB, NAT gateways, conntrack) but not L7 balancers (ALB/ELB), which need payload bytes.',
    'Fail fast instead of hanging for 15 minutes: set TCP_USER_TIMEOUT on the socket (HAProxy `tcp-ut`), or lower net.ipv4.tcp_retries2 (e.g. 5-8) on clients.',
    'Find the device that dropped the packets: capture on the far side too and run `connscope correlate`.',
  ],
  create({ thresholds, slot, report }) {
    const stateOf = (conv: Conversation): State => {
      let state = conv.scratch[slot] as State | undefined;
      if (state === undefined) {
        state = new State();
        conv.scratch[slot] = state;
      }
      return state;
    };

    const emit = (conv: Conversation, storm: Storm, direction: 0 | 1, state: State): void => {
      if (storm.count < thresholds.minRetransmits) return;
      const sender = direction === 0 ? conv.client : conv.server;
      const peer = direction === 0 ? conv.server : conv.client;
      const peerHeardAfter = peer.lastTime > storm.times[0];
      const sendTimes = storm.originalTime >= 0 ? [storm.originalTime, ...storm.times] : storm.times;
      const intervals: number[] = [];
      for (let i = 1; i < sendTimes.length; i++) intervals.push(sendTimes[i] - sendTimes[i - 1]);
      const ratios: number[] = [];
      for (let i = 1; i < intervals.length; i++) if (intervals[i - 1] > 0) ratios.push(intervals[i] / intervals[i - 1]);
      // A tail-loss probe makes the first interval short and the second ratio ~1: skip it so the
      // RTO doubling that follows is what is measured.
      const backoff = median(ratios.length > 2 ? ratios.slice(1) : ratios);
      const initialRto = intervals.length > 2 && ratios.length > 0 && ratios[0] < thresholds.minBackoff ? intervals[1] : intervals[0];
      const recovered = storm.recoveredTime >= 0;
      const start = sendTimes[0];
      const last = storm.times[storm.times.length - 1];
      const giveUp = Number.isFinite(initialRto) ? linuxGiveUpSeconds(initialRto) : NaN;
      const idleLong = storm.originalTime >= 0 && storm.idleBefore >= thresholds.longIdleSeconds;
      const who = direction === 0 ? 'client' : 'server';
      const what = storm.fin ? 'its FIN' : 'the same unacknowledged data';
      const parts = [
        `The ${who} sent ${what} ${storm.count} more times over ${humanSeconds(last - start)}`,
        Number.isFinite(backoff) ? `with intervals growing ${backoff.toFixed(2)}x each time (RTO backoff)` : '',
        recovered
          ? `until the peer finally acknowledged it after ${humanSeconds(storm.recoveredTime - start)}.`
          : `and ${peerHeardAfter ? 'the peer sent nothing that acknowledged it' : 'never heard from the peer again'}.`,
      ];
      if (!recovered && Number.isFinite(giveUp)) {
        parts.push(`With the initial RTO of ${humanSeconds(initialRto)} seen here and tcp_retries2 = ${LINUX_TCP_RETRIES2}, Linux gives up ${humanSeconds(giveUp)} after the first send: that is how long the application waits.`);
      }
      if (idleLong) {
        const matching = idleTimeoutsBetween(0, storm.idleBefore).map((d) => `${d.name} ${humanSeconds(d.seconds)}`);
        parts.push(`The connection had been idle for ${humanSeconds(storm.idleBefore)} before this send: a NAT, firewall or load balancer on the path most likely expired it and now drops its packets${matching.length > 0 ? ` (idle timeouts shorter than this gap: ${matching.join(', ')})` : ''}.`);
      }
      const { client, server } = endpointsOf(conv);
      const critical = !recovered && (storm.count >= thresholds.criticalRetransmits || !peerHeardAfter);
      report({
        key: `${conv.id}/${who}/${state.reported[direction]}`,
        severity: recovered ? 'warning' : critical ? 'critical' : 'warning',
        title: `${storm.fin ? 'FIN' : 'Data'} retransmitted ${storm.count} times with backoff${idleLong ? ` after ${humanSeconds(storm.idleBefore)} idle` : ''}: ${tupleText(conv)}`,
        conversations: [conv.id],
        client,
        server,
        start,
        end: recovered ? storm.recoveredTime : last,
        evidence: {
          direction: who,
          seq: storm.fin ? 'FIN' : sender.isnKnown ? (storm.seq - sender.isn) >>> 0 : storm.seq,
          originalFrame: storm.originalTime >= 0 ? storm.originalFrame : null,
          retransmissions: storm.count,
          frames: storm.frames,
          times: storm.times.map(round),
          intervalsSeconds: intervals.map(round),
          backoffFactor: Number.isFinite(backoff) ? round(backoff) : null,
          idleBeforeSeconds: storm.originalTime >= 0 ? round(storm.idleBefore) : null,
          peerHeardAfter: peerHeardAfter,
          coveredSeconds: round(last - start),
          initialRtoSeconds: Number.isFinite(initialRto) ? round(initialRto) : null,
          projectedGiveUpSeconds: Number.isFinite(giveUp) ? round(giveUp) : null,
          recovered,
          knownIdleTimeouts: idleLong ? MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.seconds <= storm.idleBefore).map((d) => d.name) : [],
        },
        explanation: parts.filter((p) => p !== '').join(' '),
        advice: idleLong ? retransmitStorm.advice : retransmitStorm.advice.slice(1),
      });
    };

    const endStorm = (conv: Conversation, state: State, direction: 0 | 1): void => {
      const storm = state.storms[direction];
      if (storm === null) return;
      if (storm.count >= thresholds.minRetransmits) {
        emit(conv, storm, direction, state);
        state.reported[direction]++;
      }
      state.storms[direction] = null;
    };

    return {
      interest: Note.NewData | Note.Retransmission | Note.AckProgress,
      onSegment(conv: Conversation, seg: Segment) {
        const state = stateOf(conv);
        const direction = seg.fromClient ? 0 : 1;
        const other = direction === 0 ? 1 : 0;
        // The peer acknowledging past the stalled sequence ends that direction's storm.
        const opposing = state.storms[other];
        if (opposing !== null && (seg.notes & Note.AckProgress) !== 0 && seqGt(seg.ack, opposing.seq)) {
          opposing.recoveredTime = seg.time;
          endStorm(conv, state, other);
        }
        if ((seg.notes & Note.NewData) !== 0) {
          state.lastNewSeq[direction] = seg.seq;
          state.lastNewTime[direction] = seg.time;
          state.lastNewFrame[direction] = seg.frame;
          state.lastNewIdle[direction] = seg.idleBefore;
          return;
        }
        if ((seg.notes & Note.Retransmission) === 0 || (seg.notes & Note.SynRetransmission) !== 0) return;
        let storm = state.storms[direction];
        if (storm !== null && storm.seq !== seg.seq) {
          endStorm(conv, state, direction);
          storm = null;
        }
        if (storm === null) {
          storm = new Storm();
          storm.seq = seg.seq;
          storm.fin = seg.payloadLength === 0 && (seg.notes & Note.Fin) !== 0;
          if (state.lastNewTime[direction] >= 0 && state.lastNewSeq[direction] === seg.seq) {
            storm.originalTime = state.lastNewTime[direction];
            storm.originalFrame = state.lastNewFrame[direction];
            storm.idleBefore = state.lastNewIdle[direction];
          }
          state.storms[direction] = storm;
        }
        storm.count++;
        if (storm.times.length < MAX_TIMES) {
          storm.times.push(seg.time);
          storm.frames.push(seg.frame);
        }
        // Report as soon as it is a storm (live capture), then update as it grows.
        if (storm.count >= thresholds.minRetransmits) emit(conv, storm, direction, state);
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined) return;
        endStorm(conv, state, 0);
        endStorm(conv, state, 1);
      },
    };
  },
};
