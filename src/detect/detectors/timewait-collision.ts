import { TcpFlag } from '../../decode/packet.js';
import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import type { DetectorSpec } from '../detector.js';
import type { EndpointRef, Severity } from '../finding.js';
import { CappedGroups, maxServersThreshold } from '../capped.js';
import { LINUX_TIME_WAIT_SECONDS } from '../knowledge.js';
import { endpointsOf, humanSeconds, round } from '../util.js';
import { clientText, gapText, isnDistance, type PreviousConversation, previousOf, serverKey } from './tuple-reuse.js';

type Thresholds = {
  timeWaitSeconds: number;
  criticalDelaySeconds: number;
  maxListed: number;
  maxServers: number;
};

/** One packet of a collision's exchange, as the evidence lists it. */
interface ExchangePacket {
  frame: number;
  time: number;
  from: 'client' | 'server';
  packet: string;
  seq: number;
  ack: number;
}

/** Packets kept per attempt: SYN, ACK, RST and a few retries are all a collision ever needs. */
const MAX_PACKETS = 16;

/** One connection attempt on a reused tuple (created at its first SYN, or at the stray ACK). */
class Attempt {
  convId = 0;
  client = '';
  server = '';
  previous: PreviousConversation | null = null;
  synFrame = 0;
  synTime = -1;
  isn = 0;
  synTimestamps = false;
  readonly packets: ExchangePacket[] = [];
  /** ACKs of the old conversation's sequence space that answered this SYN (one per collision). */
  staleAcks = 0;
  staleAckValue = 0;
  firstStaleAckFrame = 0;
  firstStaleAckTime = -1;
  clientResets = 0;
  synRetries = 0;
  synAckFrame = 0;
  synAckTime = -1;
  /** Time of the SYN the SYN-ACK answered (the last one sent before it). */
  lastSynBeforeAnswer = -1;
  finalized = false;
  resetAtEnd = false;
  /** Index in its group's listing, or -1 when it is only counted. */
  listed = -1;
}

/** All collisions towards one server: the cause (the server closes first, ports are reused) is shared. */
class Group {
  readonly attempts: Attempt[] = [];
  total = 0;
  readonly conversations: number[] = [];
  readonly client: EndpointRef;
  readonly server: EndpointRef;
  start = Infinity;
  end = 0;
  /** Outcomes of the attempts beyond the listing, which are only counted. */
  unlistedFailed = 0;
  unlistedEstablished = 0;
  unlistedWorstDelay = 0;
  constructor(endpoints: { client: EndpointRef; server: EndpointRef }) {
    this.client = endpoints.client;
    this.server = endpoints.server;
  }
}

const MAX_CONVERSATION_IDS = 1000;

/**
 * The server's answer acknowledges another sequence space. An ACK of exactly the SYN's own sequence
 * number (one short of SYN + 1) is not a TIME_WAIT socket's ACK, whose value is the old stream's end
 * and unrelated to the new ISN: it is a crafted or broken answer to this very SYN.
 */
function isStale(conv: Conversation, seg: Segment): boolean {
  return (seg.notes & Note.AckOfPreviousConversation) !== 0 && seg.ack !== conv.client.isn;
}

