import { median } from '../detect/util.js';
import type { ConvPrint, PacketLog } from './fingerprint.js';
import type { Pair, PayloadMatching } from './pairing.js';
import { type CaptureName, type Dir, packetRef, type PacketRef } from './path.js';

/**
 * Pairing 2 in detail: a proxy that terminates TCP, front leg (client to proxy) in one capture and
 * back leg (proxy to backend) in the other. Byte streams are compared, not packets: the proxy
 * re-segments, ACKs on its own and numbers its own sequence space. For each direction the stream
 * is followed from the leg where the proxy receives it to the leg where it sends it on:
 *
 *   sent by the sender  >=  ACKed by the proxy  >=  put on the other leg  >=  ACKed by the far end
 *
 * Bytes ACKed by the proxy but never put on the other leg are unforwarded; ACKed by the proxy but
 * never ACKed by the far end, undelivered: both are a blackhole when they stay so.
 */

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const RETRANSMISSION = 1 << 1;

export interface StreamTransfer {
  direction: Dir;
  /** Leg where the proxy receives this direction's bytes, and where it sends them on. */
  receivedOn: 'front' | 'back';
  /** Payload bytes the sender sent (distinct sequence space), the proxy ACKed, the proxy sent on, the far end ACKed. */
  sent: number;
  ackedByProxy: number;
  forwarded: number;
  delivered: number;
  /** ACKed by the proxy, never put on the other leg / never ACKed by the far end. */
  unforwarded: number;
  undelivered: number;
  /** Bytes the proxy adds before the stream on the other leg (a PROXY protocol header, say): other-leg offset minus this leg's. */
  streamOffset: number | null;
  /** The first undelivered byte (relative sequence number on the receiving leg), the segment that carried it, and the proxy's ACK of it. */
  firstUndelivered: { seq: number; segment: PacketRef | null; ackedBy: PacketRef | null } | null;
  /** The first unforwarded byte and the segment that carried it on the receiving leg. */
  firstUnforwarded: { seq: number; segment: PacketRef | null; ackedBy: PacketRef | null } | null;
  /** Seconds from the proxy's ACK of the first undelivered byte to the end of what both captures saw. */
  stuckSeconds: number | null;
}

export interface RequestLatency {
  /** The request's last segment and the response's first, on the front leg. */
  request: PacketRef;
  response: PacketRef;
  /** Front: request to response. Back: the forwarded request to the backend's response. */
  frontSeconds: number;
  backSeconds: number | null;
  /** frontSeconds - backSeconds: the time spent in the proxy (both ways), independent of the clock offset. */
  proxySeconds: number | null;
}

export interface BackFailure {
  kind: 'unacknowledged' | 'reset-by-backend' | 'reset-by-proxy' | 'connect-failed';
  /** First packet of the failure: the first data never acknowledged, the RST, the unanswered SYN. */
  since: PacketRef;
  /** Retransmissions by the proxy on the back leg after `since`. */
  retransmissions: number;
  /** The RST that ended the back leg, if any. */
  reset: PacketRef | null;
}

export interface FrontOutcome {
  /** What the client was told after the back leg failed. */
  kind: 'reset' | 'answered' | 'fin' | 'client-closed' | 'open';
  /** The proxy's reaction on the front leg (RST, payload or FIN), if any. */
  proxyPacket: PacketRef | null;
  /** The client's own close (FIN or RST) after the failure, if any. */
  clientClose: PacketRef | null;
  /** Seconds from the back-leg failure to the proxy's reaction (or to the end of the captures). */
  silentSeconds: number;
}

export interface ProxyReport {
  pair: Pair;
  /** The capture with the client-facing leg. */
  front: CaptureName;
  frontBy: 'payload timing' | 'start time';
  /** Forwarding delay through the proxy, c2s (front to back) and s2c (back to front), median, seconds. */
  forwardDelay: { c2s: number | null; s2c: number | null };
  streams: { c2s: StreamTransfer; s2c: StreamTransfer };
  requests: RequestLatency[];
  requestCount: number;
  proxySeconds: { median: number; max: number } | null;
  backFailure: BackFailure | null;
  frontOutcome: FrontOutcome | null;
}

