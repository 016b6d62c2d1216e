import { TcpFlag } from '../../decode/packet.js';
import type { Conversation, Endpoint } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { seqGt } from '../../flow/seq.js';
import type { DetectorSpec } from '../detector.js';
import { idleTimeoutsBetween, LINUX_RTO_MAX_SECONDS, LINUX_TCP_RETRIES2, linuxGiveUpSeconds, MIDDLEBOX_IDLE_TIMEOUTS } from '../knowledge.js';
import { endpointsOf, humanSeconds, median, round, scratchState, tupleText } from '../util.js';

type Thresholds = {
  minRetransmits: number;
  criticalRetransmits: number;
  minBackoff: number;
  longIdleSeconds: number;
};

/** Retransmission times kept per storm: Linux gives up after tcp_retries2 + a tail-loss probe. */
const MAX_TIMES = 64;
/** Linux's floor on the retransmission timeout (TCP_RTO_MIN), the base of its give-up budget. */
const LINUX_RTO_MIN_SECONDS = 0.2;

/**
 * When Linux gives up on unacknowledged data, in seconds from the original send. The budget is
 * time, not a count: retransmits_timed_out() compares the time since the original send with
 * tcp_model_timeout(tcp_retries2, TCP_RTO_MIN), 924.6 s for tcp_retries2 = 15, whatever the actual
 * RTO; the check runs when the retransmission timer fires. So: continue the backoff seen (last
 * interval doubling, capped at TCP_RTO_MAX) from the last retransmission until a firing is past the
 * budget.
 */
export function projectLinuxGiveUp(start: number, last: number, lastInterval: number): number {
  if (!(lastInterval > 0)) return NaN;
  const budget = linuxGiveUpSeconds(LINUX_RTO_MIN_SECONDS, LINUX_TCP_RETRIES2);
  let time = last;
  let rto = lastInterval;
  for (let i = 0; i < 64 && time - start < budget; i++) {
    rto = Math.min(rto * 2, LINUX_RTO_MAX_SECONDS);
    time += rto;
  }
  return time - start;
}

/** One direction's unacknowledged-data stall, from its original send to ACK progress or the end. */
class Storm {
  seq = 0;
  originalTime = -1;
  originalFrame = 0;
  /**
   * The "original" is the sender's first packet of a conversation the capture joined mid-stream:
   * it may itself be a retransmission, so it cannot anchor the backoff.
   */
  originalUncertain = false;
  idleBefore = 0;
  readonly times: number[] = [];
  readonly frames: number[] = [];
  count = 0;
  /** Time of the latest retransmission (times[] stops growing at MAX_TIMES). */
  lastTime = -1;
  /** Reported at least once: it stays a finding (updated) whatever comes next. */
  shown = false;
  /**
   * A retransmission of another (later) segment between the original and this storm's first
   * re-send: the tail-loss probe, which re-sends the last segment of the flight.
   */
  probeTime = -1;
  recoveredTime = -1;
  fin = false;
  /** A new connection between the same client and server after the last retransmission so far. */
  reconnectConversation = 0;
  reconnectFrame = 0;
  reconnectTime = -1;
}

/** A storm long enough to report, with what re-reporting it needs. */
interface Reported {
  conv: Conversation;
  storm: Storm;
  direction: 0 | 1;
  key: string;
}

/** Client address and server address:port: a reconnect keeps them and changes the client port. */
function pairKey(conv: Conversation): string {
  return `${addressKey(conv.client)}>${addressKey(conv.server)}:${conv.server.port}`;
}

/** The address words joined by dots, without the view and array a join of `addr` would build. */
function addressKey(e: Endpoint): string {
  return `${e.addressWord(0)}.${e.addressWord(1)}.${e.addressWord(2)}.${e.addressWord(3)}`;
}

/**
 * Per conversation with a retransmission: the storm in progress per direction. Created at the first
 * retransmission only; the original send it anchors on is the tracker's (Endpoint.lastNew*, head*).
 */
