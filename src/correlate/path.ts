import { tcpdumpFlags } from '../flow/flags.js';
import { median } from '../detect/util.js';
import type { PacketLog } from './fingerprint.js';
import { keyExtra, PacketIndex } from './packet-index.js';
import type { Pair } from './pairing.js';

/**
 * Pairing 1 in detail: the same connection seen at two points. Every packet of one capture is looked
 * up in the other by (direction, seq, ack, length, flags); among equal candidates (duplicate ACKs,
 * retransmissions) the one with the same IPv4 ID is taken when the path preserves IDs, else the next
 * in order. What is left over on either side is then explained: lost between the points, missed by
 * a capture, outside the other capture's time span, or sent by something between the points.
 */

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

export type Dir = 'c2s' | 's2c';
export type CaptureName = 'A' | 'B';

export interface PathMatch {
  pair: Pair;
  /** For each packet of pair.a, the index of the same packet in pair.b (or -1); and the reverse. */
  twinOfA: Int32Array;
  twinOfB: Int32Array;
  /** tB - tA of matched packets (raw clocks), per direction of A's conversation. */
  deltas: { c2s: number[]; s2c: number[] };
}

/** Direction of packet i of the pair's B conversation, in A's orientation: true for client to server. */
function bFromClient(pair: Pair, i: number): boolean {
  return pair.b.packets.fromClient(i) !== pair.flipped;
}

export function matchPathPackets(pair: Pair): PathMatch {
  const p = pair.a.packets;
  const q = pair.b.packets;
  // B's packets by key; equal keys (duplicate ACKs, retransmissions) come back in B's order.
  const index = new PacketIndex(q.length);
  for (let j = 0; j < q.length; j++) index.add(q.seq[j], keyExtra(q.len[j], q.flags[j], bFromClient(pair, j) ? 1 : 0), 0, j);
  // Candidates for packet i of A: B's packets with the same key, in B's order.
  const candidates = (i: number): readonly number[] => {
    const n = index.find(p.seq[i], keyExtra(p.len[i], p.flags[i], p.fromClient(i) ? 1 : 0));
    const items = index.foundItems;
    let k = 0;
    for (let m = 0; m < n; m++) if (q.len[items[m]] === p.len[i]) items[k++] = items[m];
    items.length = k;
    return items;
  };
  const twinOfA = new Int32Array(p.length).fill(-1);
  const twinOfB = new Int32Array(q.length).fill(-1);
  const deltas = { c2s: [] as number[], s2c: [] as number[] };
  const fits = (i: number, j: number) => twinOfB[j] < 0 && ((p.flags[i] & ACK) === 0 || q.ack[j] === p.ack[i]);
  const link = (i: number, j: number) => {
    twinOfA[i] = j;
    twinOfB[j] = i;
  };
  // Pass 1: the same IPv4 ID too (a path that preserves IDs tells retransmissions apart exactly).
  for (let i = 0; i < p.length; i++) {
    if (p.ipId[i] <= 0) continue;
    const list = candidates(i);
    for (const j of list) {
      if (q.ipId[j] === p.ipId[i] && fits(i, j)) {
        link(i, j);
        break;
      }
    }
  }
  // Pass 2: the rest, each with the candidate nearest to the typical time difference of pass 1
  // (in order when there is none): an original and its retransmission are seconds apart.
  const typical = { c2s: [] as number[], s2c: [] as number[] };
  for (let i = 0; i < p.length; i++) if (twinOfA[i] >= 0) typical[p.fromClient(i) ? 'c2s' : 's2c'].push(q.time[twinOfA[i]] - p.time[i]);
  const expected = { c2s: typical.c2s.length > 0 ? median(typical.c2s) : NaN, s2c: typical.s2c.length > 0 ? median(typical.s2c) : NaN };
  for (let i = 0; i < p.length; i++) {
    if (twinOfA[i] >= 0) continue;
    const list = candidates(i);
    const want = expected[p.fromClient(i) ? 'c2s' : 's2c'];
    let chosen = -1;
    let best = Infinity;
    let scanned = 0;
    for (const j of list) {
      if (!fits(i, j)) continue;
      if (Number.isNaN(want)) {
        chosen = j;
        break;
      }
      const error = Math.abs(q.time[j] - p.time[i] - want);
      if (error < best) {
        best = error;
        chosen = j;
      }
      if (++scanned >= 32) break;
    }
    if (chosen >= 0) link(i, chosen);
  }
  for (let i = 0; i < p.length; i++) {
    const j = twinOfA[i];
    if (j >= 0) (p.fromClient(i) ? deltas.c2s : deltas.s2c).push(q.time[j] - p.time[i]);
  }
  return { pair, twinOfA, twinOfB, deltas };
}

