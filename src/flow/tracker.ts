import { type DecodedPacket, TcpFlag } from '../decode/packet.js';
import { Conversation, type CloseKind, type Endpoint, Side } from './conversation.js';
import { FlowTable } from './flow-table.js';
import { sourceLooksLikeClient } from './orientation.js';
import { Note, Segment } from './segment.js';
import { seqGt, seqLt } from './seq.js';

/** Receives the tracker's conclusions; detectors and the ladder view implement it. */
export interface FlowObserver {
  /** After the conversation's state includes this segment. */
  onSegment(conv: Conversation, seg: Segment): void;
  /** The conversation will receive no more packets; its closeKind is final. */
  onFinalize(conv: Conversation): void;
  /** Slots of Conversation.scratch the observer uses (the detectors' per-conversation state). */
  readonly scratchSlots?: number;
}

export interface TrackerOptions {
  /**
   * Conversations tracked at once. Past it the longest-closed, then the cheapest to lose (see
   * evictionTier) and longest-silent, are finalised as `timeout-evicted`, so a SYN flood or port
   * scan costs bounded memory and does not push out the connections worth diagnosing.
   */
  maxConversations: number;
  /**
   * How long a closed conversation stays in the table. A SYN on its tuple within this time is linked
   * to it (TIME_WAIT collisions and port reuse need the old conversation's sequence space).
   */
  closedLingerSeconds: number;
  /**
   * A segment below its sender's highest sequence that arrives this soon after the sender last
   * advanced is out of order rather than retransmitted, when the handshake RTT is unknown. With a
   * handshake the RTT is the window instead (Wireshark's rule, so counts compare with tshark's).
   */
  outOfOrderSeconds: number;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  maxConversations: 500_000,
  closedLingerSeconds: 120,
  outOfOrderSeconds: 0.003,
};

/** 2 ** n for every window scale byte: Math.pow per packet costs more than the rest of onWindow. */
const POWERS_OF_TWO = Float64Array.from({ length: 256 }, (_, n) => 2 ** n);

/** Fraction of maxConversations freed at once when the cap is hit, so eviction cost is amortised. */
const EVICTION_BATCH = 0.05;

export interface TrackerStats {
  tcpPackets: number;
  conversations: number;
  evicted: number;
  /** Packets per TCP flag byte, for packets sent by clients [0] and by servers [1]. */
  flagsByDirection: [Uint32Array, Uint32Array];
}

/**
 * Rebuilds TCP conversations from decoded segments: one Conversation per instance of a 4-tuple,
 * each endpoint's sequence state, and a per-segment verdict (retransmission, keep-alive, zero
 * window, ...) handed to observers. The tracker never looks at bytes; it sees DecodedPacket fields.
 */
export class FlowTracker {
  readonly stats: TrackerStats = {
    tcpPackets: 0,
    conversations: 0,
    evicted: 0,
    flagsByDirection: [new Uint32Array(256), new Uint32Array(256)],
  };
  private readonly table = new FlowTable<Conversation>();
  /**
   * Closed conversations in order of closing. Slots behind the head are cleared: a finalised
   * conversation held here would keep its whole page of records alive until the next splice.
   */
  private readonly closeQueue: (Conversation | null)[] = [];
  private closeQueueHead = 0;
  private readonly seg = new Segment();
  private readonly options: TrackerOptions;
  private now = 0;
  /** finish() is releasing every conversation: no point in compacting their records. */
  private finishing = false;

  constructor(
    private readonly observer: FlowObserver,
    options: Partial<TrackerOptions> = {},
  ) {
    this.options = { ...DEFAULT_TRACKER_OPTIONS, ...options };
  }

  get liveConversations(): number {
    return this.table.size;
  }

  /** Feeds one TCP segment. `wireLength` is the frame's length on the wire. */
  packet(frame: number, time: number, wireLength: number, input: number, pkt: DecodedPacket): void {
    this.now = time;
    this.stats.tcpPackets++;
    const table = this.table;
    table.loadKey(pkt);
    let handle = table.find();
    let conv: Conversation;
    if (handle < 0) {
      this.makeRoom();
      conv = this.open(frame, time, input, pkt, null);
      handle = table.insert(conv);
      conv.handle = handle;
    } else {
      conv = table.get(handle);
      if (this.startsNewInstance(conv, pkt)) {
        const previous = conv;
        conv = this.open(frame, time, input, pkt, previous);
        conv.handle = handle;
        table.set(handle, conv);
        previous.handle = -1;
        this.finalize(previous, previous.closed ? closeKindOf(previous) : 'superseded');
      }
    }
    this.update(conv, table.sourceIsLow === conv.clientIsLow, frame, time, wireLength, pkt);
    this.expireClosed();
  }