class State {
  readonly storms: [Storm | null, Storm | null] = [null, null];
  /** Time of the last retransmission per direction, whatever its sequence number. */
  readonly lastRetransmitTime = [-1, -1];
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
    'peer, at least minRetransmits long, whose intervals grow by a median factor of at least minBackoff,',
    'is a storm (copies a few ms apart from a duplicating capture, or steady re-sends, are not). On Linux the first re-send of a lost tail segment is often a tail-loss probe (~2 RTT), the RTO',
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
    initialRtoSeconds: 'the first RTO interval observed (from the tail-loss probe when there was one); null when the original send is not in the capture',
    tailLossProbe: 'whether a tail-loss probe came first: a re-send of another segment of the flight, or a first interval that does not fit the RTO doubling',
    projectedGiveUpSeconds: 'when Linux with tcp_retries2 = 15 would give up, from the original send: the first timer firing, continuing the backoff seen, past its 924.6 s budget',
    senderGaveUp: 'true when the sender reset the connection after the storm, reconnected to the server, or sent no retransmission when the next was due well before the capture ended; null when not known',
    gaveUpAfterSeconds: 'from the original send to that RST, reconnect, or due retransmission: about when the application saw the error',
    reconnect: 'the next connection from the same client address to the same server after the last retransmission: conversation, frame, seconds after the first send and after the last retransmission',
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
    const stateOf = (conv: Conversation): State => scratchState(conv, slot, State);

    /** Latest packet time of any finalised conversation: at finish(), the end of the capture. */
    let captureEnd = 0;
    /** Storms that never recovered, re-examined at finish() once the capture's end is known. */
    const unrecovered: Reported[] = [];
    /** Storms long enough to report and not recovered, by client address and server: reconnect watch. */
    const watched = new Map<string, Reported[]>();

    const keyOf = (conv: Conversation, direction: 0 | 1, state: State): string =>
      `${conv.id}/${direction === 0 ? 'client' : 'server'}/${state.reported[direction]}`;