export interface ProxyContext {
  offset: number;
  /** End of what both captures saw, on A's clock. */
  observedUntil: number;
  maxRequests: number;
}

function hasFlag(log: PacketLog, i: number, flag: number): boolean {
  return (log.flags[i] & flag) !== 0;
}

/** Relative sequence base of one side's stream: its ISN, or one before its first payload. */
function streamBase(conv: ConvPrint, senderIsClient: boolean): number | null {
  const isn = senderIsClient ? conv.isn.client : conv.isn.server;
  if (isn !== null) return isn;
  const log = conv.packets;
  for (let i = 0; i < log.length; i++) {
    if (log.fromClient(i) === senderIsClient && log.len[i] > 0) return (log.seq[i] - 1) >>> 0;
  }
  return null;
}

interface Leg {
  conv: ConvPrint;
  name: CaptureName;
  pair: Pair;
  /** Seconds to subtract from this leg's times to put them on A's clock. */
  shift: number;
}

function relOf(value: number, base: number): number {
  return (value - base) >>> 0;
}

/** Highest end of the sender's payload, relative to base (1 = nothing sent). */
function dataEnd(log: PacketLog, senderIsClient: boolean, base: number): number {
  let end = 1;
  for (let i = 0; i < log.length; i++) {
    if (log.fromClient(i) !== senderIsClient || log.len[i] === 0 || hasFlag(log, i, RST)) continue;
    const e = relOf(log.seq[i], base) + log.len[i];
    if (e > end && e < 0x80000000) end = e;
  }
  return end;
}

/** Highest acknowledgement of the sender's stream by its peer, relative to base (1 = nothing). */
function ackEnd(log: PacketLog, senderIsClient: boolean, base: number): number {
  let end = 1;
  for (let i = 0; i < log.length; i++) {
    if (log.fromClient(i) === senderIsClient || !hasFlag(log, i, ACK) || hasFlag(log, i, RST) || hasFlag(log, i, SYN)) continue;
    const a = relOf(log.ack[i], base);
    if (a > end && a < 0x80000000) end = a;
  }
  return end;
}

function segmentHolding(leg: Leg, senderIsClient: boolean, base: number, byte: number): PacketRef | null {
  const log = leg.conv.packets;
  for (let i = 0; i < log.length; i++) {
    if (log.fromClient(i) !== senderIsClient || log.len[i] === 0) continue;
    const s = relOf(log.seq[i], base);
    if (s <= byte && byte < s + log.len[i]) return shifted(packetRef(leg.pair, leg.name, i), leg.shift);
  }
  return null;
}

function ackOf(leg: Leg, senderIsClient: boolean, base: number, byte: number): PacketRef | null {
  const log = leg.conv.packets;
  for (let i = 0; i < log.length; i++) {
    if (log.fromClient(i) === senderIsClient || !hasFlag(log, i, ACK) || hasFlag(log, i, RST)) continue;
    const a = relOf(log.ack[i], base);
    if (a > byte && a < 0x80000000) return shifted(packetRef(leg.pair, leg.name, i), leg.shift);
  }
  return null;
}

/** A packet reference with its time put on A's clock (frames stay those of its own capture). */
function shifted(r: PacketRef, shift: number): PacketRef {
  return shift === 0 ? r : { ...r, time: r.time - shift };
}