  /** Finalises every conversation still tracked (end of capture). */
  finish(): void {
    this.finishing = true;
    this.table.forEach((conv, handle) => {
      this.table.remove(handle);
      conv.handle = -1;
      this.finalize(conv, closeKindOf(conv));
    });
    this.closeQueue.length = 0;
    this.closeQueueHead = 0;
    this.finishing = false;
  }

  /** Calls fn for each live conversation (live views: top talkers, trouble ranking). */
  forEachLive(fn: (conv: Conversation) => void): void {
    this.table.forEach((conv) => fn(conv));
  }

  /**
   * A SYN starts a new conversation on a known tuple unless it is the same connection attempt
   * again: same sender and same initial sequence number (a SYN retransmission, including the retry
   * that follows a TIME_WAIT collision's RST).
   */
  private startsNewInstance(conv: Conversation, pkt: DecodedPacket): boolean {
    if ((pkt.flags & (TcpFlag.SYN | TcpFlag.ACK)) !== TcpFlag.SYN) return false;
    const fromClient = this.table.sourceIsLow === conv.clientIsLow;
    if (!fromClient) return true;
    if (conv.client.isnKnown) return conv.client.isn !== pkt.seq;
    // The SYN-ACK was captured before its SYN (capture reordering): same handshake if it acks this SYN.
    return !(conv.server.isnKnown && conv.server.ackKnown && conv.server.lastAck === ((pkt.seq + 1) >>> 0));
  }

  private open(
    frame: number,
    time: number,
    input: number,
    pkt: DecodedPacket,
    previous: Conversation | null,
  ): Conversation {
    const conv = new Conversation(this.observer.scratchSlots);
    conv.id = ++this.stats.conversations;
    conv.input = input;
    conv.ipVersion = pkt.ipVersion;
    conv.start = time;
    conv.end = time;
    conv.firstFrame = frame;
    const syn = (pkt.flags & TcpFlag.SYN) !== 0;
    const ack = (pkt.flags & TcpFlag.ACK) !== 0;
    let sourceIsClient: boolean;
    if (syn) sourceIsClient = !ack;
    else {
      sourceIsClient = sourceLooksLikeClient(pkt.srcPort, pkt.dstPort);
      conv.midstream = true;
    }
    conv.clientIsLow = sourceIsClient === this.table.sourceIsLow;
    const client = conv.client;
    const server = conv.server;
    client.setAddress(sourceIsClient ? pkt.srcAddr : pkt.dstAddr);
    server.setAddress(sourceIsClient ? pkt.dstAddr : pkt.srcAddr);
    client.port = sourceIsClient ? pkt.srcPort : pkt.dstPort;
    server.port = sourceIsClient ? pkt.dstPort : pkt.srcPort;
    if (previous !== null) {
      conv.previousId = previous.id;
      conv.previousCloseTime = previous.closeTime;
      conv.previousFirstFinBy = previous.firstFinBy;
      // The tuple's roles may be swapped in the new instance; carry each endpoint's own stream.
      const sameRoles = previous.clientIsLow === conv.clientIsLow;
      conv.previousClientNextSeq = (sameRoles ? previous.client : previous.server).nextSeq;
      conv.previousServerNextSeq = (sameRoles ? previous.server : previous.client).nextSeq;
      conv.previousHadTimestamps = previous.client.timestamps && previous.server.timestamps;
    }
    return conv;
  }

