import { TcpFlag } from '../../decode/packet.js';
import { type Conversation, Side } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { seqDiff, seqGt } from '../../flow/seq.js';
import type { DetectorSpec } from '../detector.js';
import type { EndpointRef } from '../finding.js';
import { endpointsOf, humanSeconds, round, scratchState } from '../util.js';

type Thresholds = {
  maxResetShare: number;
  minConversations: number;
  minResets: number;
  staleIdleSeconds: number;
  maxListed: number;
};

/** How a conversation's deciding RST is classified. */
export const RESET_CLASSES = ['refused', 'handshake', 'afterFin', 'abortAfterData', 'abortNoData', 'unknownConnection'] as const;
export type ResetClass = (typeof RESET_CLASSES)[number];

const CLASS_TEXT: Record<ResetClass, string> = {
  refused: 'refused connections (RST answering the SYN)',
  handshake: 'handshakes reset by the client or after the SYN-ACK',
  afterFin: 'RSTs after a FIN (socket closed with unread data, or data sent into a closing connection)',
  abortAfterData: 'aborts while data was flowing (no FIN)',
  abortNoData: 'connections reset after the handshake without any data',
  unknownConnection: 'RSTs for a connection the sender no longer knew (after a long idle, after the close, or with no usable state)',
};

const CLASS_ADVICE: Record<ResetClass, string> = {
  refused: 'Refused connections: nothing listens on that port at that moment (service down or restarting, wrong port or listen address; check `ss -ltn` on the server), a backend taken out of service still receiving traffic from a load balancer, or a firewall rule `REJECT --reject-with tcp-reset`. A full accept backlog makes Linux drop SYNs, not reset them, unless net.ipv4.tcp_abort_on_overflow = 1.',
  handshake: 'Handshakes reset by the client: a SYN-ACK that arrived after the client gave up (connect timeout shorter than the path RTT plus SYN retries), a server ACK from a TIME_WAIT socket (see timewait-collision), or port scanners (a SYN scan resets every SYN-ACK).',
  afterFin: 'RSTs after a FIN: an application closed its socket while unread data was still in its receive buffer (Linux then sends RST instead of FIN, RFC 2525), or a client sent a request on a keep-alive connection the server was closing (HTTP keep-alive race, pipelined request). Make the client\'s idle/pool timeout shorter than the server\'s (e.g. nginx keepalive_timeout 75 s), retry idempotent requests on a reset connection, read the request fully before closing, and do not use SO_LINGER {on, 0}.',
  abortAfterData: 'Aborts mid-transfer: an application called close() with SO_LINGER {on, 0} or crashed/was killed, or a proxy or load balancer timeout fired (e.g. HAProxy `timeout server`, an F5 idle timeout with reset). Check which side sends them (evidence bySender) and that side\'s logs at those times.',
  abortNoData: 'Connections opened and reset with no data: usually load-balancer health checks (HAProxy `check`, F5 TCP monitors close with RST) or port probes; harmless if the sources are the balancers, otherwise find what opens them.',
  unknownConnection: 'RSTs for forgotten connections: a NAT, firewall or load balancer expired the idle connection, or the peer restarted and lost its sockets. Send TCP keepalives (or application heartbeats) more often than the shortest idle timeout on the path, and make connection pools evict or validate connections idle longer than it.',
};

/** State kept only for conversations that went silent for long, or that saw an RST. */
class State {
  /** End of the last silence of at least staleIdleSeconds, and whether each side sent since. */
  idleEnd = -1;
  idleGap = 0;
  readonly activeAfterIdle = [false, false];
  cls: ResetClass | null = null;
  reason = '';
  sender: 'client' | 'server' = 'client';
  frame = 0;
  time = 0;
}

class ClassCount {
  client = 0;
  server = 0;
  readonly conversations: number[] = [];
  readonly reasons = new Map<string, number>();
  firstTime = Infinity;
}

/**
 * Distinct reasons counted per class. Reasons are fixed texts except the idle one, which names the
 * silence (`after 3 h 12 min of silence`): a capture of many long-idle connections makes one per length.
 */
const MAX_REASONS = 32;
const OTHER_REASONS = 'other reasons (not told apart)';