/** One packet as the correlation report shows it (sequence numbers relative to the sender's ISN). */
export interface PacketRef {
  capture: CaptureName;
  frame: number;
  time: number;
  direction: Dir;
  flags: string;
  seq: number;
  ack: number | null;
  len: number;
  ttl: number;
  ipId: number | null;
}

export type UnmatchedKind =
  /** Left the upstream point, never reached the downstream one. */
  | 'lost'
  /** The downstream receiver acknowledged it (or the sender carried on from it): a capture missed it. */
  | 'not-captured'
  /** The other capture was not running (or not recording) when it would have been seen there. */
  | 'outside'
  /** Seen downstream only: sent by something between the points (or missed upstream). */
  | 'appeared'
  /** Which point is upstream is unknown. */
  | 'unplaced';

export interface UnmatchedPacket extends PacketRef {
  kind: UnmatchedKind;
  /** For lost payload: a later copy of the same bytes reached the downstream point. */
  recovered?: boolean;
}

export interface InjectedRst {
  rst: PacketRef;
  /** Who the RST claims to come from, as seen where it arrived. */
  claimedSender: 'client' | 'server';
  /** TTL / IP IDs of the claimed sender's real packets at the same capture point (matched at both). */
  senderTtl: number | null;
  senderIpIds: number[];
  /** The claimed sender's TTL at its own (upstream) point: hops between the points = this - senderTtl. */
  senderTtlUpstream: number | null;
  /** Routers between the two capture points on the RST's path. */
  hopsBetweenPoints: number | null;
  /**
   * Routers that forwarded the RST after it was made, assuming the forger's initial TTL is the next
   * of 32/64/128/255 at or above the RST's TTL; the forger is router (this + 1) counted from the
   * capture point where the RST arrived.
   */
  forgerHopsFromArrival: number | null;
  /** The upstream capture was running and shows no such RST. */
  absentUpstream: boolean;
  ttlDiffers: boolean;
  /** The claimed sender's next packet at its own capture point after the RST, if it carried on. */
  senderCarriedOn: PacketRef | null;
  /** A packet towards the claimed sender lost between the points just before this RST. */
  precededByLoss: PacketRef | null;
  /** The RST's sequence number is the receiver's next expected byte (the last ACK it sent). */
  seqInWindow: boolean;
}

export interface InFlightChanges {
  /** Routers between the points per direction (TTL decrement of matched packets). */
  hops: { c2s: number | null; s2c: number | null };
  ipIdPreserved: boolean | null;
  nat: { client: { upstream: string; downstream: string } | null; server: { upstream: string; downstream: string } | null };
  /** SYN options that differ between the points: upstream value, downstream value. */
  options: { side: 'client' | 'server'; option: 'mss' | 'windowScale' | 'sackPermitted' | 'timestamps'; upstream: number | boolean | null; downstream: number | boolean | null }[];
  /** Matched packets whose TCP timestamps option was removed on the way. */
  timestampsStripped: { c2s: number; s2c: number };
  /** Matched packets whose advertised window differs (first example kept). */
  windowChanged: { c2s: number; s2c: number; example: { upstream: PacketRef; downstreamWindow: number; upstreamWindow: number } | null };
  /** Matched packets whose flags (ECN bits, PSH, URG) differ. */
  flagsChanged: number;
}