  private update(
    conv: Conversation,
    fromClient: boolean,
    frame: number,
    time: number,
    wireLength: number,
    pkt: DecodedPacket,
  ): void {
    const sender = fromClient ? conv.client : conv.server;
    const peer = fromClient ? conv.server : conv.client;
    const flags = pkt.flags;
    const syn = (flags & TcpFlag.SYN) !== 0;
    const fin = (flags & TcpFlag.FIN) !== 0;
    const rst = (flags & TcpFlag.RST) !== 0;
    const hasAck = (flags & TcpFlag.ACK) !== 0;
    const seg = this.seg;

    seg.frame = frame;
    seg.time = time;
    seg.fromClient = fromClient;
    seg.flags = flags;
    seg.seq = pkt.seq;
    seg.ack = pkt.ack;
    seg.payloadLength = pkt.payloadLength;
    seg.ttl = pkt.ttl;
    seg.ipId = pkt.ipId;
    seg.hasTimestamp = pkt.hasTimestamp;
    seg.sackBlocks = pkt.sackCount;
    let notes = 0;

    const idle = sender.packets + peer.packets > 0 ? time - conv.end : 0;
    seg.idleBefore = idle > 0 ? idle : 0;
    if (idle > conv.longestIdle) {
      conv.longestIdle = idle;
      conv.longestIdleStart = conv.end;
    }
    if (conv.resetBy !== Side.None && !rst) notes |= Note.AfterReset;

    if (syn) notes |= this.onSyn(conv, sender, fromClient, frame, time, pkt);
    else if (!rst) notes |= this.onSequence(sender, peer, time, pkt, fin, this.outOfOrderWindow(conv));

    if (hasAck && !syn) notes |= this.onAck(conv, sender, peer, fromClient, pkt, rst, fin);
    if (hasAck && fromClient && !syn && conv.establishedTime < 0 && conv.synAckTime >= 0 &&
        pkt.ack === ((conv.server.isn + 1) >>> 0)) {
      conv.establishedTime = time;
    }

    if (!syn && !rst) notes |= this.onWindow(sender, peer, time, pkt.window);
    else if (syn) sender.window = pkt.window;

    if (fin) {
      notes |= Note.Fin;
      this.onFin(conv, sender, fromClient ? Side.Client : Side.Server, frame, time);
    }
    if (rst) {
      notes |= Note.Reset;
      this.onRst(conv, sender, fromClient ? Side.Client : Side.Server, frame, time);
    } else {
      sender.ipIdLast = pkt.ipId;
      sender.ttlLast = pkt.ttl;
      if (sender.ttlFirst < 0) sender.ttlFirst = pkt.ttl;
      if (pkt.ttl < sender.ttlMin) sender.ttlMin = pkt.ttl;
      if (pkt.ttl > sender.ttlMax) sender.ttlMax = pkt.ttl;
    }

    sender.packets++;
    sender.bytes += wireLength;
    if (pkt.payloadLength > 0) {
      sender.payloadPackets++;
      sender.payloadBytes += pkt.payloadLength;
    }
    if (sender.firstTime < 0) sender.firstTime = time;
    sender.lastTime = time;
    if (time > conv.end) conv.end = time;
    conv.lastFrame = frame;
    this.stats.flagsByDirection[fromClient ? 0 : 1][flags & 0xff]++;
    if ((notes & Note.NewData) !== 0) this.noteNewData(sender, peer, seg);

    seg.window = sender.window;
    seg.notes = notes;
    this.observer.onSegment(conv, seg);
  }

  /** The sender's last new-data segment, and the head of its flight when it starts at the peer's ACK. */
  private noteNewData(sender: Endpoint, peer: Endpoint, seg: Segment): void {
    const first = sender.packets === 1;
    sender.lastNewSeq = seg.seq;
    sender.lastNewTime = seg.time;
    sender.lastNewFrame = seg.frame;
    sender.lastNewIdle = seg.idleBefore;
    sender.lastNewFirst = first;
    if (!peer.ackKnown || peer.lastAck === seg.seq) {
      sender.headSeq = seg.seq;
      sender.headTime = seg.time;
      sender.headFrame = seg.frame;
      sender.headIdle = seg.idleBefore;
      sender.headFirst = first;
    }
  }

