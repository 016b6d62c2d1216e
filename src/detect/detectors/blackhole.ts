import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { seqDiff } from '../../flow/seq.js';
import type { DetectorSpec } from '../detector.js';
import { endpointsOf, humanSeconds, median, round, scratchState, tupleText } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  minExchanges: number;
  responseFactor: number;
  minSilenceSeconds: number;
  minUnansweredSegments: number;
};

/** Earlier response times kept per conversation (the most recent ones) for the median. */
const MAX_RESPONSE_TIMES = 256;
/**
 * Unanswered client segments whose ACK is followed per conversation (512 KB). A client that streams
 * without ever getting an answer would otherwise grow this without end; past it the ACKed segments
 * are undercounted (the ACKed bytes, which decide, are still exact).
 */
const MAX_PENDING_SEGMENTS = 65_536;

type Ending = 'client-fin' | 'client-rst' | 'server-fin' | 'server-rst' | 'open';

/** Per conversation: the request/response rhythm so far and the client data waiting for an answer. */
class State {
  exchanges = 0;
  readonly responseTimes: number[] = [];
  /** Whether client payload is waiting for server payload (a request in progress). */
  pending = false;
  pendingStartTime = 0;
  pendingStartFrame = 0;
  /** Absolute sequence number of the first unanswered client byte. */
  pendingStartSeq = 0;
  pendingLastTime = 0;
  pendingLastFrame = 0;
  pendingSegments = 0;
  pendingBytes = 0;
  /** Sequence ends of unanswered client segments not yet ACKed (a queue: head .. length). */
  readonly ends: number[] = [];
  endsHead = 0;
  ackedSegments = 0;
  ackedBytes = 0;
  lastAckTime = -1;
  lastAckFrame = 0;
  /** The server advertised a zero window while the data waited: a receiver stall, not a blackhole. */
  zeroWindow = false;
  /** The last server payload (the last response). */
  lastResponseTime = -1;
  lastResponseFrame = 0;
  maxResponse = 0;
  /** How the conversation ended (the first FIN or RST), once it did. */
  ending: Ending = 'open';
  endTime = -1;
  endFrame = 0;
  /** The verdict is in (the conversation ended): later packets change nothing. */
  finalized = false;
}

/** The state of every conversation that ended before any payload: finalised, never written. */
const ENDED = new State();
ENDED.finalized = true;

