import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import type { DetectorSpec } from '../detector.js';
import { endpointsOf, humanSeconds, round, tupleText } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  minStallSeconds: number;
};

/** Probe frames and times kept per stall. */
const MAX_PROBES_KEPT = 64;

/** One period during which a receiver advertised a zero window. */
class Stall {
  firstFrame = 0;
  firstTime = 0;
  /** Zero-window advertisements (ACKs with window 0) from the receiver during the stall. */
  advertisements = 0;
  /** Persist probes from the sender during the stall. */
  probes = 0;
  readonly probeFrames: number[] = [];
  readonly probeTimes: number[] = [];
  reopenedFrame = 0;
  reopenedTime = -1;
  /** Last packet time known to belong to the stall (end of an unreopened stall). */
  lastTime = 0;

  duration(): number {
    return (this.reopenedTime >= 0 ? this.reopenedTime : this.lastTime) - this.firstTime;
  }
}

/** One receiver side of a conversation. */
class Receiver {
  current: Stall | null = null;
  /** The longest stall of at least minStallSeconds (the one the finding describes). */
  worst: Stall | null = null;
  /** Finished stalls of at least minStallSeconds, and their total length. */
  stalls = 0;
  stalledSeconds = 0;
}

class State {
  readonly receivers = [new Receiver(), new Receiver()];
}