    /**
     * `end` is the capture's end when known (finish): a storm whose next backed-off retransmission was
     * due well before it, in a conversation silent since, is one the sender gave up on.
     */
    const emit = (conv: Conversation, storm: Storm, direction: 0 | 1, key: string, end = -1): void => {
      if (storm.count < thresholds.minRetransmits) return;
      const sender = direction === 0 ? conv.client : conv.server;
      const peer = direction === 0 ? conv.server : conv.client;
      const peerHeardAfter = peer.lastTime > storm.times[0];
      const sendTimes = storm.originalTime >= 0 ? [storm.originalTime, ...storm.times] : storm.times;
      const intervals: number[] = [];
      for (let i = 1; i < sendTimes.length; i++) intervals.push(sendTimes[i] - sendTimes[i - 1]);
      const ratios: number[] = [];
      for (let i = 1; i < intervals.length; i++) if (intervals[i - 1] > 0) ratios.push(intervals[i] / intervals[i - 1]);
      // Linux re-sends a lost tail first as a tail-loss probe (~2 RTT, plus a delayed-ACK allowance
      // when one segment is out), then on RTO, doubling from there. The probe's interval does not fit
      // the doubling of the rest: its ratio to the next is far from the later ratios (about 1 when the
      // probe waited ~200 ms, much more on a fast path with several segments out). Skip it so the RTO
      // backoff is what is measured.
      // When the probe re-sent another segment (the last of a flight), the first interval holds the
      // probe's wait and the first RTO: skip it too, and the RTO runs from the probe.
      const later = ratios.length >= 2 ? median(ratios.slice(1)) : NaN;
      const anchored = storm.originalTime >= 0 && !storm.originalUncertain;
      const probeElsewhere = anchored && storm.probeTime >= 0;
      const tailLossProbe = probeElsewhere || (anchored && intervals.length > 2 && later >= thresholds.minBackoff &&
        Math.abs(Math.log(ratios[0] / later)) > Math.log(1.5));
      const backoff = median(tailLossProbe && ratios.length > 1 ? ratios.slice(1) : ratios);
      // A storm is re-sends with backoff. Copies of a segment a few ms apart (a capture on a mirror
      // port or on several interfaces, duplicates) or re-sends at a steady pace are not: with two
      // intervals or more, the backoff must be measurable and at least minBackoff.
      if (!storm.shown) {
        if (intervals.length >= 2 && !(backoff >= thresholds.minBackoff)) return;
        storm.shown = true;
        const pair = pairKey(conv);
        const list = watched.get(pair);
        const entry: Reported = { conv, storm, direction, key };
        if (list === undefined) watched.set(pair, [entry]);
        else list.push(entry);
      }
      // Without the original send the first interval seen is already a backed-off RTO of unknown rank.
      const initialRto = !anchored ? NaN : probeElsewhere ? storm.times[0] - storm.probeTime : tailLossProbe ? intervals[1] : intervals[0];
      const recovered = storm.recoveredTime >= 0;
      const start = sendTimes[0];
      const last = storm.lastTime;
      // The next retransmission was due one doubled interval after the last; past 1.5 times that with
      // the conversation silent, the sender stopped: its kernel gave up (or the socket was closed).
      const lastInterval = intervals.length > 0 ? intervals[intervals.length - 1] : NaN;
      const giveUp = anchored ? projectLinuxGiveUp(start, last, lastInterval) : NaN;
      const nextDue = last + Math.min(2 * lastInterval, LINUX_RTO_MAX_SECONDS);
      const silentSince = conv.end <= last;
      // A new connection from the same client to the same server after the last retransmission, with
      // this one silent since: the application got an error (or gave up) and reconnected.
      const reconnected = storm.reconnectTime >= last && silentSince;
      // Or the sender reset the connection after the storm: its application (a proxy's server
      // timeout, a client's request timeout) gave up before the kernel did.
      const resetBySender = !recovered && sender.rstTime > last;
      const gaveUp = recovered ? null
        : resetBySender ? true
          : !silentSince ? null
            : reconnected || (end >= 0 && Number.isFinite(lastInterval) && end >= last + 1.5 * (nextDue - last)) ? true : null;
      const gaveUpAt = resetBySender ? sender.rstTime : reconnected ? storm.reconnectTime : nextDue;
      const idleLong = anchored && storm.idleBefore >= thresholds.longIdleSeconds;
      const who = direction === 0 ? 'client' : 'server';
      const what = storm.fin ? 'its FIN' : 'the same unacknowledged data';
      const parts = [
        `The ${who} sent ${what} ${storm.count} more times over ${humanSeconds(last - start)}`,
        Number.isFinite(backoff) ? `with intervals growing ${backoff.toFixed(2)}x each time (RTO backoff)` : '',
        recovered
          ? `until the peer finally acknowledged it after ${humanSeconds(storm.recoveredTime - start)}.`
          : `and ${peerHeardAfter ? 'the peer sent nothing that acknowledged it' : 'never heard from the peer again'}.`,
      ];
      if (resetBySender) {
        parts.push(`Then the ${who} reset the connection (frame ${sender.rstFrame}) ${humanSeconds(sender.rstTime - start)} after the first send: its application gave up first (a timeout of its own, e.g. a proxy's server timeout), long before the kernel would have.`);
      } else if (reconnected) {
        parts.push(`Then the retransmissions stopped and the client opened a new connection to the same server (conversation ${storm.reconnectConversation}, frame ${storm.reconnectFrame}) ${humanSeconds(storm.reconnectTime - last)} after the last one, ${humanSeconds(storm.reconnectTime - start)} after the first send: the application got an error and reconnected. Its kernel gave up much sooner than the default tcp_retries2 = ${LINUX_TCP_RETRIES2} would (a lowered net.ipv4.tcp_retries2, TCP_USER_TIMEOUT), or the application timed out itself.`);
      } else if (gaveUp === true) {
        parts.push(`The sender then stopped: no retransmission came when the next one was due ${humanSeconds(nextDue - last)} later, though the capture went on for ${humanSeconds(end - last)}. Its kernel gave up about ${humanSeconds(nextDue - start)} after the first send, far sooner than the default tcp_retries2 = ${LINUX_TCP_RETRIES2} would (a lowered net.ipv4.tcp_retries2 or TCP_USER_TIMEOUT), or the application closed the socket.`);
      } else if (!recovered && Number.isFinite(giveUp)) {
        parts.push(`Linux with tcp_retries2 = ${LINUX_TCP_RETRIES2} gives up at the first retransmission timer ${humanSeconds(linuxGiveUpSeconds(LINUX_RTO_MIN_SECONDS))} or more after the first send: continuing the backoff seen here, ${humanSeconds(giveUp)} after it. That is how long the application waits.`);
      } else if (!recovered && !anchored) {
        parts.push('The original send is not in the capture (it started mid-storm), so the RTO backoff cannot be anchored to project when Linux gives up.');
      }
      if (idleLong) {
        const matching = idleTimeoutsBetween(0, storm.idleBefore).map((d) => `${d.name} ${humanSeconds(d.seconds)}`);
        parts.push(`The connection had been idle for ${humanSeconds(storm.idleBefore)} before this send: a NAT, firewall or load balancer on the path most likely expired it and now drops its packets${matching.length > 0 ? ` (idle timeouts shorter than this gap: ${matching.join(', ')})` : ''}.`);
      }
      const { client, server } = endpointsOf(conv);
      const critical = !recovered && (storm.count >= thresholds.criticalRetransmits || !peerHeardAfter);
      report({
        key,
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
          originalFrame: anchored ? storm.originalFrame : null,
          retransmissions: storm.count,
          frames: storm.frames,
          times: storm.times.map(round),
          intervalsSeconds: intervals.map(round),
          backoffFactor: Number.isFinite(backoff) ? round(backoff) : null,
          idleBeforeSeconds: anchored ? round(storm.idleBefore) : null,
          peerHeardAfter: peerHeardAfter,
          coveredSeconds: round(last - start),
          initialRtoSeconds: Number.isFinite(initialRto) ? round(initialRto) : null,
          tailLossProbe,
          projectedGiveUpSeconds: Number.isFinite(giveUp) ? round(giveUp) : null,
          senderGaveUp: gaveUp,
          gaveUpAfterSeconds: gaveUp === true ? round(gaveUpAt - start) : null,
          reconnect: storm.reconnectTime >= 0
            ? {
              conversation: storm.reconnectConversation,
              frame: storm.reconnectFrame,
              afterFirstSendSeconds: round(storm.reconnectTime - start),
              afterLastRetransmissionSeconds: round(storm.reconnectTime - last),
            }
            : null,
          recovered,
          knownIdleTimeouts: idleLong ? MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.seconds <= storm.idleBefore).map((d) => d.name) : [],
        },
        explanation: parts.filter((p) => p !== '').join(' '),
        advice: idleLong ? retransmitStorm.advice : retransmitStorm.advice.slice(1),
      });
    };

    const unwatch = (conv: Conversation, storm: Storm): void => {
      const list = watched.get(pairKey(conv));
      if (list === undefined) return;
      const rest = list.filter((r) => r.storm !== storm);
      if (rest.length > 0) watched.set(pairKey(conv), rest);
      else watched.delete(pairKey(conv));
    };

    /** A client's SYN: does it reconnect after a storm between the same client and server? */
    const onNewConnection = (conv: Conversation, seg: Segment): void => {
      const list = watched.get(pairKey(conv));
      if (list === undefined) return;
      for (const r of list) {
        if (r.conv === conv || r.storm.recoveredTime >= 0) continue;
        if (r.storm.reconnectTime >= r.storm.lastTime) continue; // already has a later reconnect
        if (seg.time < r.storm.lastTime) continue;
        r.storm.reconnectConversation = conv.id;
        r.storm.reconnectFrame = seg.frame;
        r.storm.reconnectTime = seg.time;
        emit(r.conv, r.storm, r.direction, r.key);
      }
    };

    const endStorm = (conv: Conversation, state: State, direction: 0 | 1): void => {
      const storm = state.storms[direction];
      if (storm === null) return;
      const key = keyOf(conv, direction, state);
      emit(conv, storm, direction, key);
      if (storm.shown) {
        if (storm.recoveredTime < 0) unrecovered.push({ conv, storm, direction, key });
        else unwatch(conv, storm);
        state.reported[direction]++;
      }
      state.storms[direction] = null;
    };

    return {
      interest: Note.NewData | Note.Retransmission | Note.AckProgress,
      onSegment(conv: Conversation, seg: Segment) {
        // Most conversations never retransmit: they get no state, and cost one look here.
        let state = conv.scratch[slot] as State | undefined;
        const direction = seg.fromClient ? 0 : 1;
        const other = direction === 0 ? 1 : 0;
        // The peer acknowledging past the stalled sequence ends that direction's storm.
        const opposing = state === undefined ? null : state.storms[other];
        if (opposing !== null && (seg.notes & Note.AckProgress) !== 0 && seqGt(seg.ack, opposing.seq)) {
          opposing.recoveredTime = seg.time;
          endStorm(conv, state as State, other);
        }
        if ((seg.notes & Note.NewData) !== 0) {
          if (watched.size > 0 && seg.fromClient && (seg.flags & (TcpFlag.SYN | TcpFlag.ACK)) === TcpFlag.SYN) onNewConnection(conv, seg);
          return;
        }
        if ((seg.notes & Note.Retransmission) === 0 || (seg.notes & Note.SynRetransmission) !== 0) return;
        if (state === undefined) state = stateOf(conv);
        const previousRetransmit = state.lastRetransmitTime[direction];
        state.lastRetransmitTime[direction] = seg.time;
        let storm = state.storms[direction];
        if (storm !== null && storm.seq !== seg.seq) {
          endStorm(conv, state, direction);
          storm = null;
        }
        if (storm === null) {
          storm = new Storm();
          storm.seq = seg.seq;
          storm.fin = seg.payloadLength === 0 && (seg.notes & Note.Fin) !== 0;
          // The original send: the sender's last new data, or the head of its flight. When the capture
          // joined the conversation midstream, the sender's first packet may itself be a re-send.
          const sender = seg.fromClient ? conv.client : conv.server;
          if (sender.lastNewTime >= 0 && sender.lastNewSeq === seg.seq) {
            storm.originalTime = sender.lastNewTime;
            storm.originalFrame = sender.lastNewFrame;
            storm.idleBefore = sender.lastNewIdle;
            storm.originalUncertain = conv.midstream && sender.lastNewFirst;
          } else if (sender.headTime >= 0 && sender.headSeq === seg.seq) {
            // The first segment of a flight, re-sent after the rest of the flight went out.
            storm.originalTime = sender.headTime;
            storm.originalFrame = sender.headFrame;
            storm.idleBefore = sender.headIdle;
            storm.originalUncertain = conv.midstream && sender.headFirst;
          }
          // Another segment re-sent since the original: the tail-loss probe of this flight.
          if (storm.originalTime >= 0 && previousRetransmit > storm.originalTime) storm.probeTime = previousRetransmit;
          state.storms[direction] = storm;
        }
        storm.count++;
        storm.lastTime = seg.time;
        if (storm.times.length < MAX_TIMES) {
          storm.times.push(seg.time);
          storm.frames.push(seg.frame);
        }
        // Report as soon as it is a storm (live capture), then update as it grows.
        if (storm.count >= thresholds.minRetransmits) emit(conv, storm, direction, keyOf(conv, direction, state));
      },
      onFinalize(conv: Conversation) {
        if (conv.end > captureEnd) captureEnd = conv.end;
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined) return;
        endStorm(conv, state, 0);
        endStorm(conv, state, 1);
      },
      finish() {
        // Every conversation is finalised now: captureEnd is the capture's last TCP packet.
        for (const { conv, storm, direction, key } of unrecovered) emit(conv, storm, direction, key, captureEnd);
        unrecovered.length = 0;
        watched.clear();
      },
    };
  },
};