export const resetRatio: DetectorSpec<Thresholds> = {
  id: 'reset-ratio',
  title: 'Resets out of proportion',
  severity: 'warning',
  summary: 'A larger share of conversations than normal ends in an RST; each RST is classified (refused, after FIN, abort, unknown connection) and counted by sender.',
  explanation: [
    'A healthy capture has few conversations ending in a reset: TCP closes with FIN. When more than',
    'maxResetShare of the conversations (at least minConversations, with at least minResets reset) end',
    'with an RST, this detector reports the share and classifies the RST that ended each conversation:',
    'refused (the server answered the SYN with RST: nothing listening), handshake (the client reset the',
    'SYN-ACK or a stale ACK), afterFin (a FIN came first: a socket closed with unread data, or a request',
    'sent into a closing keep-alive connection), abortAfterData (reset while data was flowing, no FIN),',
    'abortNoData (reset right after the handshake: health checks, probes) and unknownConnection (the',
    'sender answered a packet of a connection it no longer knew: after a silence of staleIdleSeconds or',
    'more, after the connection had closed, or with sequence number 0). The counts per class and per',
    'sender point at the cause; the advice follows the dominant class. RST packets are counted per',
    'direction and flag combination.',
  ].join(' '),
  evidence: {
    conversations: 'conversations in the capture (without those made of RSTs only)',
    rstOnlyConversations: 'tuples the capture saw nothing but RSTs on (stray resets): not counted in the share',
    resetConversations: 'conversations that ended with an RST',
    share: 'resetConversations / conversations',
    bySender: '{client, server}: who sent the RST that ended each reset conversation',
    classes: 'per class: count, bySender {client, server}, reasons (count per detailed reason), conversations (capped list of ids)',
    dominantClass: 'the class with the most conversations',
    rstPackets: '{client: {"[R]": n, "[R.]": n}, server: {...}}: RST packets per direction and flag combination',
  },
  thresholds: {
    maxResetShare: { default: 0.01, unit: 'ratio', description: 'share of conversations ending in RST above which it is reported' },
    minConversations: { default: 20, unit: 'conversations', description: 'conversations needed before a share means anything' },
    minResets: { default: 3, unit: 'conversations', description: 'reset conversations needed before it is reported' },
    staleIdleSeconds: {
      default: 30,
      unit: 's',
      description: 'silence after which an RST from a side that sent nothing since means it had forgotten the connection',
    },
    maxListed: { default: 50, unit: 'conversations', description: 'conversation ids listed per class' },
  },
  advice: Object.values(CLASS_ADVICE),
  create({ thresholds, slot, report, cap }) {
    const reasonsKept = cap(MAX_REASONS, 'distinct reasons counted per RST class', `RSTs counted under "${OTHER_REASONS}"`);
    let conversations = 0;
    let resetConversations = 0;
    let rstOnly = 0;
    let start = Infinity;
    let end = 0;
    const bySender = { client: 0, server: 0 };
    const classes = new Map<ResetClass, ClassCount>();
    // Keyed by '[R]' or '[R.]': two keys per direction whatever the traffic.
    const rstPackets = { client: new Map<string, number>(), server: new Map<string, number>() };
    let onlyClient: EndpointRef | null = null;
    let onlyServer: EndpointRef | null = null;
    let sameClient = true;
    let sameServer = true;

    const stateOf = (conv: Conversation): State => scratchState(conv, slot, State);

    /** Decides what the conversation's deciding RST (this segment) means. */
    const classify = (conv: Conversation, seg: Segment, state: State): void => {
      const fromClient = seg.fromClient;
      const sender = fromClient ? conv.client : conv.server;
      const peer = fromClient ? conv.server : conv.client;
      state.sender = fromClient ? 'client' : 'server';
      state.frame = seg.frame;
      state.time = seg.time;
      const finBefore = (e: typeof sender) => e.finTime >= 0 && e.finFrame !== seg.frame;
      if (!conv.midstream && !conv.established) {
        if (!fromClient && conv.synAckTime < 0) {
          state.cls = 'refused';
          state.reason = 'RST answering the SYN';
        } else {
          state.cls = 'handshake';
          state.reason = fromClient ? (conv.synAckTime >= 0 ? 'client reset the SYN-ACK' : 'client reset the server\'s answer to its SYN') : 'server reset after its SYN-ACK';
        }
        return;
      }
      if (finBefore(sender)) {
        // Data from the peer that the RST sender never acknowledged: it arrived for a socket that was
        // closing (a request sent into a keep-alive connection as the server closed it, or a close
        // with unread data). Only a fully closed, fully acknowledged conversation is "forgotten".
        const peerDataEnd = peer.finTime >= 0 ? (peer.nextSeq - 1) >>> 0 : peer.nextSeq;
        if (peer.seqKnown && sender.ackKnown && seqGt(peerDataEnd, sender.lastAck)) {
          state.cls = 'afterFin';
          state.reason = 'the peer\'s data reached the RST sender after it had sent FIN';
        } else if (finBefore(peer)) {
          state.cls = 'unknownConnection';
          state.reason = 'after both sides had closed with FIN';
        } else {
          state.cls = 'afterFin';
          state.reason = 'the RST sender had sent FIN first';
        }
        return;
      }
      if (finBefore(peer)) {
        state.cls = 'afterFin';
        state.reason = 'the peer had sent FIN first';
        return;
      }
      const side = fromClient ? 0 : 1;
      if (state.idleEnd >= 0 && !state.activeAfterIdle[side]) {
        state.cls = 'unknownConnection';
        state.reason = `answering a packet after ${humanSeconds(state.idleGap)} of silence`;
        return;
      }
      if (sender.packets - sender.rsts === 0) {
        // Nothing but RSTs from this side: the capture has no state for it either.
        state.cls = 'unknownConnection';
        state.reason = 'no other packet from the RST sender in the capture';
        return;
      }
      if (seg.seq === 0 && sender.seqKnown && Math.abs(seqDiff(sender.nextSeq, 0)) > 65536) {
        state.cls = 'unknownConnection';
        state.reason = 'RST with sequence number 0';
        return;
      }
      if (conv.client.payloadBytes + conv.server.payloadBytes > 0) {
        state.cls = 'abortAfterData';
        state.reason = (fromClient ? conv.client : conv.server).payloadBytes > 0 ? 'the RST sender had sent data' : 'the RST sender had received data';
        return;
      }
      state.cls = 'abortNoData';
      state.reason = 'reset after the handshake, no data';
    };

    return {
      interest: Note.NewData | Note.Retransmission | Note.KeepAlive | Note.ZeroWindowProbe | Note.ZeroWindow |
        Note.WindowReopened | Note.DupAck | Note.AckProgress | Note.Fin | Note.Reset | Note.AfterReset |
        Note.AckOfPreviousConversation | Note.PreviousNotCaptured | Note.OutOfOrder | Note.AckedUnseen,
      onSegment(conv: Conversation, seg: Segment) {
        const side = seg.fromClient ? 0 : 1;
        const reset = (seg.notes & Note.Reset) !== 0;
        if (reset) {
          const counts = seg.fromClient ? rstPackets.client : rstPackets.server;
          const label = (seg.flags & TcpFlag.ACK) !== 0 ? '[R.]' : '[R]';
          counts.set(label, (counts.get(label) ?? 0) + 1);
          const state = stateOf(conv);
          // The RST that (now) ends the conversation: a reset attempt that is retried (SYN after
          // RST) reopens it, and a later RST then decides.
          if (conv.resetFrame === seg.frame) classify(conv, seg, state);
          return;
        }
        let state = conv.scratch[slot] as State | undefined;
        if (seg.idleBefore >= thresholds.staleIdleSeconds) {
          state ??= stateOf(conv);
          state.idleEnd = seg.time;
          state.idleGap = seg.idleBefore;
          state.activeAfterIdle[0] = false;
          state.activeAfterIdle[1] = false;
        }
        if (state !== undefined) state.activeAfterIdle[side] = true;
      },
      onFinalize(conv: Conversation) {
        // A "conversation" of nothing but RSTs (stray resets, backscatter, a capture that missed the
        // connection) says nothing about how conversations end: counted apart.
        if (conv.client.packets + conv.server.packets === conv.client.rsts + conv.server.rsts) {
          rstOnly++;
          return;
        }
        conversations++;
        if (conv.start < start) start = conv.start;
        if (conv.end > end) end = conv.end;
        if (conv.resetBy === Side.None) return;
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined || state.cls === null) return;
        resetConversations++;
        bySender[state.sender]++;
        let count = classes.get(state.cls);
        if (count === undefined) {
          count = new ClassCount();
          classes.set(state.cls, count);
        }
        count[state.sender]++;
        let reason = state.reason;
        if (!count.reasons.has(reason) && count.reasons.size >= MAX_REASONS - 1) {
          reasonsKept.refuse();
          reason = OTHER_REASONS;
        }
        count.reasons.set(reason, (count.reasons.get(reason) ?? 0) + 1);
        if (count.conversations.length < thresholds.maxListed) count.conversations.push(conv.id);
        if (state.time < count.firstTime) count.firstTime = state.time;
        const { client, server } = endpointsOf(conv);
        if (onlyClient === null) onlyClient = client;
        else if (onlyClient.ip !== client.ip) sameClient = false;
        if (onlyServer === null) onlyServer = server;
        else if (onlyServer.ip !== server.ip || onlyServer.port !== server.port) sameServer = false;
      },
      finish() {
        if (conversations < thresholds.minConversations || resetConversations < thresholds.minResets) return;
        const share = resetConversations / conversations;
        if (share <= thresholds.maxResetShare) return;
        const ranked = RESET_CLASSES.filter((c) => classes.has(c)).sort((a, b) => {
          const ca = classes.get(a) as ClassCount;
          const cb = classes.get(b) as ClassCount;
          return cb.client + cb.server - (ca.client + ca.server) || RESET_CLASSES.indexOf(a) - RESET_CLASSES.indexOf(b);
        });
        const dominant = ranked[0];
        const classEvidence: Record<string, unknown> = {};
        const listed: number[] = [];
        for (const cls of ranked) {
          const c = classes.get(cls) as ClassCount;
          classEvidence[cls] = {
            count: c.client + c.server,
            bySender: { client: c.client, server: c.server },
            reasons: Object.fromEntries([...c.reasons].sort((a, b) => b[1] - a[1])),
            conversations: c.conversations,
          };
          listed.push(...c.conversations);
        }
        const percent = (n: number) => `${(n * 100).toFixed(n < 0.1 ? 1 : 0)}%`;
        const d = classes.get(dominant) as ClassCount;
        const dCount = d.client + d.server;
        const dSender = d.server >= d.client ? 'server' : 'client';
        const breakdown = ranked.map((cls) => {
          const c = classes.get(cls) as ClassCount;
          return `${c.client + c.server} ${CLASS_TEXT[cls]}`;
        });
        const explanation = [
          `${resetConversations} of ${conversations} conversations (${percent(share)}) ended with an RST, above the ${percent(thresholds.maxResetShare)} a healthy capture stays under.`,
          `The RST came from the server in ${bySender.server} and from the client in ${bySender.client} of them.`,
          `By class: ${breakdown.join('; ')}.`,
          `Most are ${CLASS_TEXT[dominant]} (${dCount}, mostly sent by the ${dSender}).`,
        ].join(' ');
        const advice = [CLASS_ADVICE[dominant], ...ranked.slice(1).map((c) => CLASS_ADVICE[c])];
        report({
          key: 'all',
          severity: 'warning',
          title: `${percent(share)} of conversations ended with an RST (${resetConversations} of ${conversations}), mostly ${dominant}`,
          conversations: listed.slice(0, 1000),
          client: sameClient ? onlyClient : null,
          server: sameServer ? onlyServer : null,
          start: Number.isFinite(start) ? start : 0,
          end,
          evidence: {
            conversations,
            resetConversations,
            rstOnlyConversations: rstOnly,
            share: round(share),
            bySender,
            dominantClass: dominant,
            classes: classEvidence,
            rstPackets: {
              client: Object.fromEntries(rstPackets.client),
              server: Object.fromEntries(rstPackets.server),
            },
          },
          explanation,
          advice,
        });
      },
    };
  },
};