function transfer(
  direction: Dir,
  receivedOn: 'front' | 'back',
  u: Leg,
  w: Leg,
  matches: { u: number; w: number }[],
  ctx: ProxyContext,
): StreamTransfer {
  // On the receiving leg the sender is the client (c2s on the front) or the server (s2c on the back);
  // on the sending leg the proxy is the client (back) or the server (front).
  const senderIsClientU = direction === 'c2s';
  const proxyIsClientW = direction === 'c2s';
  const uLog = u.conv.packets;
  const wLog = w.conv.packets;
  const uBase = streamBase(u.conv, senderIsClientU);
  const wBase = streamBase(w.conv, proxyIsClientW);
  const empty: StreamTransfer = {
    direction, receivedOn, sent: 0, ackedByProxy: 0, forwarded: 0, delivered: 0, unforwarded: 0, undelivered: 0,
    streamOffset: null, firstUndelivered: null, firstUnforwarded: null, stuckSeconds: null,
  };
  if (uBase === null) return empty;
  const uData = dataEnd(uLog, senderIsClientU, uBase);
  const uAck = Math.min(ackEnd(uLog, senderIsClientU, uBase), uData);
  // The offset between the two streams: from matched segments, else none (both start at byte 1).
  let offset: number | null = null;
  if (wBase !== null && matches.length > 0) {
    const counts = new Map<number, number>();
    for (const m of matches) {
      const d = (relOf(wLog.seq[m.w], wBase) - relOf(uLog.seq[m.u], uBase)) | 0;
      counts.set(d, (counts.get(d) ?? 0) + 1);
    }
    offset = [...counts.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0])[0][0];
  }
  const shift = offset ?? 0;
  let wSent = 1;
  let wAcked = 1;
  if (wBase !== null) {
    wSent = Math.max(1, dataEnd(wLog, proxyIsClientW, wBase) - shift);
    wAcked = Math.max(1, Math.min(ackEnd(wLog, proxyIsClientW, wBase) - shift, wSent));
  }
  const result: StreamTransfer = {
    ...empty,
    sent: uData - 1,
    ackedByProxy: uAck - 1,
    forwarded: wSent - 1,
    delivered: wAcked - 1,
    unforwarded: Math.max(0, uAck - wSent),
    undelivered: Math.max(0, uAck - wAcked),
    streamOffset: offset,
  };
  if (result.undelivered > 0) {
    const ackedBy = ackOf(u, senderIsClientU, uBase, wAcked);
    result.firstUndelivered = { seq: wAcked, segment: segmentHolding(u, senderIsClientU, uBase, wAcked), ackedBy };
    if (ackedBy !== null) result.stuckSeconds = Math.max(0, ctx.observedUntil - ackedBy.time);
  }
  if (result.unforwarded > 0) {
    result.firstUnforwarded = {
      seq: wSent,
      segment: segmentHolding(u, senderIsClientU, uBase, wSent),
      ackedBy: ackOf(u, senderIsClientU, uBase, wSent),
    };
  }
  return result;
}

/** What went wrong on the back leg, if anything: data never acknowledged, a reset, a failed connect. */
/**
 * Whether a back-leg RST is a failure the client should hear about: data left unacknowledged on the
 * back leg, or a request pending on the front leg (client payload after the proxy's last payload).
 * A proxy resetting the back leg after the client closed is passing the client's close on.
 */
function resetMatters(front: Leg, reset: PacketRef, resetByProxy: boolean, backUnacked: boolean): boolean {
  const log = front.conv.packets;
  let lastClient = -Infinity;
  let lastProxy = -Infinity;
  let clientClosed = Infinity;
  for (let i = 0; i < log.length; i++) {
    const t = log.time[i] - front.shift;
    if (log.fromClient(i) && (hasFlag(log, i, FIN) || hasFlag(log, i, RST)) && t < clientClosed) clientClosed = t;
    if (t > reset.time || log.len[i] === 0) continue;
    if (log.fromClient(i)) lastClient = t;
    else lastProxy = t;
  }
  if (resetByProxy && clientClosed <= reset.time) return false;
  return backUnacked || lastClient > lastProxy;
}