  private onSyn(
    conv: Conversation,
    sender: Endpoint,
    fromClient: boolean,
    frame: number,
    time: number,
    pkt: DecodedPacket,
  ): number {
    sender.syns++;
    let notes: number;
    if (sender.isnKnown && sender.isn === pkt.seq) {
      sender.retransmissions++;
      notes = Note.SynRetransmission | Note.Retransmission;
      if (conv.closed && !conv.established) this.reopen(conv);
    } else {
      sender.isn = pkt.seq;
      sender.isnKnown = true;
      sender.nextSeq = (pkt.seq + 1 + pkt.payloadLength) >>> 0;
      sender.seqKnown = true;
      sender.mss = pkt.mss;
      sender.windowScale = pkt.windowScale;
      sender.sackPermitted = pkt.sackPermitted;
      sender.timestamps = pkt.hasTimestamp;
      notes = Note.NewData;
    }
    if ((pkt.flags & TcpFlag.ACK) !== 0 && !sender.ackKnown) {
      sender.lastAck = pkt.ack;
      sender.ackKnown = true;
    }
    if (fromClient) {
      if (conv.synTime < 0) {
        conv.synTime = time;
        conv.synFrame = frame;
      }
      conv.lastSynTime = time;
    } else if (conv.synAckTime < 0) {
      conv.synAckTime = time;
      conv.synAckFrame = frame;
    }
    return notes;
  }

  /** Classifies the sequence space a non-SYN, non-RST segment occupies. */
  private outOfOrderWindow(conv: Conversation): number {
    return conv.establishedTime >= 0 && conv.lastSynTime >= 0 ? conv.establishedTime - conv.lastSynTime : this.options.outOfOrderSeconds;
  }

  private onSequence(sender: Endpoint, peer: Endpoint, time: number, pkt: DecodedPacket, fin: boolean, outOfOrderWindow: number): number {
    const length = pkt.payloadLength + (fin ? 1 : 0);
    const seq = pkt.seq;
    if (!sender.seqKnown) {
      sender.nextSeq = (seq + length) >>> 0;
      sender.seqKnown = true;
      return length > 0 ? Note.NewData : 0;
    }
    // Keep-alive and persist probes re-send the byte before snd.una (or nothing at all) while
    // nothing is outstanding; a one-byte segment re-sent while unacknowledged is a retransmission.
    if (pkt.payloadLength <= 1 && !fin && seq === ((sender.nextSeq - 1) >>> 0) &&
        (pkt.flags & TcpFlag.ACK) !== 0 && (!peer.ackKnown || peer.lastAck === sender.nextSeq)) {
      if (peer.window === 0) {
        sender.zeroWindowProbes++;
        return Note.ZeroWindowProbe;
      }
      sender.keepAlives++;
      return Note.KeepAlive;
    }
    if (length === 0) return 0;
    const end = (seq + length) >>> 0;
    if (seqGt(end, sender.nextSeq)) {
      let notes = Note.NewData;
      if (seqGt(seq, sender.nextSeq)) {
        notes |= Note.PreviousNotCaptured;
        sender.previousNotCaptured++;
      } else if (seqLt(seq, sender.nextSeq)) {
        // Re-sends some old bytes and carries on with new ones (repacketised after a loss).
        notes |= Note.Retransmission;
        sender.retransmissions++;
        sender.retransmittedBytes += (sender.nextSeq - seq) >>> 0;
      }
      sender.nextSeq = end;
      sender.advancedTime = time;
      return notes;
    }
    // A re-send of exactly the last segment (a tail-loss probe) is never out of order.
    if (time - sender.advancedTime < outOfOrderWindow && end !== sender.nextSeq) {
      sender.outOfOrder++;
      return Note.OutOfOrder;
    }
    sender.retransmissions++;
    sender.retransmittedBytes += pkt.payloadLength;
    return Note.Retransmission;
  }

  private onAck(
    conv: Conversation,
    sender: Endpoint,
    peer: Endpoint,
    fromClient: boolean,
    pkt: DecodedPacket,
    rst: boolean,
    fin: boolean,
  ): number {
    const ack = pkt.ack;
    // A server answering a SYN with a plain ACK: that ACK belongs to an older connection's stream
    // (TIME_WAIT), not to this one, and must not move this conversation's state.
    if (!fromClient && conv.synAckTime < 0 && conv.client.isnKnown && !conv.midstream && !rst) {
      return ack !== conv.client.nextSeq ? Note.AckOfPreviousConversation : 0;
    }
    let notes = 0;
    if (!sender.ackKnown) {
      sender.lastAck = ack;
      sender.ackKnown = true;
    } else if (seqGt(ack, sender.lastAck)) {
      sender.lastAck = ack;
      notes |= Note.AckProgress;
    } else if (ack === sender.lastAck && pkt.payloadLength === 0 && !rst && !fin &&
               pkt.window === sender.lastAckWindowRaw && peer.seqKnown && seqLt(ack, peer.nextSeq)) {
      sender.dupAcks++;
      notes |= Note.DupAck;
    }
    if (peer.seqKnown && seqGt(ack, peer.nextSeq)) notes |= Note.AckedUnseen;
    if (!rst) sender.lastAckWindowRaw = pkt.window;
    return notes;
  }