export const zeroWindow: DetectorSpec<Thresholds> = {
  id: 'zero-window',
  title: 'Receiver stalled with a zero window',
  severity: 'warning',
  summary: 'A receiver advertised a zero window for a long time: the application reading that socket stopped draining it.',
  explanation: [
    'A TCP receiver advertises how much more it can buffer. When the application does not read, the',
    'receive buffer fills and the window drops to zero; the sender stops and sends persist',
    '(zero-window) probes with backoff until the window opens again. Linux probes carry no new data',
    '(one byte below snd.una, the keep-alive shape, which Wireshark labels "Keep-Alive"); they are told',
    'apart by the receiver\'s zero window that preceded them. A zero window lasting a few milliseconds',
    'is normal flow control; one lasting minStallSeconds or more means the reading application is',
    'stuck or too slow, not the network. This detector follows each receiver of each conversation from',
    'its first zero-window advertisement to the window update that reopens it (or the end), counts the',
    'sender\'s probes, and reports the longest stall of each receiver, first while it is still going.',
  ].join(' '),
  evidence: {
    receiver: 'side advertising the zero window (whose application stopped reading): client or server',
    firstZeroWindowFrame: 'frame of the first zero-window advertisement of the longest stall',
    firstZeroWindowTime: 'its capture time (seconds since the epoch)',
    stallSeconds: 'from the first zero window to the reopening window update (or the last packet when it never reopened)',
    zeroWindowAdvertisements: 'segments from the receiver advertising a zero window during the stall',
    probes: 'persist probes sent by the other side during the stall',
    probeFrames: 'their frames (up to 64)',
    probeIntervalsSeconds: 'time between consecutive probes (persist backoff)',
    reopened: 'whether the receiver opened its window again',
    reopenedFrame: 'frame of the window update that reopened it (null when it never did)',
    reopenedTime: 'its capture time',
    stalls: `stalls of at least minStallSeconds by this receiver on this conversation`,
    totalStalledSeconds: 'their total length',
  },
  thresholds: {
    minStallSeconds: { default: 1, unit: 's', description: 'zero window duration that counts as a stall' },
  },
  advice: [
    'Look at the receiving process, not the network: it is not reading its socket fast enough. Check for a blocked event loop, long GC pauses, a slow consumer (disk, database) or a full downstream queue behind it, and thread dumps or profiles taken during the stall.',
    'Make the reader drain the socket independently of slow processing (read into an application queue with its own backpressure and limits), and put a timeout on the slow downstream call.',
    'A bigger receive buffer (net.ipv4.tcp_rmem, SO_RCVBUF) only delays a stall caused by a reader that is slower than the sender; it does help short bursts.',
  ],
  create({ thresholds, slot, report }) {
    const emit = (conv: Conversation, receiverIndex: number, receiver: Receiver): void => {
      const current = receiver.current;
      const worst = current !== null && current.duration() >= thresholds.minStallSeconds &&
        (receiver.worst === null || current.duration() > receiver.worst.duration()) ? current : receiver.worst;
      if (worst === null) return;
      const ongoing = current !== null && current.duration() >= thresholds.minStallSeconds;
      const stalls = receiver.stalls + (ongoing ? 1 : 0);
      const total = receiver.stalledSeconds + (ongoing ? (current as Stall).duration() : 0);
      const who = receiverIndex === 0 ? 'client' : 'server';
      const sender = receiverIndex === 0 ? 'server' : 'client';
      const duration = worst.duration();
      const reopened = worst.reopenedTime >= 0;
      const intervals: number[] = [];
      for (let i = 1; i < worst.probeTimes.length; i++) intervals.push(worst.probeTimes[i] - worst.probeTimes[i - 1]);
      const { client, server } = endpointsOf(conv);
      const closed = conv.closeTime >= 0 && !reopened ? (conv.resetTime >= 0 ? 'the connection was reset' : 'the connection was closed') : '';
      const parts = [
        `The ${who} advertised a zero receive window from frame ${worst.firstFrame} for ${humanSeconds(duration)}`,
        worst.probes > 0 ? `while the ${sender} sent ${plural(worst.probes, 'persist probe')} waiting for room` : `while the ${sender} waited with data to send`,
        reopened
          ? `; the window reopened at frame ${worst.reopenedFrame}.`
          : `; the window never reopened${closed !== '' ? ` before ${closed}` : ' before the capture ended'}.`,
        `The ${who}'s application stopped reading its socket during that time.`,
        stalls > 1 ? `This receiver stalled ${stalls} times on this connection, ${humanSeconds(total)} in all.` : '',
      ];
      report({
        key: `${conv.id}/${who}`,
        severity: 'warning',
        title: `${who === 'client' ? 'Client' : 'Server'} zero window for ${humanSeconds(duration)}${reopened ? '' : ' (never reopened)'}: ${tupleText(conv)}`,
        conversations: [conv.id],
        client,
        server,
        start: worst.firstTime,
        end: reopened ? worst.reopenedTime : worst.lastTime,
        evidence: {
          receiver: who,
          firstZeroWindowFrame: worst.firstFrame,
          firstZeroWindowTime: round(worst.firstTime),
          stallSeconds: round(duration),
          zeroWindowAdvertisements: worst.advertisements,
          probes: worst.probes,
          probeFrames: worst.probeFrames,
          probeIntervalsSeconds: intervals.map(round),
          reopened,
          reopenedFrame: reopened ? worst.reopenedFrame : null,
          reopenedTime: reopened ? round(worst.reopenedTime) : null,
          stalls,
          totalStalledSeconds: round(total),
        },
        explanation: parts.filter((p) => p !== '').join(' ').replace(' ;', ';'),
        advice: zeroWindow.advice,
      });
    };

    /** Ends a receiver's stall (window reopened, or end of conversation) and keeps it if long enough. */
    const endStall = (receiver: Receiver): void => {
      const stall = receiver.current;
      if (stall === null) return;
      receiver.current = null;
      const duration = stall.duration();
      if (duration < thresholds.minStallSeconds) return;
      receiver.stalls++;
      receiver.stalledSeconds += duration;
      if (receiver.worst === null || duration > receiver.worst.duration()) receiver.worst = stall;
    };

    return {
      interest: Note.ZeroWindow | Note.WindowReopened | Note.ZeroWindowProbe,
      onSegment(conv: Conversation, seg: Segment) {
        let state = conv.scratch[slot] as State | undefined;
        if (state === undefined) {
          state = new State();
          conv.scratch[slot] = state;
        }
        const notes = seg.notes;
        const own = seg.fromClient ? 0 : 1;
        // A segment's window speaks for its sender; a persist probe belongs to the other side's stall.
        if ((notes & Note.ZeroWindowProbe) !== 0) {
          const receiver = state.receivers[1 - own];
          const stall = receiver.current;
          // A probe of a stall whose start the capture missed is left alone.
          if (stall !== null) {
            stall.probes++;
            if (stall.probeFrames.length < MAX_PROBES_KEPT) {
              stall.probeFrames.push(seg.frame);
              stall.probeTimes.push(seg.time);
            }
            stall.lastTime = seg.time;
            if (stall.duration() >= thresholds.minStallSeconds) emit(conv, 1 - own, receiver);
          }
        }
        const receiver = state.receivers[own];
        if ((notes & Note.ZeroWindow) !== 0) {
          let stall = receiver.current;
          if (stall === null) {
            stall = new Stall();
            stall.firstFrame = seg.frame;
            stall.firstTime = seg.time;
            receiver.current = stall;
          }
          stall.advertisements++;
          stall.lastTime = seg.time;
          // Report as soon as the stall is long enough (live capture), then update as it grows.
          if (stall.duration() >= thresholds.minStallSeconds) emit(conv, own, receiver);
        } else if ((notes & Note.WindowReopened) !== 0 && receiver.current !== null) {
          const stall = receiver.current;
          stall.reopenedTime = seg.time;
          stall.reopenedFrame = seg.frame;
          const long = stall.duration() >= thresholds.minStallSeconds;
          endStall(receiver);
          if (long) emit(conv, own, receiver);
        }
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined) return;
        for (let i = 0; i < 2; i++) {
          const receiver = state.receivers[i];
          const stall = receiver.current;
          if (stall !== null) {
            // Still closed at the end: the stall lasted at least until the conversation's last packet.
            stall.lastTime = Math.max(stall.lastTime, conv.end);
            endStall(receiver);
          }
          if (receiver.worst !== null) emit(conv, i, receiver);
        }
      },
    };
  },
};
