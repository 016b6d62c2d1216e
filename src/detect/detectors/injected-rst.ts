import { TcpFlag } from '../../decode/packet.js';
import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import type { DetectorSpec } from '../detector.js';
import type { Severity } from '../finding.js';
import { endpointsOf, humanSeconds, round, scratchState, tupleText } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  ttlTolerance: number;
  minSenderPackets: number;
  ipIdMaxStep: number;
  minIpIdSteps: number;
  sequentialShare: number;
};

/** A packet counts as the sender carrying on after its RST only this long after it (duplicated captures). */
const CONTINUE_GUARD_SECONDS = 0.001;
/** RSTs examined per conversation and direction. */
const MAX_RSTS = 8;

/**
 * One side of a conversation: the IPv4 ID sequence of its non-RST packets, and its RSTs (allocated
 * only when it sends one: this state exists for every conversation, so it is kept small).
 */
class SideState {
  rsts: RstRecord[] | null = null;
  reported = false;
  last = -1;
  lastTime = -1;
  firstTime = -1;
  steps = 0;
  smallSteps = 0;
  forward = 0;

  add(id: number, time: number, maxStep: number): void {
    if (id <= 0) return; // IPv6 (-1), or 0: Linux's SYN-ACKs and RSTs without a socket, DF packets
    if (this.last >= 0) {
      const delta = (id - this.last) & 0xffff;
      this.steps++;
      if (delta >= 1 && delta <= maxStep) this.smallSteps++;
      if (delta < 0x8000) this.forward += delta;
    } else {
      this.firstTime = time;
    }
    this.last = id;
    this.lastTime = time;
  }

  sequential(minSteps: number, share: number): boolean {
    return this.steps >= minSteps && this.smallSteps >= share * this.steps;
  }

  /** IDs per second the side used while observed. */
  rate(): number {
    const span = this.lastTime - this.firstTime;
    return span > 0 ? this.forward / span : 0;
  }
}

/** One RST and what the claimed sender did around it. */
class RstRecord {
  frame = 0;
  time = 0;
  ttl = 0;
  ipId = -1;
  seq = 0;
  ack = 0;
  flags = 0;
  /** The sender's non-RST packets before this RST, and their TTL range. */
  packetsBefore = 0;
  ttlMinBefore = -1;
  ttlMaxBefore = -1;
  ttlLastBefore = -1;
  ipIdLastBefore = -1;
  ipIdLastTimeBefore = -1;
  ipIdSequentialBefore = false;
  ipIdRateBefore = 0;
  /** The IP ID of the peer's last packet (a forger building the RST from it may copy it). */
  peerIpIdLast = -1;
  /** seq equals the sender's next sequence number as the capture knows it. */
  seqFits = false;
  /** An RST+ACK from the server answering the SYN whose ACK is not the SYN's sequence + 1. */
  ackMismatch = false;
  expectedAck = -1;
  /** Non-RST packets from the sender afterwards: any (TTL), and carrying on (progress). */
  packetsAfter = 0;
  ttlMinAfter = 256;
  ttlMaxAfter = -1;
  ipIdFirstAfter = -1;
  watching = true;
  continued = 0;
  continuedFrame = 0;
  continuedTime = 0;
  continuedWhat = '';
}

class State {
  readonly sides: readonly [SideState, SideState] = [new SideState(), new SideState()];
}

interface Verdict {
  ttl: boolean;
  ipId: boolean;
  continued: boolean;
  ack: boolean;
  count: number;
}