  private onWindow(sender: Endpoint, peer: Endpoint, time: number, rawWindow: number): number {
    // RFC 7323: the scale applies only when both SYNs carried the option.
    const shift = sender.windowScale;
    const scaled = shift >= 0 && peer.windowScale >= 0 ? rawWindow * POWERS_OF_TWO[shift & 0xff] : rawWindow;
    sender.window = scaled;
    if (rawWindow === 0) {
      sender.zeroWindows++;
      if (sender.zeroWindowSince < 0) sender.zeroWindowSince = time;
      return Note.ZeroWindow;
    }
    if (sender.zeroWindowSince >= 0) {
      const stall = time - sender.zeroWindowSince;
      if (stall > sender.zeroWindowLongest) sender.zeroWindowLongest = stall;
      sender.zeroWindowSince = -1;
      return Note.WindowReopened;
    }
    return 0;
  }

  private onFin(conv: Conversation, sender: Endpoint, side: Side, frame: number, time: number): void {
    sender.fins++;
    if (sender.finTime >= 0) return;
    sender.finTime = time;
    sender.finFrame = frame;
    if (conv.firstFinBy === Side.None) conv.firstFinBy = side;
    if (conv.client.finTime >= 0 && conv.server.finTime >= 0) this.close(conv, time);
  }

  private onRst(conv: Conversation, sender: Endpoint, side: Side, frame: number, time: number): void {
    sender.rsts++;
    if (sender.rstTime < 0) {
      sender.rstTime = time;
      sender.rstFrame = frame;
    }
    if (conv.resetBy === Side.None) {
      conv.resetBy = side;
      conv.resetTime = time;
      conv.resetFrame = frame;
    }
    this.close(conv, time);
  }

  private close(conv: Conversation, time: number): void {
    if (conv.closeTime >= 0) return;
    conv.closeTime = time;
    if (!conv.closeQueued) {
      conv.closeQueued = true;
      this.closeQueue.push(conv);
    }
  }

  /**
   * A connection attempt continues after an RST (the client reset a TIME_WAIT ACK and re-sends its
   * SYN): the attempt is still this conversation, so it is open again.
   */
  private reopen(conv: Conversation): void {
    conv.closeTime = -1;
    conv.resetBy = Side.None;
    conv.resetTime = -1;
  }

  /** Finalises conversations closed for longer than the linger time. */
  private expireClosed(): void {
    const queue = this.closeQueue;
    const horizon = this.now - this.options.closedLingerSeconds;
    while (this.closeQueueHead < queue.length) {
      const conv = queue[this.closeQueueHead] as Conversation;
      if (conv.handle >= 0 && conv.closeTime >= 0 && conv.closeTime > horizon) break;
      queue[this.closeQueueHead++] = null;
      conv.closeQueued = false;
      if (conv.handle < 0) continue; // already finalised (superseded by a new SYN)
      if (conv.closeTime < 0) continue; // reopened
      this.table.remove(conv.handle);
      conv.handle = -1;
      this.finalize(conv, closeKindOf(conv));
    }
    if (this.closeQueueHead > 4096 && this.closeQueueHead * 2 > queue.length) {
      queue.splice(0, this.closeQueueHead);
      this.closeQueueHead = 0;
    }
  }