export interface PathReport {
  pair: Pair;
  /** The capture nearer the client; null when neither TTL nor timing tells. */
  clientSide: CaptureName | null;
  how: 'ttl' | 'timing' | null;
  packets: { A: number; B: number };
  matched: { c2s: number; s2c: number };
  unmatched: UnmatchedPacket[];
  counts: Record<UnmatchedKind, number>;
  lostBytes: number;
  injected: InjectedRst[];
  changes: InFlightChanges;
  /** Every packet both captures could have seen was seen by both. */
  complete: boolean;
  /** Median one-way delay between the points for this pair (seconds), when the clientSide is known. */
  oneWayDelay: number | null;
}

export interface PathContext {
  /** B's clock minus A's. */
  offset: number;
  /** Time spans of the captures, each on its own clock. */
  spanA: [number, number];
  spanB: [number, number];
  /** Margin at the span edges within which a missing packet is not counted (seconds). */
  edge: number;
  /** A lost packet this long (seconds) before an injected RST towards its sender is reported with it. */
  dropBeforeRstWindow: number;
}

/**
 * One direction of one capture's conversation, for questions about sequence space: is [start, end)
 * inside some segment, does a segment start at x, did the receiver acknowledge up to x. Sequence
 * numbers are taken relative to the first one seen, so the arithmetic does not wrap.
 */
class DirIndex {
  private readonly base: number;
  private readonly starts: number[] = [];
  private readonly maxEnd: number[] = [];
  private readonly startSet = new Set<number>();
  /** Highest acknowledgement this direction's sender sent (relative to the peer's stream base), or -1. */
  private highestAck = -Infinity;
  private ackBase = 0;
  private hasAck = false;

  constructor(log: PacketLog, selects: (k: number) => boolean) {
    const segments: [number, number][] = [];
    let base = -1;
    for (let k = 0; k < log.length; k++) {
      if (!selects(k)) continue;
      if (base < 0) base = log.seq[k];
      if ((log.flags[k] & ACK) !== 0 && (log.flags[k] & RST) === 0) {
        if (!this.hasAck) {
          this.hasAck = true;
          this.ackBase = (log.ack[k] - 0x40000000) >>> 0;
        }
        const a = (log.ack[k] - this.ackBase) >>> 0;
        if (a > this.highestAck) this.highestAck = a;
      }
      if ((log.flags[k] & RST) !== 0) continue;
      const s = (log.seq[k] - base) >>> 0;
      const e = s + ((seqEnd(log, k) - log.seq[k]) >>> 0);
      this.startSet.add(log.seq[k]);
      if (e > s) segments.push([s, e]);
    }
    this.base = base < 0 ? 0 : base;
    segments.sort((x, y) => x[0] - y[0]);
    let max = -Infinity;
    for (const [s, e] of segments) {
      if (e > max) max = e;
      this.starts.push(s);
      this.maxEnd.push(max);
    }
  }

  /** Some segment of this direction contains all of [start, end). */
  covers(start: number, end: number): boolean {
    const s = (start - this.base) >>> 0;
    const e = s + ((end - start) >>> 0);
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= s) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && this.maxEnd[found] >= e;
  }

  startsAt(seq: number): boolean {
    return this.startSet.has(seq);
  }

  /** The peer direction's sender acknowledged this direction's bytes up to `end`. */
  ackedBy(peer: DirIndex, end: number): boolean {
    if (!peer.hasAck) return false;
    const e = (end - peer.ackBase) >>> 0;
    return peer.highestAck >= e;
  }
}

function rel(value: number, isn: number | null): number {
  return isn === null ? value : (value - isn) >>> 0;
}