export const injectedRst: DetectorSpec<Thresholds> = {
  id: 'injected-rst',
  title: 'RST probably not sent by its claimed sender',
  severity: 'warning',
  summary: 'An RST whose TTL, IP ID or aftermath does not fit the endpoint it claims to come from: a firewall, IPS or middlebox forged it.',
  explanation: [
    'Every packet a host sends on one connection leaves it with the same initial TTL (hop limit) and',
    'crosses the same number of routers, so at one capture point an endpoint\'s TTL is constant. Linux',
    'numbers the IPv4 IDs of a connection\'s packets from a per-connection counter (and sends 0 in SYN-ACKs',
    'and in RSTs sent without a socket). A device on the path that forges an RST (an IPS, a firewall',
    'with `REJECT --reject-with tcp-reset`, a DPI box, censorship) writes the endpoint\'s addresses and',
    'a fitting sequence number, but its own TTL and IP ID, and the real endpoint, which sent nothing of',
    'the kind, keeps talking. This detector compares each RST with the non-RST packets of its claimed',
    'sender: a TTL outside the range seen from it (plus ttlTolerance), an IP ID that breaks a sequential',
    'ID stream, an RST+ACK to a SYN that does not acknowledge SYN+1, and the claimed sender carrying on',
    '(new data or ACK progress, not a new SYN) after it. One reason makes a warning, two or more a',
    'critical finding. An RST from a sender the capture saw nothing else from cannot be judged.',
  ].join(' '),
  evidence: {
    claimedSender: 'which side the RST claims to come from (client or server) and its ip:port',
    'rsts[].frame': 'frame of the suspicious RST; time, flags, seq and ack (raw) with it',
    'rsts[].ttl': 'the RST\'s TTL / hop limit',
    'rsts[].senderTtlBefore': '{min, max, last} TTL of the claimed sender\'s non-RST packets before the RST (null if none)',
    'rsts[].senderTtlAfter': '{min, max} TTL of its non-RST packets after the RST (null if none)',
    'rsts[].ipId': 'the RST\'s IPv4 ID (null for IPv6)',
    'rsts[].senderIpIdLast': 'IPv4 ID of the claimed sender\'s last non-RST packet before the RST',
    'rsts[].senderIpIdSequential': 'whether the claimed sender\'s IDs were a sequential counter before the RST',
    'rsts[].senderIpIdFirstAfter': 'IPv4 ID of its first non-RST packet after the RST',
    'rsts[].ipIdCopiedFromPeer': 'the RST\'s IP ID equals the peer\'s last packet\'s (a forger built the RST from the packet it answers)',
    'rsts[].seqFits': 'the RST\'s sequence number is exactly the sender\'s next sequence number',
    'rsts[].continuedAfter': 'the claimed sender carried on after the RST: {packets, firstFrame, firstTime, what}',
    'rsts[].reasons': 'which tests failed: ttl, ip-id, continued, ack',
    'sender': 'the claimed sender\'s TTL first/min/max/last over all its non-RST packets',
  },
  thresholds: {
    ttlTolerance: { default: 0, unit: 'hops', description: 'TTL difference beyond the range seen from the sender that is still accepted' },
    minSenderPackets: { default: 1, unit: 'packets', description: 'non-RST packets needed from the claimed sender to judge its TTL' },
    ipIdMaxStep: { default: 64, unit: 'IDs', description: 'largest step between consecutive IDs that still counts as a sequential counter (TSO sends many IDs at once)' },
    minIpIdSteps: { default: 3, unit: 'steps', description: 'ID steps needed before a sender counts as using a sequential counter' },
    sequentialShare: { default: 0.8, unit: 'ratio', description: 'share of small forward steps for a sequential ID counter' },
  },
  advice: [
    'Find the device that sends these resets: an IPS/IDS with active response, a firewall rule such as iptables `REJECT --reject-with tcp-reset` or a policy "reset on deny", a DPI or web filter, a load balancer resetting on its own timeout. The TTL tells how many hops away it is: initial TTL (64, 128 or 255) minus the RST\'s TTL.',
    'Capture at the other end too and run `connscope correlate`: an RST that the claimed sender\'s side never sent is forged on the way.',
    'If it is a security device, check its logs at the RST times for the signature or policy that fired; if it is a balancer or NAT, compare its idle/session timeouts with the connection\'s idle time.',
  ],
  create({ thresholds, slot, report, cap }) {
    const rstsKept = cap(MAX_RSTS, 'RSTs examined per conversation and direction', 'further RSTs not examined');
    const stateOf = (conv: Conversation): State => scratchState(conv, slot, State);

    const judge = (r: RstRecord, final: boolean): Verdict => {
      const tol = thresholds.ttlTolerance;
      const before = r.packetsBefore >= thresholds.minSenderPackets;
      const after = final && r.packetsAfter >= thresholds.minSenderPackets;
      const outside = (min: number, max: number) => r.ttl < min - tol || r.ttl > max + tol;
      const ttl = (before || after) &&
        (!before || outside(r.ttlMinBefore, r.ttlMaxBefore)) &&
        (!after || outside(r.ttlMinAfter, r.ttlMaxAfter));
      let ipId = false;
      if (r.ipId > 0 && r.ipIdSequentialBefore && r.ipIdLastBefore > 0) {
        const delta = (r.ipId - r.ipIdLastBefore) & 0xffff;
        const allowance = thresholds.ipIdMaxStep + 2 * r.ipIdRateBefore * Math.max(0, r.time - r.ipIdLastTimeBefore);
        ipId = delta === 0 || delta > allowance;
      }
      const continued = r.continued > 0;
      const ack = r.ackMismatch;
      return { ttl, ipId, continued, ack, count: Number(ttl) + Number(ipId) + Number(continued) + Number(ack) };
    };

    const reasonText = (r: RstRecord, v: Verdict, who: string): string => {
      const parts: string[] = [];
      if (v.ttl) {
        const ranges: string[] = [];
        if (r.packetsBefore > 0) ranges.push(`${r.ttlMinBefore === r.ttlMaxBefore ? r.ttlMinBefore : `${r.ttlMinBefore}-${r.ttlMaxBefore}`} in its ${r.packetsBefore} packet${r.packetsBefore > 1 ? 's' : ''} before`);
        if (r.packetsAfter > 0 && r.ttlMaxAfter >= 0) ranges.push(`${r.ttlMinAfter === r.ttlMaxAfter ? r.ttlMinAfter : `${r.ttlMinAfter}-${r.ttlMaxAfter}`} in its ${r.packetsAfter} packet${r.packetsAfter > 1 ? 's' : ''} after`);
        const reference = r.packetsBefore > 0 ? r.ttlLastBefore : r.ttlMinAfter;
        const hops = reference - r.ttl;
        parts.push(`its TTL is ${r.ttl} where the ${who} shows ${ranges.join(' and ')} (${plural(Math.abs(hops), 'hop')} ${hops > 0 ? 'more' : 'fewer'} than the ${who}'s own packets, or a different initial TTL)`);
      }
      if (v.ipId) {
        parts.push(`its IP ID ${r.ipId} does not continue the ${who}'s sequential IDs (last ${r.ipIdLastBefore}${r.ipIdFirstAfter > 0 ? `, next after the RST ${r.ipIdFirstAfter}` : ''})`);
      }
      if (v.ack) parts.push(`it acknowledges ${r.ack} instead of the SYN's sequence + 1 (${r.expectedAck}), which no TCP stack does`);
      if (v.continued) {
        parts.push(`the ${who} carried on ${humanSeconds(r.continuedTime - r.time)} later as if nothing had happened (${r.continuedWhat}, frame ${r.continuedFrame}${r.continued > 1 ? `, ${r.continued} packets in all` : ''})`);
      }
      return parts.join('; ');
    };

    const emit = (conv: Conversation, side: 0 | 1, final: boolean): void => {
      const state = conv.scratch[slot] as State | undefined;
      if (state === undefined) return;
      const sideState = state.sides[side];
      const rsts = sideState.rsts;
      if (rsts === null) return;
      const verdicts = rsts.map((r) => judge(r, final));
      const suspicious = rsts.filter((_, i) => verdicts[i].count > 0);
      // Once reported, a finding is kept up to date even if later packets explain it away.
      if (suspicious.length === 0 && !sideState.reported) return;
      sideState.reported = true;
      const who = side === 0 ? 'client' : 'server';
      const sender = side === 0 ? conv.client : conv.server;
      const maxCount = Math.max(0, ...verdicts.map((v) => v.count));
      const severity: Severity = maxCount >= 2 ? 'critical' : maxCount === 1 ? 'warning' : 'info';
      const { client, server } = endpointsOf(conv);
      const senderRef = side === 0 ? client : server;
      const shown = suspicious.length > 0 ? suspicious : rsts;
      const first = shown[0];
      const firstVerdict = verdicts[rsts.indexOf(first)];
      const explanation = suspicious.length > 0
        ? `The RST at frame ${first.frame} on ${tupleText(conv)} claims to come from the ${who} (${senderRef.ip}:${senderRef.port}), but ${reasonText(first, firstVerdict, who)}.` +
          (suspicious.length > 1 ? ` ${suspicious.length - 1} more RST${suspicious.length > 2 ? 's' : ''} from the same claimed sender look the same.` : '') +
          ' A device between the capture point and that endpoint most likely forged it.'
        : `The RST at frame ${first.frame} looked forged at first, but the ${who}'s later packets explain it (same TTL and IP ID pattern): probably a route change, not an injected RST.`;
      report({
        key: `${conv.id}/${who}`,
        severity,
        title: `RST at frame ${first.frame} probably not sent by the ${who}: ${tupleText(conv)}`,
        conversations: [conv.id],
        client,
        server,
        start: first.time,
        end: shown[shown.length - 1].continued > 0 ? shown[shown.length - 1].continuedTime : shown[shown.length - 1].time,
        evidence: {
          claimedSender: { side: who, ip: senderRef.ip, port: senderRef.port },
          rsts: shown.map((r) => {
            const v = verdicts[rsts.indexOf(r)];
            const reasons: string[] = [];
            if (v.ttl) reasons.push('ttl');
            if (v.ipId) reasons.push('ip-id');
            if (v.continued) reasons.push('continued');
            if (v.ack) reasons.push('ack');
            return {
              frame: r.frame,
              time: round(r.time),
              flags: (r.flags & TcpFlag.ACK) !== 0 ? '[R.]' : '[R]',
              seq: r.seq,
              ack: r.ack,
              ttl: r.ttl,
              senderTtlBefore: r.packetsBefore > 0 ? { min: r.ttlMinBefore, max: r.ttlMaxBefore, last: r.ttlLastBefore } : null,
              senderTtlAfter: r.packetsAfter > 0 && r.ttlMaxAfter >= 0 ? { min: r.ttlMinAfter, max: r.ttlMaxAfter } : null,
              ipId: r.ipId >= 0 ? r.ipId : null,
              senderIpIdLast: r.ipIdLastBefore > 0 ? r.ipIdLastBefore : null,
              senderIpIdSequential: r.ipIdSequentialBefore,
              senderIpIdFirstAfter: r.ipIdFirstAfter > 0 ? r.ipIdFirstAfter : null,
              ipIdCopiedFromPeer: r.ipId > 0 && r.ipId === r.peerIpIdLast,
              seqFits: r.seqFits,
              expectedAck: r.ackMismatch ? r.expectedAck : null,
              continuedAfter: r.continued > 0 ? { packets: r.continued, firstFrame: r.continuedFrame, firstTime: round(r.continuedTime), what: r.continuedWhat } : null,
              reasons,
            };
          }),
          sender: { ttlFirst: sender.ttlFirst >= 0 ? sender.ttlFirst : null, ttlMin: sender.ttlMax >= 0 ? sender.ttlMin : null, ttlMax: sender.ttlMax >= 0 ? sender.ttlMax : null, ttlLast: sender.ttlLast >= 0 ? sender.ttlLast : null },
        },
        explanation,
        advice: injectedRst.advice,
      });
    };

    const onRst = (conv: Conversation, seg: Segment, state: State, side: 0 | 1): void => {
      const sideState = state.sides[side];
      sideState.rsts ??= [];
      if (sideState.rsts.length >= MAX_RSTS) {
        rstsKept.refuse();
        return;
      }
      const sender = side === 0 ? conv.client : conv.server;
      const peerState = state.sides[side === 0 ? 1 : 0];
      const r = new RstRecord();
      r.frame = seg.frame;
      r.time = seg.time;
      r.ttl = seg.ttl;
      r.ipId = seg.ipId;
      r.seq = seg.seq;
      r.ack = seg.ack;
      r.flags = seg.flags;
      // RSTs do not update the endpoint's TTL statistics: they describe the packets before this one.
      r.packetsBefore = sender.packets - sender.rsts;
      if (sender.ttlMax >= 0) {
        r.ttlMinBefore = sender.ttlMin;
        r.ttlMaxBefore = sender.ttlMax;
        r.ttlLastBefore = sender.ttlLast;
      } else {
        r.packetsBefore = 0;
      }
      const ids = sideState;
      r.ipIdLastBefore = ids.last;
      r.ipIdLastTimeBefore = ids.lastTime;
      r.ipIdSequentialBefore = ids.sequential(thresholds.minIpIdSteps, thresholds.sequentialShare);
      r.ipIdRateBefore = ids.rate();
      r.peerIpIdLast = peerState.last;
      r.seqFits = sender.seqKnown && seg.seq === sender.nextSeq;
      if (side === 1 && conv.synAckTime < 0 && !conv.midstream && conv.client.isnKnown && (seg.flags & TcpFlag.ACK) !== 0) {
        r.expectedAck = conv.client.nextSeq;
        r.ackMismatch = seg.ack !== conv.client.nextSeq;
      }
      sideState.rsts.push(r);
      const v = judge(r, false);
      if (v.count > 0) emit(conv, side, false);
    };

    return {
      interest: Note.NewData | Note.Retransmission | Note.SynRetransmission | Note.KeepAlive | Note.ZeroWindowProbe |
        Note.ZeroWindow | Note.WindowReopened | Note.DupAck | Note.AckProgress | Note.Fin | Note.Reset | Note.AfterReset |
        Note.AckOfPreviousConversation | Note.PreviousNotCaptured | Note.OutOfOrder | Note.AckedUnseen,
      onSegment(conv: Conversation, seg: Segment) {
        const state = stateOf(conv);
        const side: 0 | 1 = seg.fromClient ? 0 : 1;
        if ((seg.notes & Note.Reset) !== 0) {
          onRst(conv, seg, state, side);
          return;
        }
        const sideState = state.sides[side];
        sideState.add(seg.ipId, seg.time, thresholds.ipIdMaxStep);
        const syn = (seg.flags & TcpFlag.SYN) !== 0;
        const pureSyn = syn && (seg.flags & TcpFlag.ACK) === 0;
        // The peer starting again (a SYN) ends what the RST sender's later packets can prove.
        if (syn) {
          const peerRsts = state.sides[side === 0 ? 1 : 0].rsts;
          if (peerRsts !== null) for (const r of peerRsts) r.watching = false;
        }
        if (sideState.rsts === null) return;
        let changed = false;
        for (const r of sideState.rsts) {
          r.packetsAfter++;
          if (seg.ttl < r.ttlMinAfter) r.ttlMinAfter = seg.ttl;
          if (seg.ttl > r.ttlMaxAfter) r.ttlMaxAfter = seg.ttl;
          if (r.ipIdFirstAfter < 0 && seg.ipId > 0) r.ipIdFirstAfter = seg.ipId;
          if (!r.watching) continue;
          if (pureSyn) {
            // A new connection attempt from the RST's sender (e.g. the SYN retry after a TIME_WAIT
            // collision): the RST was its own.
            r.watching = false;
            continue;
          }
          const progress = (seg.notes & (Note.NewData | Note.AckProgress)) !== 0;
          const again = (seg.notes & (Note.Retransmission | Note.KeepAlive | Note.ZeroWindowProbe)) !== 0 &&
            seg.time - r.time >= CONTINUE_GUARD_SECONDS;
          if (!progress && !again) continue;
          if (r.continued === 0) {
            r.continuedFrame = seg.frame;
            r.continuedTime = seg.time;
            r.continuedWhat = syn ? 'a SYN-ACK' : (seg.notes & Note.NewData) !== 0 ? (seg.payloadLength > 0 ? 'new data' : 'a FIN') : (seg.notes & Note.AckProgress) !== 0 ? 'an ACK of new data' : 'a retransmission';
            changed = true;
          }
          r.continued++;
        }
        if (changed) emit(conv, side, false);
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined) return;
        if (state.sides[0].rsts !== null) emit(conv, 0, true);
        if (state.sides[1].rsts !== null) emit(conv, 1, true);
      },
    };
  },
};