export const timewaitCollision: DetectorSpec<Thresholds> = {
  id: 'timewait-collision',
  title: 'TIME_WAIT collision on a reused 4-tuple',
  severity: 'warning',
  summary: 'A new SYN reused the ports of a connection the server still held in TIME_WAIT: the server answered with the old connection\'s ACK instead of a SYN-ACK.',
  explanation: [
    'The side of a TCP connection that closes first keeps the 4-tuple in TIME_WAIT for 2*MSL (60 s on',
    'Linux, TCP_TIMEWAIT_LEN; 240 s on Windows by default). When the server closed first and a client (or',
    'a SNAT device that maps many clients onto few source ports) opens a new connection on the same',
    'tuple inside that time, the server accepts the SYN only if it is provably newer: a higher TCP',
    'timestamp (RFC 6191, both connections with timestamps) or an initial sequence number above the old',
    'connection\'s last sequence. Otherwise the TIME_WAIT socket answers the SYN with a bare ACK that',
    'acknowledges the OLD connection\'s sequence space (RFC 793). The client, in SYN-SENT, finds that ACK',
    'unacceptable and sends an RST; the RST kills the TIME_WAIT socket (net.ipv4.tcp_rfc1337 = 0) and the',
    'next SYN retransmission gets a SYN-ACK: Linux clients retry within milliseconds, SNAT devices such as',
    'an F5 often only after a second (and may collide again), and a client that gives up sees a connect',
    'timeout or reset. The detector recognises the stray ACK the tracker marks as acknowledging the',
    'previous conversation, links the attempt to the conversation that used the tuple before (when it is',
    'in the capture), and follows the exchange to the SYN-ACK or to the end. Collisions are grouped per',
    'server: the cause (who closes first, how source ports are reused) is a property of that server and',
    'its clients, and the fix is the same for every affected connection; each collision is listed.',
  ].join(' '),
  evidence: {
    server: 'the server whose TIME_WAIT sockets collided (ip:port)',
    collisions: 'connection attempts answered with an ACK of the previous conversation',
    failed: 'attempts that never got a SYN-ACK (reset or abandoned)',
    'attempts[].conversation': 'conversation id of the attempt; previousConversation: the one that used the tuple before (null if not in the capture)',
    'attempts[].client': 'the client ip:port (the reused tuple is client -> server)',
    'attempts[].previousCloseTime': 'when the previous conversation closed (its second FIN, or first RST), seconds since the epoch',
    'attempts[].gapSeconds': 'time from the previous conversation\'s close to the new SYN',
    'attempts[].timeWaitHolder': 'which side closed the previous conversation first and so held TIME_WAIT (client, server or null)',
    'attempts[].previousCloseKind': 'how the previous conversation ended (fin, rst-client, ...)',
    'attempts[].previousFinFrames': 'frames of the previous conversation\'s FINs, {client, server}',
    'attempts[].isn': 'the new SYN\'s initial sequence number (raw)',
    'attempts[].previousClientNextSeq': 'one past the last sequence number the client\'s host sent in the previous conversation (raw)',
    'attempts[].isnBelowPrevious': 'the new ISN lies below the old stream: the server cannot take it as a new connection without timestamps',
    'attempts[].isnDistance': 'new ISN minus previousClientNextSeq, as a signed 32-bit distance',
    'attempts[].timestamps': '{previous, syn}: whether the previous conversation and the new SYN carried TCP timestamps',
    'attempts[].staleAckMatchesPrevious': 'the server\'s ACK acknowledges exactly where the previous conversation\'s client stream ended',
    'attempts[].packets': 'each packet of the exchange: frame, time, who sent it, what it was (SYN, ACK of previous conversation, RST, SYN retransmission, SYN-ACK), raw seq and ack',
    'attempts[].connectSeconds': 'from the first SYN to the SYN-ACK (null when none came)',
    'attempts[].addedDelaySeconds': 'from the first SYN to the SYN the server finally accepted: the delay the collision caused',
    'attempts[].outcome': 'established (a SYN-ACK came), failed (ended without one) or pending (capture still running)',
  },
  thresholds: {
    timeWaitSeconds: {
      default: LINUX_TIME_WAIT_SECONDS,
      unit: 's',
      description: 'TIME_WAIT length of the server (60 s on Linux, 240 s on Windows); a reuse after it points at other stale state',
    },
    criticalDelaySeconds: {
      default: 1,
      unit: 's',
      description: 'a collision that delayed the connection this long (or made it fail) is critical',
    },
    maxListed: { default: 20, unit: 'attempts', description: 'collisions listed in full per server (all are counted)' },
    maxServers: maxServersThreshold('servers with collisions'),
  },
  advice: [
    'Open fewer connections: keep them persistent (HTTP keep-alive, connection pools), so ports are not recycled through TIME_WAIT at all.',
    'Let the client close first: the side that closes first holds TIME_WAIT, and on the client side it only blocks that client\'s own port (e.g. do not make the server close after each response; for HTTP prefer keep-alive or `Connection: close` sent by the client).',
    'Behind a SNAT pool (F5, NAT gateway): avoid mapping many clients onto few source ports: on an F5 set the SNAT/virtual server `source-port` to `preserve` only when client ports are unique, otherwise `change`, and enlarge the SNAT pool (more addresses = more tuples); on Linux NAT widen the port range.',
    'Keep TCP timestamps enabled end to end (net.ipv4.tcp_timestamps = 1 on clients and servers, and no middlebox stripping the option): with timestamps a TIME_WAIT server accepts a newer SYN on the same tuple (RFC 6191).',
    '`net.ipv4.tcp_tw_reuse` only lets a host reuse its OWN TIME_WAIT ports for outgoing connections, and only with timestamps: it does not help a server holding TIME_WAIT; never use the removed tcp_tw_recycle.',
  ],
  create({ thresholds, slot, report, cap }) {
    const groups = new CappedGroups<Group>(cap(thresholds.maxServers, 'servers with TIME_WAIT collisions followed', 'collisions towards further servers not analysed'));
    let lastFinalized: Conversation | null = null;

    const record = (attempt: Attempt, seg: Segment, packet: string): void => {
      if (attempt.packets.length >= MAX_PACKETS) return;
      attempt.packets.push({ frame: seg.frame, time: round(seg.time), from: seg.fromClient ? 'client' : 'server', packet, seq: seg.seq, ack: seg.ack });
    };

    const outcomeOf = (a: Attempt): 'established' | 'failed' | 'pending' =>
      a.synAckTime >= 0 ? 'established' : a.finalized ? 'failed' : 'pending';

    const addedDelay = (a: Attempt): number | null => {
      if (a.synAckTime < 0) return a.finalized && a.packets.length > 0 ? a.packets[a.packets.length - 1].time - a.synTime : null;
      return a.lastSynBeforeAnswer - a.synTime;
    };

    const attemptEvidence = (a: Attempt) => {
      const prev = a.previous;
      const gap = prev !== null && prev.closeTime !== null ? a.synTime - prev.closeTime : null;
      const distance = prev !== null ? isnDistance(a.isn, prev) : null;
      const delay = addedDelay(a);
      return {
        conversation: a.convId,
        previousConversation: prev?.id ?? null,
        client: a.client,
        server: a.server,
        previousCloseTime: prev !== null && prev.closeTime !== null ? round(prev.closeTime) : null,
        gapSeconds: gap !== null ? round(gap) : null,
        timeWaitHolder: prev?.timeWaitHolder ?? null,
        previousCloseKind: prev?.closeKind ?? null,
        previousFinFrames: prev !== null ? { client: prev.clientFinFrame, server: prev.serverFinFrame } : null,
        isn: a.isn,
        previousClientNextSeq: prev?.clientNextSeq ?? null,
        isnBelowPrevious: distance !== null ? distance <= 0 : null,
        isnDistance: distance,
        timestamps: { previous: prev?.timestamps ?? null, syn: a.synTimestamps },
        staleAckMatchesPrevious: prev !== null ? a.staleAckValue === prev.clientNextSeq : null,
        staleAcks: a.staleAcks,
        packets: a.packets,
        connectSeconds: a.synAckTime >= 0 ? round(a.synAckTime - a.synTime) : null,
        addedDelaySeconds: delay !== null ? round(delay) : null,
        outcome: outcomeOf(a),
      };
    };

    const describe = (a: Attempt): string => {
      const prev = a.previous;
      const parts: string[] = [];
      const ackFrame = a.firstStaleAckFrame;
      if (prev !== null && prev.closeTime !== null) {
        const gap = a.synTime - prev.closeTime;
        const holder = prev.timeWaitHolder === 'server' ? 'the server had closed it first' : prev.timeWaitHolder === 'client' ? 'the client had closed it first' : 'nobody had sent a FIN';
        const inside = gap < thresholds.timeWaitSeconds ? `inside the ${humanSeconds(thresholds.timeWaitSeconds)} TIME_WAIT` : `after ${humanSeconds(thresholds.timeWaitSeconds)}, longer than a Linux TIME_WAIT (a Windows server keeps 240 s, or the server kept other state)`;
        parts.push(`Conversation #${a.convId} ${a.client} -> ${a.server} sent its SYN (frame ${a.synFrame}) ${gapText(gap)} after conversation #${prev.id} on the same ports closed (${prev.closeKind ?? 'closed'}); ${holder}, so this is ${inside}.`);
      } else if (prev !== null) {
        parts.push(`Conversation #${a.convId} ${a.client} -> ${a.server} sent its SYN (frame ${a.synFrame}) while conversation #${prev.id} on the same ports had not closed as far as the capture shows.`);
      } else {
        parts.push(`Conversation #${a.convId} ${a.client} -> ${a.server} sent its SYN (frame ${a.synFrame}); the connection that used these ports before is not in the capture.`);
      }
      if (prev !== null) {
        const distance = isnDistance(a.isn, prev);
        const ts = prev.timestamps && a.synTimestamps ? 'both carried TCP timestamps (so the server must have seen an older timestamp value: typical of several clients behind one SNAT address)' : 'without TCP timestamps on both connections the server can only compare sequence numbers';
        parts.push(`Its ISN ${a.isn} is ${distance <= 0 ? `${-distance} below` : `${distance} above`} the old connection's next sequence number ${prev.clientNextSeq}; ${ts}.`);
      }
      const retry = a.packets.find((p) => p.packet === 'SYN retransmission');
      const rst = a.packets.find((p) => p.packet === 'RST' && p.from === 'client');
      parts.push(`The server answered with a bare ACK of the old sequence space (frame ${ackFrame}, ack ${a.staleAckValue}) instead of a SYN-ACK${rst ? `; the client reset it (frame ${rst.frame})` : ''}${retry ? ` and re-sent its SYN ${gapText(retry.time - a.synTime)} after the first (frame ${retry.frame})` : ''}.`);
      if (a.staleAcks > 1) parts.push(`That happened ${a.staleAcks} times in this attempt.`);
      if (a.synAckTime >= 0) {
        parts.push(`The SYN-ACK came at frame ${a.synAckFrame}: the collision delayed the connection by ${gapText(a.lastSynBeforeAnswer - a.synTime)}.`);
      } else if (a.finalized) {
        parts.push(`No SYN-ACK ever came: the connection attempt failed${a.resetAtEnd ? ' with a reset' : ''}.`);
      }
      return parts.join(' ');
    };

    const emit = (group: Group, key: string): void => {
      const attempts = group.attempts;
      let failed = 0;
      let established = 0;
      let worstDelay = 0;
      for (const a of attempts) {
        const outcome = outcomeOf(a);
        if (outcome === 'failed') failed++;
        else if (outcome === 'established') established++;
        const delay = addedDelay(a);
        if (delay !== null && delay > worstDelay) worstDelay = delay;
      }
      // Attempts beyond the listing are counted through the group's running totals.
      failed += group.unlistedFailed;
      established += group.unlistedEstablished;
      if (group.unlistedWorstDelay > worstDelay) worstDelay = group.unlistedWorstDelay;
      const severity: Severity = failed > 0 || worstDelay >= thresholds.criticalDelaySeconds ? 'critical' : 'warning';
      const first = attempts[0];
      const more = group.total > 1 ? ` ${group.total - 1} more collision${group.total > 2 ? 's' : ''} on this server ${group.total - 1 > attempts.length - 1 ? `(${attempts.length} listed in the evidence)` : 'are listed in the evidence'}.` : '';
      report({
        key,
        severity,
        title: `${group.total} TIME_WAIT collision${group.total > 1 ? 's' : ''} towards ${key}: a new SYN answered with the old connection's ACK`,
        conversations: group.conversations,
        client: group.total === 1 ? group.client : null,
        server: group.server,
        start: group.start,
        end: group.end,
        evidence: {
          server: key,
          collisions: group.total,
          established,
          failed,
          pending: group.total - established - failed,
          worstAddedDelaySeconds: round(worstDelay),
          attempts: attempts.map(attemptEvidence),
        },
        explanation: describe(first) + more,
        advice: timewaitCollision.advice,
      });
    };

    const groupOf = (conv: Conversation): [Group, string] | null => {
      const key = serverKey(conv);
      const group = groups.obtain(key, () => new Group(endpointsOf(conv)));
      return group === null ? null : [group, key];
    };

    const update = (conv: Conversation, attempt: Attempt, time: number): void => {
      const found = attempt.staleAcks === 0 ? null : groupOf(conv);
      if (found === null) return;
      const [group, key] = found;
      if (time > group.end) group.end = time;
      emit(group, key);
    };

    return {
      interest: Note.NewData | Note.SynRetransmission | Note.AckOfPreviousConversation | Note.Reset,
      onSegment(conv: Conversation, seg: Segment) {
        const syn = (seg.flags & TcpFlag.SYN) !== 0;
        let attempt = conv.scratch[slot] as Attempt | undefined;
        if (attempt === undefined) {
          // Only attempts on a tuple used before, or answered by a stale ACK, are followed.
          const firstSyn = syn && seg.fromClient && (seg.notes & Note.NewData) !== 0 && (seg.flags & TcpFlag.ACK) === 0;
          const stale = isStale(conv, seg);
          if (!(firstSyn && conv.previousId > 0) && !stale) return;
          attempt = new Attempt();
          attempt.convId = conv.id;
          attempt.client = clientText(conv);
          attempt.server = serverKey(conv);
          attempt.previous = previousOf(conv, lastFinalized);
          attempt.synFrame = conv.synFrame;
          attempt.synTime = conv.synTime;
          attempt.isn = conv.client.isn;
          attempt.synTimestamps = conv.client.timestamps;
          conv.scratch[slot] = attempt;
          if (firstSyn) {
            record(attempt, seg, 'SYN');
            return;
          }
          attempt.packets.push({ frame: conv.synFrame, time: round(conv.synTime), from: 'client', packet: 'SYN', seq: conv.client.isn, ack: 0 });
        }
        if (attempt.synAckTime >= 0 && attempt.staleAcks === 0) return;
        if (isStale(conv, seg)) {
          if (attempt.staleAcks === 0) {
            const found = groupOf(conv);
            // No room for this server: the attempt is not followed (its drop is counted).
            if (found === null) return;
            attempt.staleAckValue = seg.ack;
            attempt.firstStaleAckFrame = seg.frame;
            attempt.firstStaleAckTime = seg.time;
            const [group] = found;
            group.total++;
            if (group.conversations.length < MAX_CONVERSATION_IDS) group.conversations.push(conv.id);
            if (attempt.synTime < group.start) group.start = attempt.synTime;
            if (group.attempts.length < thresholds.maxListed) {
              attempt.listed = group.attempts.length;
              group.attempts.push(attempt);
            }
          }
          attempt.staleAcks++;
          record(attempt, seg, 'ACK of previous conversation');
          update(conv, attempt, seg.time);
          return;
        }
        if (attempt.synAckTime >= 0) {
          // After the SYN-ACK only the end matters (a reset of the established connection is not ours).
          return;
        }
        if ((seg.notes & Note.Reset) !== 0) {
          if (seg.fromClient) attempt.clientResets++;
          record(attempt, seg, 'RST');
          update(conv, attempt, seg.time);
        } else if ((seg.notes & Note.SynRetransmission) !== 0 && seg.fromClient) {
          attempt.synRetries++;
          record(attempt, seg, 'SYN retransmission');
          update(conv, attempt, seg.time);
        } else if (syn && !seg.fromClient && (seg.notes & Note.NewData) !== 0) {
          attempt.synAckFrame = seg.frame;
          attempt.synAckTime = seg.time;
          attempt.lastSynBeforeAnswer = conv.lastSynTime;
          record(attempt, seg, 'SYN-ACK');
          update(conv, attempt, seg.time);
        }
      },
      onFinalize(conv: Conversation) {
        const attempt = conv.scratch[slot] as Attempt | undefined;
        lastFinalized = conv;
        if (attempt === undefined || attempt.staleAcks === 0) return;
        attempt.finalized = true;
        attempt.resetAtEnd = conv.resetTime >= 0 || conv.client.rsts + conv.server.rsts > 0;
        // Its first stale ACK found (or made) the group, and groups are never forgotten.
        const [group, key] = groupOf(conv) as [Group, string];
        if (attempt.listed < 0) {
          if (attempt.synAckTime < 0) group.unlistedFailed++;
          else group.unlistedEstablished++;
          const delay = addedDelay(attempt);
          if (delay !== null && delay > group.unlistedWorstDelay) group.unlistedWorstDelay = delay;
        }
        emit(group, key);
      },
    };
  },
};