export function packetRef(pair: Pair, capture: CaptureName, i: number): PacketRef {
  const conv = capture === 'A' ? pair.a : pair.b;
  const log = conv.packets;
  const fromClientA = capture === 'A' ? log.fromClient(i) : bFromClient(pair, i);
  const own = log.fromClient(i);
  const senderIsn = own ? conv.isn.client : conv.isn.server;
  const peerIsn = own ? conv.isn.server : conv.isn.client;
  const hasAck = (log.flags[i] & ACK) !== 0;
  return {
    capture,
    frame: log.frame[i],
    time: log.time[i],
    direction: fromClientA ? 'c2s' : 's2c',
    flags: tcpdumpFlags(log.flags[i]),
    seq: rel(log.seq[i], senderIsn),
    ack: hasAck ? rel(log.ack[i], peerIsn) : null,
    len: log.len[i],
    ttl: log.ttl[i],
    ipId: log.ipId[i] >= 0 ? log.ipId[i] : null,
  };
}

function initialTtl(ttl: number): number {
  for (const initial of [32, 64, 128, 255]) if (ttl <= initial) return initial;
  return 255;
}

function hostPortOf(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Sequence space of packet i (payload, plus SYN and FIN): [seq, end). */
function seqEnd(log: PacketLog, i: number): number {
  return (log.seq[i] + log.len[i] + ((log.flags[i] & (SYN | FIN)) !== 0 ? 1 : 0)) >>> 0;
}

export function analysePath(match: PathMatch, ctx: PathContext): PathReport {
  const { pair, twinOfA, twinOfB } = match;
  const p = pair.a.packets;
  const q = pair.b.packets;
  const dirOf = (c: CaptureName, i: number): Dir =>
    (c === 'A' ? p.fromClient(i) : bFromClient(pair, i)) ? 'c2s' : 's2c';

  // TTL differences of matched packets (RSTs excluded: stacks send them with other TTLs).
  const ttlDiff: Record<Dir, number[]> = { c2s: [], s2c: [] };
  let idSame = 0;
  let idComparable = 0;
  for (let i = 0; i < p.length; i++) {
    const j = twinOfA[i];
    if (j < 0 || (p.flags[i] & RST) !== 0) continue;
    ttlDiff[dirOf('A', i)].push(p.ttl[i] - q.ttl[j]);
    if (p.ipId[i] > 0 || q.ipId[j] > 0) {
      idComparable++;
      if (p.ipId[i] === q.ipId[j]) idSame++;
    }
  }
  const medTtl = { c2s: ttlDiff.c2s.length > 0 ? median(ttlDiff.c2s) : 0, s2c: ttlDiff.s2c.length > 0 ? median(ttlDiff.s2c) : 0 };
  let clientSide: CaptureName | null = null;
  let how: 'ttl' | 'timing' | null = null;
  const ttlVote = Math.sign(medTtl.c2s) - Math.sign(medTtl.s2c);
  if (ttlVote !== 0) {
    clientSide = ttlVote > 0 ? 'A' : 'B';
    how = 'ttl';
  } else {
    const c = match.deltas.c2s.length > 0 ? Math.sign(median(match.deltas.c2s) - ctx.offset) : 0;
    const s = match.deltas.s2c.length > 0 ? Math.sign(median(match.deltas.s2c) - ctx.offset) : 0;
    const vote = c - s;
    if (vote !== 0) {
      clientSide = vote > 0 ? 'A' : 'B';
      how = 'timing';
    }
  }
  const upstreamOf = (dir: Dir): CaptureName | null => {
    if (clientSide === null) return null;
    return dir === 'c2s' ? clientSide : clientSide === 'A' ? 'B' : 'A';
  };
  let oneWayDelay: number | null = null;
  if (clientSide !== null) {
    const sign = clientSide === 'A' ? 1 : -1;
    const owd = [...match.deltas.c2s.map((d) => sign * (d - ctx.offset)), ...match.deltas.s2c.map((d) => -sign * (d - ctx.offset))];
    if (owd.length > 0) oneWayDelay = median(owd);
  }

  // The other capture's span and recording limit, on this capture's clock.
  const covered = (c: CaptureName, time: number): boolean => {
    const own = c === 'A' ? pair.a : pair.b;
    const other = c === 'A' ? pair.b : pair.a;
    if (time > own.recordedUntil) return false;
    const shift = c === 'A' ? -ctx.offset : ctx.offset;
    const span = c === 'A' ? ctx.spanB : ctx.spanA;
    const from = span[0] + shift;
    const to = Math.min(span[1], other.recordedUntil) + shift;
    return time - ctx.edge >= from && time + ctx.edge <= to;
  };

  const unmatched: UnmatchedPacket[] = [];
  const counts: Record<UnmatchedKind, number> = { lost: 0, 'not-captured': 0, outside: 0, appeared: 0, unplaced: 0 };
  let lostBytes = 0;
  const indexes = new Map<string, DirIndex>();
  const indexOf = (c: CaptureName, dir: Dir): DirIndex => {
    const key = c + dir;
    let index = indexes.get(key);
    if (index === undefined) {
      index = new DirIndex(c === 'A' ? p : q, (k) => (c === 'A' ? p.fromClient(k) : bFromClient(pair, k)) === (dir === 'c2s'));
      indexes.set(key, index);
    }
    return index;
  };
  const sides: [CaptureName, PacketLog, Int32Array][] = [['A', p, twinOfA], ['B', q, twinOfB]];
  for (const [c, log, twins] of sides) {
    const otherName: CaptureName = c === 'A' ? 'B' : 'A';
    for (let i = 0; i < log.length; i++) {
      if (twins[i] >= 0) continue;
      const dir = dirOf(c, i);
      const r: UnmatchedPacket = { ...packetRef(pair, c, i), kind: 'unplaced' };
      const upstream = upstreamOf(dir);
      const start = log.seq[i];
      const end = seqEnd(log, i);
      if (!covered(c, log.time[i])) r.kind = 'outside';
      else if (upstream === null) r.kind = 'unplaced';
      else if (upstream === c) {
        // Sent past this point; the other (downstream) point never saw it. If the receiver
        // acknowledged these bytes there while no copy of them passed, the capture missed them.
        if (end !== start) {
          const index = indexOf(otherName, dir);
          const copy = index.covers(start, end);
          if (!copy && index.ackedBy(indexOf(otherName, dir === 'c2s' ? 's2c' : 'c2s'), end)) r.kind = 'not-captured';
          else {
            r.kind = 'lost';
            r.recovered = copy;
          }
        } else r.kind = 'lost';
        if (r.kind === 'lost') lostBytes += log.len[i];
      } else {
        // Seen downstream only. If the sender carried on from exactly this packet upstream, the
        // upstream capture missed it; otherwise something between the points sent it.
        const continued = end !== start && (log.flags[i] & RST) === 0 && indexOf(otherName, dir).startsAt(end);
        r.kind = continued ? 'not-captured' : 'appeared';
      }
      counts[r.kind]++;
      unmatched.push(r);
    }
  }
  unmatched.sort((x, y) => x.time - y.time || x.frame - y.frame);

  const injected = findInjectedRsts(match, ctx, unmatched, upstreamOf, medTtl);
  const changes = inFlightChanges(match, upstreamOf, medTtl, idComparable > 0 ? idSame / idComparable > 0.9 : null);
  const complete = counts.lost === 0 && counts.appeared === 0 && counts.unplaced === 0 && counts['not-captured'] === 0;
  return {
    pair,
    clientSide,
    how,
    packets: { A: p.length, B: q.length },
    matched: { c2s: match.deltas.c2s.length, s2c: match.deltas.s2c.length },
    unmatched,
    counts,
    lostBytes,
    injected,
    changes,
    complete,
    oneWayDelay,
  };
}

function findInjectedRsts(
  match: PathMatch,
  ctx: PathContext,
  unmatched: UnmatchedPacket[],
  upstreamOf: (dir: Dir) => CaptureName | null,
  medTtl: { c2s: number; s2c: number },
): InjectedRst[] {
  const { pair } = match;
  const out: InjectedRst[] = [];
  for (const u of unmatched) {
    if (u.kind !== 'appeared' || !u.flags.includes('R')) continue;
    const here = u.capture === 'A' ? pair.a : pair.b;
    const log = here.packets;
    const twins = u.capture === 'A' ? match.twinOfA : match.twinOfB;
    const upstreamName = upstreamOf(u.direction);
    const upstreamConv = upstreamName === 'A' ? pair.a : pair.b;
    const upLog = upstreamConv.packets;
    const dirHere = (k: number) => (u.capture === 'A' ? log.fromClient(k) : bFromClient(pair, k)) ? 'c2s' : 's2c';
    const dirUp = (k: number) => (upstreamName === 'A' ? upLog.fromClient(k) : bFromClient(pair, k)) ? 'c2s' : 's2c';
    // The claimed sender's genuine packets at this point: those the upstream capture saw too.
    const ttls: number[] = [];
    const upTtls: number[] = [];
    const ids: number[] = [];
    let index = -1;
    for (let k = 0; k < log.length; k++) {
      if (log.frame[k] === u.frame && log.time[k] === u.time) index = k;
      if (twins[k] < 0 || dirHere(k) !== u.direction || (log.flags[k] & RST) !== 0) continue;
      ttls.push(log.ttl[k]);
      upTtls.push(upLog.ttl[twins[k]]);
      if (log.time[k] <= u.time && log.ipId[k] >= 0) ids.push(log.ipId[k]);
    }
    const senderTtl = ttls.length > 0 ? median(ttls) : null;
    const senderTtlUpstream = upTtls.length > 0 ? median(upTtls) : null;
    const hops = Math.abs(u.direction === 'c2s' ? medTtl.c2s : medTtl.s2c);
    const decrements = initialTtl(u.ttl) - u.ttl;
    // The upstream point's time for this RST, and what the sender did after it there.
    const shift = u.capture === 'A' ? ctx.offset : -ctx.offset;
    const upTime = u.time + shift;
    let carriedOn: PacketRef | null = null;
    for (let k = 0; k < upLog.length; k++) {
      if (dirUp(k) === u.direction && upLog.time[k] > upTime && (upLog.flags[k] & RST) === 0) {
        carriedOn = packetRef(pair, upstreamName as CaptureName, k);
        break;
      }
    }
    // The receiver's last ACK before the RST at this point: an in-window RST has exactly that seq.
    let receiverAck: number | null = null;
    if (index >= 0) {
      for (let k = index - 1; k >= 0; k--) {
        if (dirHere(k) !== u.direction && (log.flags[k] & ACK) !== 0) {
          receiverAck = log.ack[k];
          break;
        }
      }
    }
    const seqInWindow = index >= 0 && receiverAck !== null && log.seq[index] === receiverAck;
    const precededByLoss = unmatched.find((x) => x.kind === 'lost' && x.direction !== u.direction &&
      x.capture === u.capture && x.time <= u.time && u.time - x.time <= ctx.dropBeforeRstWindow) ?? null;
    out.push({
      rst: stripKind(u),
      claimedSender: u.direction === 'c2s' ? 'client' : 'server',
      senderTtl,
      senderIpIds: [...new Set(ids)].slice(-8),
      senderTtlUpstream,
      hopsBetweenPoints: ttls.length > 0 ? hops : null,
      forgerHopsFromArrival: decrements,
      absentUpstream: true,
      ttlDiffers: senderTtl !== null && senderTtl !== u.ttl,
      senderCarriedOn: carriedOn,
      precededByLoss: precededByLoss === null ? null : stripKind(precededByLoss),
      seqInWindow,
    });
  }
  return out;
}

function stripKind(u: UnmatchedPacket): PacketRef {
  const { kind: _kind, recovered: _recovered, ...rest } = u;
  return rest;
}

function inFlightChanges(
  match: PathMatch,
  upstreamOf: (dir: Dir) => CaptureName | null,
  medTtl: { c2s: number; s2c: number },
  ipIdPreserved: boolean | null,
): InFlightChanges {
  const { pair } = match;
  const p = pair.a.packets;
  const q = pair.b.packets;
  const changes: InFlightChanges = {
    hops: { c2s: match.deltas.c2s.length > 0 ? Math.abs(medTtl.c2s) : null, s2c: match.deltas.s2c.length > 0 ? Math.abs(medTtl.s2c) : null },
    ipIdPreserved,
    nat: { client: null, server: null },
    options: [],
    timestampsStripped: { c2s: 0, s2c: 0 },
    windowChanged: { c2s: 0, s2c: 0, example: null },
    flagsChanged: 0,
  };
  const up = upstreamOf('c2s');
  // Endpoints as each point saw them; "upstream" is the client side for the client, etc.
  const aSum = pair.a.summary;
  const bSum = pair.b.summary;
  const bClient = pair.flipped ? bSum.server : bSum.client;
  const bServer = pair.flipped ? bSum.client : bSum.server;
  const clientUp = up === 'B' ? bClient : aSum.client;
  const clientDown = up === 'B' ? aSum.client : bClient;
  const serverUp = up === 'B' ? aSum.server : bServer;
  const serverDown = up === 'B' ? bServer : aSum.server;
  if (clientUp.ip !== clientDown.ip || clientUp.port !== clientDown.port) {
    changes.nat.client = { upstream: hostPortOf(clientUp.ip, clientUp.port), downstream: hostPortOf(clientDown.ip, clientDown.port) };
  }
  if (serverUp.ip !== serverDown.ip || serverUp.port !== serverDown.port) {
    changes.nat.server = { upstream: hostPortOf(serverUp.ip, serverUp.port), downstream: hostPortOf(serverDown.ip, serverDown.port) };
  }
  if (up === null) return changes;
  // SYN options: a side's options as its own (upstream) point saw them versus the far point.
  const aOpts = aSum.options;
  const bOpts = pair.flipped ? { client: bSum.options.server, server: bSum.options.client } : bSum.options;
  for (const side of ['client', 'server'] as const) {
    const sideUp = side === 'client' ? up : up === 'A' ? 'B' : 'A';
    const mine = sideUp === 'A' ? aOpts[side] : bOpts[side];
    const far = sideUp === 'A' ? bOpts[side] : aOpts[side];
    const synSeenBoth = (side === 'client' ? pair.a.isn.client !== null : pair.a.isn.server !== null) &&
      (side === 'client' ? (pair.flipped ? pair.b.isn.server : pair.b.isn.client) !== null : (pair.flipped ? pair.b.isn.client : pair.b.isn.server) !== null);
    if (!synSeenBoth) continue;
    for (const option of ['mss', 'windowScale', 'sackPermitted', 'timestamps'] as const) {
      if (mine[option] !== far[option]) changes.options.push({ side, option, upstream: mine[option], downstream: far[option] });
    }
  }
  for (let i = 0; i < p.length; i++) {
    const j = match.twinOfA[i];
    if (j < 0) continue;
    const dir: Dir = p.fromClient(i) ? 'c2s' : 's2c';
    const upIsA = upstreamOf(dir) === 'A';
    const upHasTs = upIsA ? p.hasTimestamp(i) : q.hasTimestamp(j);
    const downHasTs = upIsA ? q.hasTimestamp(j) : p.hasTimestamp(i);
    if (upHasTs && !downHasTs) changes.timestampsStripped[dir]++;
    if (p.flags[i] !== q.flags[j]) changes.flagsChanged++;
    if ((p.flags[i] & (SYN | RST)) === 0 && p.window[i] !== q.window[j]) {
      changes.windowChanged[dir]++;
      if (changes.windowChanged.example === null) {
        changes.windowChanged.example = {
          upstream: packetRef(pair, upIsA ? 'A' : 'B', upIsA ? i : j),
          upstreamWindow: upIsA ? p.window[i] : q.window[j],
          downstreamWindow: upIsA ? q.window[j] : p.window[i],
        };
      }
    }
  }
  return changes;
}
