/**
 * Live state of one TCP conversation (one instance of a 4-tuple) and of its two endpoints. Plain
 * classes with every field initialised in the constructor keep one hidden class per type, which is
 * what keeps property access fast when hundreds of thousands of these are alive.
 */

export const enum Side {
  None = 0,
  Client = 1,
  Server = 2,
}

export type CloseKind = 'fin' | 'rst-client' | 'rst-server' | 'open-at-end' | 'timeout-evicted' | 'superseded';

export class Endpoint {
  readonly addr = new Uint32Array(4);
  port = 0;

  isn = 0;
  isnKnown = false;
  /** One past the highest sequence number this side has sent (snd.nxt as seen on the wire). */
  nextSeq = 0;
  seqKnown = false;
  /** Highest acknowledgement this side has sent, i.e. how far it has received the peer's stream. */
  lastAck = 0;
  ackKnown = false;
  /** Raw window field of the last pure ACK, to recognise duplicate ACKs. */
  lastAckWindowRaw = -1;
  /** Last advertised receive window in bytes (scaled when the scale is known). */
  window = -1;

  mss = -1;
  windowScale = -1;
  sackPermitted = false;
  timestamps = false;

  packets = 0;
  bytes = 0;
  payloadPackets = 0;
  payloadBytes = 0;
  retransmissions = 0;
  retransmittedBytes = 0;
  keepAlives = 0;
  zeroWindowProbes = 0;
  zeroWindows = 0;
  dupAcks = 0;
  outOfOrder = 0;
  previousNotCaptured = 0;
  syns = 0;
  fins = 0;
  rsts = 0;

  firstTime = -1;
  lastTime = -1;
  /** When this side last advanced its highest sequence: out-of-order versus retransmission hinges on it. */
  advancedTime = -1;

  ttlFirst = -1;
  ttlMin = 256;
  ttlMax = -1;
  ttlLast = -1;
  /** IPv4 ID of this side's last packet that was not an RST (-1 for IPv6). */
  ipIdLast = -1;

  finTime = -1;
  finFrame = 0;
  rstTime = -1;
  rstFrame = 0;

  /** Since when this side has advertised a zero window (-1 when open), and the longest such stall. */
  zeroWindowSince = -1;
  zeroWindowLongest = 0;
}

export class Conversation {
  /** 1-based, in order of first packet within the analysis. */
  id = 0;
  ipVersion: 4 | 6 = 4;
  readonly client = new Endpoint();
  readonly server = new Endpoint();
  /** Orientation was guessed from ports because the capture has no SYN for this conversation. */
  midstream = false;

  start = 0;
  end = 0;
  firstFrame = 0;
  lastFrame = 0;
  /** Input (capture file) index the conversation was seen in first. */
  input = 0;

  synTime = -1;
  lastSynTime = -1;
  synFrame = 0;
  synAckTime = -1;
  synAckFrame = 0;
  establishedTime = -1;

  firstFinBy: Side = Side.None;
  resetBy: Side = Side.None;
  resetTime = -1;
  resetFrame = 0;
  /** When the conversation closed (second FIN, or the first RST); -1 while open. */
  closeTime = -1;
  closeKind: CloseKind = 'open-at-end';

  /** Longest silence between two consecutive packets, and when it began. */
  longestIdle = 0;
  longestIdleStart = -1;

  /** The conversation that used this 4-tuple before (0 if none), and facts about how it ended. */
  previousId = 0;
  previousCloseTime = -1;
  previousFirstFinBy: Side = Side.None;
  previousClientNextSeq = 0;
  previousServerNextSeq = 0;
  previousHadTimestamps = false;

  /** Per-detector state, indexed by the detector's position in the engine. */
  scratch: unknown[] = [];

  /** FlowTable handle while the conversation is tracked. */
  handle = -1;
  /** Whether the tracker's close queue holds this conversation. */
  closeQueued = false;
  /** Which of the canonical tuple's endpoints is the client (see FlowTable.sourceIsLow). */
  clientIsLow = true;

  get closed(): boolean {
    return this.closeTime >= 0;
  }

  get established(): boolean {
    return this.establishedTime >= 0;
  }

  endpoint(side: Side.Client | Side.Server): Endpoint {
    return side === Side.Client ? this.client : this.server;
  }
}