function backFailure(back: Leg, front: Leg, ctx: ProxyContext): BackFailure | null {
  const log = back.conv.packets;
  const base = streamBase(back.conv, true);
  let reset: PacketRef | null = null;
  let resetByProxy = false;
  for (let i = 0; i < log.length; i++) {
    if (hasFlag(log, i, RST)) {
      reset = shifted(packetRef(back.pair, back.name, i), back.shift);
      resetByProxy = log.fromClient(i);
      break;
    }
  }
  // The proxy's first payload byte the backend never acknowledged, and retransmissions after it.
  let since: PacketRef | null = null;
  let sinceTime = Infinity;
  let retransmissions = 0;
  if (base !== null) {
    const acked = ackEnd(log, true, base);
    for (let i = 0; i < log.length; i++) {
      if (!log.fromClient(i) || log.len[i] === 0) continue;
      const s = relOf(log.seq[i], base);
      if (s + log.len[i] <= acked) continue;
      if (since === null) {
        since = shifted(packetRef(back.pair, back.name, i), back.shift);
        sinceTime = log.time[i];
      } else if ((log.notes[i] & RETRANSMISSION) !== 0 && log.time[i] >= sinceTime) retransmissions++;
    }
  }
  let synAcked = false;
  let firstSyn: PacketRef | null = null;
  for (let i = 0; i < log.length; i++) {
    if (!hasFlag(log, i, SYN)) continue;
    if (log.fromClient(i)) firstSyn ??= shifted(packetRef(back.pair, back.name, i), back.shift);
    else synAcked = true;
  }
  if (firstSyn !== null && !synAcked) return { kind: 'connect-failed', since: firstSyn, retransmissions: 0, reset };
  // Data the backend stopped acknowledging (retransmitted in vain) is a failure whatever came after.
  if (since !== null && retransmissions > 0 && (ctx.observedUntil - since.time >= 1 || reset !== null)) {
    return { kind: 'unacknowledged', since, retransmissions, reset };
  }
  if (reset === null || !resetMatters(front, reset, resetByProxy, since !== null)) return null;
  if (since !== null) return { kind: 'unacknowledged', since, retransmissions, reset };
  return { kind: resetByProxy ? 'reset-by-proxy' : 'reset-by-backend', since: reset, retransmissions: 0, reset };
}

/** What the proxy told the client after `since` (A's clock). */
function frontOutcome(front: Leg, since: number, ctx: ProxyContext): FrontOutcome {
  const log = front.conv.packets;
  let clientClose: PacketRef | null = null;
  for (let i = 0; i < log.length; i++) {
    const t = log.time[i] - front.shift;
    if (t < since) continue;
    if (log.fromClient(i)) {
      if (clientClose === null && (hasFlag(log, i, FIN) || hasFlag(log, i, RST))) clientClose = shifted(packetRef(front.pair, front.name, i), front.shift);
      continue;
    }
    const kind = hasFlag(log, i, RST) ? 'reset' : log.len[i] > 0 ? 'answered' : hasFlag(log, i, FIN) ? 'fin' : null;
    if (kind === null) continue;
    const proxyPacket = shifted(packetRef(front.pair, front.name, i), front.shift);
    return { kind, proxyPacket, clientClose, silentSeconds: proxyPacket.time - since };
  }
  return { kind: clientClose !== null ? 'client-closed' : 'open', proxyPacket: null, clientClose, silentSeconds: Math.max(0, ctx.observedUntil - since) };
}