export const blackhole: DetectorSpec<Thresholds> = {
  id: 'blackhole',
  title: 'Requests ACKed but never answered (blackhole)',
  severity: 'critical',
  summary: 'The peer acknowledges the client\'s requests but never answers them: a proxy or load balancer with nowhere to deliver the bytes.',
  explanation: [
    'A load balancer or proxy terminates TCP itself: it acknowledges the client\'s bytes as soon as they',
    'reach its socket buffer, whether or not it can deliver them to a backend. When the backend behind an',
    'established connection is deregistered, crashed or unreachable, the proxy keeps ACKing the client but',
    'nothing ever comes back: the client sees a healthy TCP connection and a request that hangs until its',
    'own timeout (or forever, without one). On the back leg the proxy retransmits towards the dead backend',
    'in RTO backoff and sends only a couple of new segments; everything else sits in its socket buffer,',
    'already ACKed to the client. This detector follows the request/response rhythm of each conversation',
    '(client payload, then server payload: one exchange, with its response time from the last client',
    'payload to the first server payload). After at least minExchanges exchanges, client payload that the',
    'server acknowledges entirely (ACK progress covering every byte, at least minUnansweredSegments',
    'segments) but answers with no payload for longer than max(responseFactor x the median earlier response',
    'time, 2 x the longest earlier response, minSilenceSeconds), measured from the first unanswered client',
    'segment to the end, is a blackhole. The finding is made when the conversation ends: the client giving',
    'up (FIN or RST), the server side closing, or the end of the capture; a response that comes after all',
    'was only a slow one. A server advertising a zero window meanwhile is a receiver stall',
    '(the zero-window detector), not a blackhole; data the server does not ACK is a retransmission storm.',
  ].join(' '),
  evidence: {
    unansweredSegments: 'client payload segments sent since the last server payload',
    unansweredBytes: 'client payload bytes sent since the last server payload',
    ackedSegments: 'of those, segments the server acknowledged (all of them, or it would not be a blackhole)',
    ackedBytes: 'of those, bytes the server acknowledged',
    sinceFrame: 'frame of the first unanswered client segment',
    sinceTime: 'capture time of the first unanswered client segment',
    lastResponseFrame: 'frame of the last server payload (the last response) before the silence',
    lastResponseTime: 'its capture time',
    lastClientFrame: 'frame of the last unanswered client segment',
    lastAckFrame: 'frame of the server\'s last ACK covering unanswered data',
    unansweredSeconds: 'from the first unanswered client segment to the end (the FIN or RST, else the last client segment or server ACK)',
    earlierExchanges: 'request/response exchanges before the silence',
    medianResponseSeconds: 'median response time of those exchanges (last client payload to first server payload)',
    maxResponseSeconds: 'longest of those response times',
    thresholdSeconds: 'silence needed: max(responseFactor x median response, 2 x longest response, minSilenceSeconds)',
    ending: 'client-fin / client-rst (the client gave up), server-fin / server-rst (the proxy gave up), or open (end of capture)',
    endFrame: 'frame of the FIN or RST that ended it (null when open)',
  },
  thresholds: {
    minExchanges: { default: 3, unit: 'exchanges', description: 'request/response exchanges before the silence, to know the conversation expects answers (3: a TLS handshake alone is not a rhythm)' },
    responseFactor: { default: 20, unit: 'ratio', description: 'silence as a multiple of the median earlier response time' },
    minSilenceSeconds: { default: 2, unit: 's', description: 'silence needed however fast earlier responses were' },
    minUnansweredSegments: { default: 3, unit: 'segments', description: 'client payload segments the server ACKed without answering' },
  },
  advice: [
    'Make the load balancer close connections to a deregistered or unhealthy backend instead of holding them: AWS NLB target group attribute `deregistration_delay.connection_termination.enabled=true` (and a deregistration delay that lets in-flight requests finish), HAProxy `on-marked-down shutdown-sessions` on the server line (with `check` health checks, so the server is marked down), Envoy outlier detection with connection draining.',
    'Give every request an application-level timeout shorter than the user-visible one, and treat a timeout as a reason to close and re-dial the connection rather than reuse it.',
    'On long-lived connections, use heartbeats that expect a reply (HTTP/2 PING, gRPC keepalive `GRPC_ARG_KEEPALIVE_TIME_MS` with `GRPC_ARG_KEEPALIVE_TIMEOUT_MS`, Redis PING, WebSocket ping/pong) and close the connection when the reply does not come; TCP keepalive alone is answered by the proxy and proves nothing about the backend.',
    'Capture on the proxy\'s backend leg too: a retransmission storm there (connscope retransmit-storm) confirms the backend is gone.',
  ],
  create({ thresholds, slot, report, cap }) {
    const pendingKept = cap(MAX_PENDING_SEGMENTS, 'unanswered segments followed per conversation', 'unanswered segments whose ACK was not followed');
    const stateOf = (conv: Conversation): State => scratchState(conv, slot, State);

    const thresholdFor = (state: State): number =>
      Math.max(thresholds.responseFactor * median(state.responseTimes), 2 * state.maxResponse, thresholds.minSilenceSeconds);

    /** The latest time the pending data is known to have been waiting. */
    const lastEvidence = (state: State): number => {
      let t = Math.max(state.pendingLastTime, state.lastAckTime);
      if (state.endTime >= 0) t = Math.max(t, state.endTime);
      return t;
    };

    const qualifies = (state: State): boolean => {
      if (!state.pending || state.zeroWindow || state.exchanges < thresholds.minExchanges) return false;
      // Everything the client sent was ACKed: unacknowledged data is a dead path, not a blackhole.
      if (state.ackedSegments < thresholds.minUnansweredSegments || state.ackedBytes < state.pendingBytes) return false;
      return lastEvidence(state) - state.pendingStartTime >= thresholdFor(state);
    };

    const emit = (conv: Conversation, state: State): void => {
      const medianResponse = median(state.responseTimes);
      const threshold = thresholdFor(state);
      const end = lastEvidence(state);
      const span = end - state.pendingStartTime;
      const { client, server } = endpointsOf(conv);
      const endingText: Record<Ending, string> = {
        'client-fin': `until the client gave up and closed the connection (FIN, frame ${state.endFrame})`,
        'client-rst': `until the client gave up and reset the connection (frame ${state.endFrame})`,
        'server-fin': `until the server side closed the connection (FIN, frame ${state.endFrame}) without answering`,
        'server-rst': `until the server side reset the connection (frame ${state.endFrame}) without answering`,
        open: 'and the capture ends with them still unanswered',
      };
      const parts = [
        `After ${state.exchanges} request/response exchanges answered in ${duration(medianResponse)} (median; longest ${duration(state.maxResponse)}),`,
        `the last response at frame ${state.lastResponseFrame}, the client sent ${plural(state.pendingSegments, 'more segment')} (${state.pendingBytes} bytes, frames ${state.pendingStartFrame} to ${state.pendingLastFrame});`,
        `the server acknowledged every one of them but sent no payload back for ${duration(span)},`,
        `${endingText[state.ending]}${state.endTime >= 0 ? ` ${duration(state.endTime - state.pendingLastTime)} after the last of them` : ''}.`,
        'The peer\'s TCP stack accepted the bytes while nothing behind it answered: the signature of a load balancer or proxy whose backend is gone (deregistered, crashed or unreachable) and which keeps the client connection open.',
      ];
      report({
        key: `${conv.id}`,
        severity: 'critical',
        title: `${state.ackedSegments} client segments ACKed, no response for ${duration(span)}: ${tupleText(conv)}`,
        conversations: [conv.id],
        client,
        server,
        start: state.pendingStartTime,
        end,
        evidence: {
          unansweredSegments: state.pendingSegments,
          unansweredBytes: state.pendingBytes,
          ackedSegments: state.ackedSegments,
          ackedBytes: state.ackedBytes,
          sinceFrame: state.pendingStartFrame,
          sinceTime: round(state.pendingStartTime),
          lastResponseFrame: state.lastResponseFrame,
          lastResponseTime: round(state.lastResponseTime),
          lastClientFrame: state.pendingLastFrame,
          lastAckFrame: state.lastAckTime >= 0 ? state.lastAckFrame : null,
          unansweredSeconds: round(span),
          earlierExchanges: state.exchanges,
          medianResponseSeconds: round(medianResponse),
          maxResponseSeconds: round(state.maxResponse),
          thresholdSeconds: round(threshold),
          ending: state.ending,
          endFrame: state.ending === 'open' ? null : state.endFrame,
        },
        explanation: parts.join(' '),
        advice: blackhole.advice,
      });
    };

    const setEnding = (conv: Conversation, state: State, ending: Ending, seg: Segment): void => {
      if (state.ending !== 'open' || state.finalized) return;
      state.ending = ending;
      state.endTime = seg.time;
      state.endFrame = seg.frame;
      state.finalized = true;
      if (qualifies(state)) emit(conv, state);
      // Nothing more is read from it: a closed conversation lingers in the tracker (TIME_WAIT) for
      // minutes, and its state should not.
      conv.scratch[slot] = ENDED;
    };

    return {
      interest: Note.NewData | Note.AckProgress | Note.ZeroWindow | Note.Fin | Note.Reset,
      onSegment(conv: Conversation, seg: Segment) {
        const notes = seg.notes;
        const isData = (notes & Note.NewData) !== 0 && seg.payloadLength > 0 && (notes & Note.AfterReset) === 0;
        let state = conv.scratch[slot] as State | undefined;
        if (state === undefined) {
          // Until the first payload a segment leaves the state as it starts, except an RST or FIN,
          // which ends it with nothing to report: no state for handshakes (a SYN flood, a scan).
          if (!isData) {
            if ((notes & (Note.Reset | Note.Fin)) !== 0) conv.scratch[slot] = ENDED;
            return;
          }
          state = stateOf(conv);
        }
        if (state.finalized) return;
        if (seg.fromClient) {
          if (isData) {
            if (!state.pending) {
              state.pending = true;
              state.pendingStartTime = seg.time;
              state.pendingStartFrame = seg.frame;
              state.pendingStartSeq = seg.seq;
            }
            state.pendingLastTime = seg.time;
            state.pendingLastFrame = seg.frame;
            state.pendingSegments++;
            state.pendingBytes += seg.payloadLength;
            if (state.ends.length - state.endsHead < MAX_PENDING_SEGMENTS) state.ends.push((seg.seq + seg.payloadLength) >>> 0);
            else pendingKept.refuse();
          }
          if ((notes & Note.Reset) !== 0) setEnding(conv, state, 'client-rst', seg);
          else if ((notes & Note.Fin) !== 0) setEnding(conv, state, 'client-fin', seg);
          return;
        }
        // From the server.
        if (state.pending) {
          if ((notes & Note.ZeroWindow) !== 0) state.zeroWindow = true;
          if ((notes & Note.AckProgress) !== 0) {
            const ends = state.ends;
            while (state.endsHead < ends.length && seqDiff(seg.ack, ends[state.endsHead]) >= 0) {
              state.endsHead++;
              state.ackedSegments++;
            }
            if (state.endsHead > 1024 && state.endsHead * 2 > ends.length) {
              ends.splice(0, state.endsHead);
              state.endsHead = 0;
            }
            const acked = seqDiff(seg.ack, state.pendingStartSeq);
            if (acked > state.ackedBytes) {
              state.ackedBytes = Math.min(acked, state.pendingBytes);
              state.lastAckTime = seg.time;
              state.lastAckFrame = seg.frame;
            }
          }
        }
        if (isData) {
          if (state.pending) {
            // The answer: one more exchange, and its response time.
            const responseTime = seg.time - state.pendingLastTime;
            state.exchanges++;
            if (state.responseTimes.length >= MAX_RESPONSE_TIMES) state.responseTimes.shift();
            state.responseTimes.push(responseTime);
            if (responseTime > state.maxResponse) state.maxResponse = responseTime;
            resetPending(state);
          }
          state.lastResponseTime = seg.time;
          state.lastResponseFrame = seg.frame;
        }
        if ((notes & Note.Reset) !== 0) setEnding(conv, state, 'server-rst', seg);
        else if ((notes & Note.Fin) !== 0) setEnding(conv, state, 'server-fin', seg);
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined || state.finalized) return;
        state.finalized = true;
        if (qualifies(state)) emit(conv, state);
      },
    };
  },
};

/** humanSeconds, with sub-millisecond response times still readable. */
function duration(seconds: number): string {
  return seconds > 0 && seconds < 0.001 ? `${(seconds * 1000).toFixed(2)} ms` : humanSeconds(seconds);
}

function resetPending(state: State): void {
  state.pending = false;
  state.pendingSegments = 0;
  state.pendingBytes = 0;
  state.ends.length = 0;
  state.endsHead = 0;
  state.ackedSegments = 0;
  state.ackedBytes = 0;
  state.lastAckTime = -1;
  state.zeroWindow = false;
}