  /** Keeps the table under maxConversations: closed conversations go first, then the most idle. */
  private makeRoom(): void {
    const cap = this.options.maxConversations;
    if (this.table.size < cap) return;
    const target = Math.max(1, Math.floor(cap * (1 - EVICTION_BATCH)));
    const queue = this.closeQueue;
    while (this.table.size > target && this.closeQueueHead < queue.length) {
      const conv = queue[this.closeQueueHead] as Conversation;
      queue[this.closeQueueHead++] = null;
      conv.closeQueued = false;
      if (conv.handle < 0 || conv.closeTime < 0) continue;
      this.table.remove(conv.handle);
      conv.handle = -1;
      this.finalize(conv, closeKindOf(conv));
    }
    if (this.table.size > target) this.evictLive(target);
  }

  /**
   * Evicts live conversations down to `target`. A flood or a scan must not push out the conversations
   * that matter: the cheapest tier goes first (see evictionTier), and within a tier the longest
   * silent, in table order. One pass over the table notes each conversation's tier and last packet
   * time; the rest works on those arrays (table order is stable under removal).
   */
  private evictLive(target: number): void {
    const table = this.table;
    const size = table.size;
    const handles = new Int32Array(size);
    const tiers = new Uint8Array(size);
    const ends = new Float64Array(size);
    const counts = [0, 0, 0];
    let n = 0;
    table.forEach((conv, handle) => {
      const tier = evictionTier(conv);
      handles[n] = handle;
      tiers[n] = tier;
      ends[n] = conv.end;
      counts[tier]++;
      n++;
    });
    let left = size - target;
    for (let tier = 0; tier < counts.length && left > 0; tier++) {
      if (counts[tier] === 0) continue;
      const take = Math.min(left, counts[tier]);
      const threshold = take === counts[tier] ? Infinity : idleThreshold(ends, tiers, tier, counts[tier], take);
      let taken = 0;
      for (let i = 0; i < n && taken < take; i++) {
        if (tiers[i] !== tier || ends[i] > threshold) continue;
        const conv = table.get(handles[i]);
        table.remove(handles[i]);
        conv.handle = -1;
        this.stats.evicted++;
        this.finalize(conv, 'timeout-evicted');
        taken++;
      }
      left -= taken;
    }
  }

  private finalize(conv: Conversation, kind: CloseKind): void {
    conv.closeKind = kind;
    closeZeroWindow(conv.client, conv.end);
    closeZeroWindow(conv.server, conv.end);
    this.observer.onFinalize(conv);
    conv.release(!this.finishing);
  }
}

/** Last-packet time at or below which `count` of the `size` conversations of a tier lie. */
function idleThreshold(ends: Float64Array, tiers: Uint8Array, tier: number, size: number, count: number): number {
  const ofTier = new Float64Array(size);
  let n = 0;
  for (let i = 0; i < tiers.length; i++) if (tiers[i] === tier) ofTier[n++] = ends[i];
  return kthSmallest(ofTier, Math.min(size - 1, count - 1));
}

/** The value sorting `values` would put at index k (Hoare's selection: linear, where a sort is not). Reorders values. */
function kthSmallest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i++] = values[j];
        values[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}

/**
 * What evicting a live conversation would lose, cheapest first. 0: two packets or fewer (a flood's
 * SYN, a scan's SYN and RST, a stray segment). 1: a handshake that never completed or carried data
 * (retried SYNs, a SYN flood's retransmitted SYN-ACKs). 2: a connection that carried data. Only once
 * a tier is empty does eviction reach the next: a SYN flood or a port scan (tier 0) cannot push out
 * a connection that got past its handshake, however long that connection has been idle.
 */
function evictionTier(conv: Conversation): number {
  if (conv.client.packets + conv.server.packets <= 2) return 0;
  return conv.establishedTime < 0 && conv.client.payloadPackets + conv.server.payloadPackets === 0 ? 1 : 2;
}

/** A window still closed when the conversation ends counts as a stall up to its last packet. */
function closeZeroWindow(endpoint: Endpoint, end: number): void {
  if (endpoint.zeroWindowSince < 0) return;
  const stall = end - endpoint.zeroWindowSince;
  if (stall > endpoint.zeroWindowLongest) endpoint.zeroWindowLongest = stall;
}

function closeKindOf(conv: Conversation): CloseKind {
  if (conv.resetBy === Side.Client) return 'rst-client';
  if (conv.resetBy === Side.Server) return 'rst-server';
  if (conv.client.finTime >= 0 && conv.server.finTime >= 0) return 'fin';
  return 'open-at-end';
}