function requestLatencies(front: Leg, back: Leg, c2s: Map<number, number>, s2c: Map<number, number>, ctx: ProxyContext): { list: RequestLatency[]; count: number; proxy: number[] } {
  const log = front.conv.packets;
  const backLog = back.conv.packets;
  const list: RequestLatency[] = [];
  const proxy: number[] = [];
  let count = 0;
  let lastRequest = -1;
  for (let i = 0; i < log.length; i++) {
    if (log.len[i] === 0 || (log.notes[i] & RETRANSMISSION) !== 0) continue;
    if (log.fromClient(i)) {
      lastRequest = i;
      continue;
    }
    if (lastRequest < 0) continue;
    const req = lastRequest;
    lastRequest = -1;
    count++;
    const frontSeconds = log.time[i] - log.time[req];
    const backReq = c2s.get(req);
    const backResp = s2c.get(i);
    let backSeconds: number | null = null;
    if (backReq !== undefined && backResp !== undefined && backLog.time[backResp] >= backLog.time[backReq]) {
      backSeconds = backLog.time[backResp] - backLog.time[backReq];
    }
    const proxySeconds = backSeconds === null ? null : frontSeconds - backSeconds;
    if (proxySeconds !== null) proxy.push(proxySeconds);
    if (list.length < ctx.maxRequests) {
      list.push({
        request: shifted(packetRef(front.pair, front.name, req), front.shift),
        response: shifted(packetRef(front.pair, front.name, i), front.shift),
        frontSeconds,
        backSeconds,
        proxySeconds,
      });
    }
  }
  return { list, count, proxy };
}

export function analyseProxy(pair: Pair, matching: PayloadMatching, ctx: ProxyContext): ProxyReport {
  // Which capture holds the front leg: the one where client-to-server payload shows up first.
  const c2sDelta = matching.c2s.length > 0 ? median(matching.c2s.map((m) => m.delta)) - ctx.offset : null;
  const s2cDelta = matching.s2c.length > 0 ? median(matching.s2c.map((m) => m.delta)) - ctx.offset : null;
  let front: CaptureName;
  let frontBy: ProxyReport['frontBy'] = 'payload timing';
  if (c2sDelta !== null && c2sDelta !== 0) front = c2sDelta > 0 ? 'A' : 'B';
  else if (s2cDelta !== null && s2cDelta !== 0) front = s2cDelta < 0 ? 'A' : 'B';
  else {
    front = pair.b.summary.start - ctx.offset >= pair.a.summary.start ? 'A' : 'B';
    frontBy = 'start time';
  }
  const legA: Leg = { conv: pair.a, name: 'A', pair, shift: 0 };
  const legB: Leg = { conv: pair.b, name: 'B', pair, shift: ctx.offset };
  const frontLeg = front === 'A' ? legA : legB;
  const backLeg = front === 'A' ? legB : legA;
  // Segment matches as front index -> back index, per direction.
  const toFront = (m: { i: number; j: number }) => (front === 'A' ? { f: m.i, b: m.j } : { f: m.j, b: m.i });
  const c2sMatches = matching.c2s.map(toFront);
  const s2cMatches = matching.s2c.map(toFront);
  const sign = front === 'A' ? 1 : -1;
  const forwardDelay = {
    c2s: c2sDelta === null ? null : sign * c2sDelta,
    s2c: s2cDelta === null ? null : -sign * s2cDelta,
  };
  const streams = {
    c2s: transfer('c2s', 'front', frontLeg, backLeg, c2sMatches.map((m) => ({ u: m.f, w: m.b })), ctx),
    s2c: transfer('s2c', 'back', backLeg, frontLeg, s2cMatches.map((m) => ({ u: m.b, w: m.f })), ctx),
  };
  const requests = requestLatencies(
    frontLeg,
    backLeg,
    new Map(c2sMatches.map((m) => [m.f, m.b])),
    new Map(s2cMatches.map((m) => [m.f, m.b])),
    ctx,
  );
  const failure = backFailure(backLeg, frontLeg, ctx);
  return {
    pair,
    front,
    frontBy,
    forwardDelay,
    streams,
    requests: requests.list,
    requestCount: requests.count,
    proxySeconds: requests.proxy.length > 0 ? { median: median(requests.proxy), max: Math.max(...requests.proxy) } : null,
    backFailure: failure,
    frontOutcome: failure === null ? null : frontOutcome(frontLeg, failure.since.time, ctx),
  };
}
