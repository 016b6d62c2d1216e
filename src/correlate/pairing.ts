import type { CaptureFingerprints, ConvPrint, PacketLog } from './fingerprint.js';
import { keyExtra, PacketIndex } from './packet-index.js';

/**
 * Which conversation of capture A is which of capture B.
 *
 * - same connection (pairing 1): the packets carry the same sequence and acknowledgement numbers at
 *   both points. NAT rewrites addresses and ports but not sequence numbers, so the ISNs and every
 *   (seq, ack, length, flags) survive; two independent connections share them by chance with
 *   probability ~2^-64 per packet. Addresses and ports are not compared at all.
 * - proxied (pairing 2): a proxy that terminates TCP opens a second connection with its own sequence
 *   numbers, but forwards the same payload bytes: segments with the same payload (hash and length),
 *   in the same direction, within the proxy's forwarding delay of each other.
 * - timing (last resort, proxied): a conversation left over in each capture, starting within
 *   `timingWindow` of each other, with no other candidate on either side.
 */

export type PairKind = 'same-connection' | 'proxied';

export interface PairEvidence {
  /** Client / server ISN at both points: equal, different, or not seen (no SYN in one capture). */
  isnClient: 'equal' | 'different' | 'unknown';
  isnServer: 'equal' | 'different' | 'unknown';
  /** Packets found at both points by (seq, ack, length, flags) while pairing. */
  sequenceMatches: number;
  /** Payload segments found at both points by payload (proxied pairs). */
  payloadMatches: number;
  payloadBytes: number;
  /** How payload segments were recognised: hash of the bytes, or only their length (no payload captured). */
  payloadBy: 'hash' | 'length' | 'hash and length' | null;
  /** Paired by start time alone. */
  timingOnly: boolean;
  /** Start of B's conversation minus start of A's, on A's clock (seconds). */
  startDelta: number;
}

export interface Pair {
  a: ConvPrint;
  b: ConvPrint;
  kind: PairKind;
  /** B's conversation has client and server the other way round (orientation guessed from ports). */
  flipped: boolean;
  evidence: PairEvidence;
}

function isnMatch(a: number | null, b: number | null): 'equal' | 'different' | 'unknown' {
  if (a === null || b === null) return 'unknown';
  return a === b ? 'equal' : 'different';
}

/** Packets of B indexed per conversation: the first ones, every 8th after them, and every SYN/FIN/RST. */
const INDEX_HEAD = 32;
const INDEX_STRIDE = 8;
/** Votes after which a conversation's lookups stop (the pairing is certain). */
const ENOUGH_VOTES = 16;

interface Candidate {
  a: number;
  b: number;
  votes: number;
  sameDir: number;
  flippedDir: number;
}

/** Pairing 1: conversations carrying the same sequence numbers. */
export function pairBySequence(A: CaptureFingerprints, B: CaptureFingerprints): Pair[] {
  const sampled = (p: PacketLog, i: number) => i < INDEX_HEAD || i % INDEX_STRIDE === 0 || (p.flags[i] & 7) !== 0;
  let entries = 0;
  for (const conv of B.conversations) for (let i = 0; i < conv.packets.length; i++) if (sampled(conv.packets, i)) entries++;
  const index = new PacketIndex(entries);
  for (const conv of B.conversations) {
    const p = conv.packets;
    for (let i = 0; i < p.length; i++) if (sampled(p, i)) index.add(p.seq[i], keyExtra(p.len[i], p.flags[i], 0), conv.index, i);
  }
  const candidates: Candidate[] = [];
  for (const conv of A.conversations) {
    const p = conv.packets;
    const votes = new Map<number, Candidate>();
    let best = 0;
    for (let i = 0; i < p.length && best < ENOUGH_VOTES; i++) {
      const n = index.find(p.seq[i], keyExtra(p.len[i], p.flags[i], 0));
      for (let m = 0; m < n; m++) {
        const other = B.conversations[index.foundOwners[m]];
        const k = index.foundItems[m];
        const q = other.packets;
        if (q.len[k] !== p.len[i] || ((p.flags[i] & 0x10) !== 0 && q.ack[k] !== p.ack[i])) continue;
        let c = votes.get(other.index);
        if (c === undefined) votes.set(other.index, (c = { a: conv.index, b: other.index, votes: 0, sameDir: 0, flippedDir: 0 }));
        c.votes++;
        if (p.fromClient(i) === q.fromClient(k)) c.sameDir++;
        else c.flippedDir++;
        if (c.votes > best) best = c.votes;
      }
    }
    for (const c of votes.values()) candidates.push(c);
  }
  candidates.sort((x, y) => y.votes - x.votes || x.a - y.a || x.b - y.b);
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const pairs: Pair[] = [];
  for (const c of candidates) {
    if (usedA.has(c.a) || usedB.has(c.b)) continue;
    usedA.add(c.a);
    usedB.add(c.b);
    const a = A.conversations[c.a];
    const b = B.conversations[c.b];
    const flipped = c.flippedDir > c.sameDir;
    pairs.push({
      a,
      b,
      kind: 'same-connection',
      flipped,
      evidence: {
        isnClient: isnMatch(a.isn.client, flipped ? b.isn.server : b.isn.client),
        isnServer: isnMatch(a.isn.server, flipped ? b.isn.client : b.isn.server),
        sequenceMatches: c.votes,
        payloadMatches: 0,
        payloadBytes: 0,
        payloadBy: null,
        timingOnly: false,
        startDelta: 0,
      },
    });
  }
  return pairs;
}

/** One payload segment found in both captures: indices into each conversation's PacketLog. */
export interface SegmentMatch {
  i: number;
  j: number;
  /** tB - tA, raw clocks. */
  delta: number;
}

export interface PayloadMatching {
  /** Same direction as the conversation's client to server, and the other way. */
  c2s: SegmentMatch[];
  s2c: SegmentMatch[];
  bytes: number;
  by: 'hash' | 'length' | 'hash and length';
  /** Matches by content (the rest by length and timing). */
  hashed: number;
}

/**
 * Payload segments of `a` found in `b` in the same direction: same payload hash and length (or the
 * length alone when `byLength`), the tB - tA difference within `window` of `expected`, each segment
 * used once, in order.
 */
export function matchPayload(a: ConvPrint, b: ConvPrint, expected: number, window: number, byLength: boolean): PayloadMatching {
  const p = a.packets;
  const q = b.packets;
  const byKey = new Map<number, number[]>();
  for (let j = 0; j < q.length; j++) {
    if (q.len[j] === 0 || (q.notes[j] & RETRANSMISSION) !== 0) continue;
    const key = payloadKey(q, j, byLength || q.hash[j] === 0);
    let list = byKey.get(key);
    if (list === undefined) byKey.set(key, (list = []));
    list.push(j);
  }
  const used = new Uint8Array(q.length);
  const result: PayloadMatching = { c2s: [], s2c: [], bytes: 0, by: 'length', hashed: 0 };
  let hashed = 0;
  // Segments whose payload was captured in full match by content; the others (snaplen) by length
  // and timing only, nearest in time first.
  for (let i = 0; i < p.length; i++) {
    if (p.len[i] === 0 || (p.notes[i] & RETRANSMISSION) !== 0) continue;
    const lengthOnly = byLength || p.hash[i] === 0;
    const list = byKey.get(payloadKey(p, i, lengthOnly));
    if (list === undefined) continue;
    let chosen = -1;
    let chosenError = Infinity;
    for (const j of list) {
      if (used[j] !== 0) continue;
      const error = Math.abs(q.time[j] - p.time[i] - expected);
      if (error <= window && error < chosenError) {
        chosen = j;
        chosenError = error;
      }
    }
    if (chosen < 0) continue;
    used[chosen] = 1;
    if (!lengthOnly) hashed++;
    const match = { i, j: chosen, delta: q.time[chosen] - p.time[i] };
    (p.fromClient(i) ? result.c2s : result.s2c).push(match);
    result.bytes += p.len[i];
  }
  const total = result.c2s.length + result.s2c.length;
  result.by = hashed === 0 ? 'length' : hashed === total ? 'hash' : 'hash and length';
  result.hashed = hashed;
  return result;
}

const RETRANSMISSION = 1 << 1;

function payloadKey(log: PacketLog, i: number, byLength: boolean): number {
  return (byLength ? 0 : log.hash[i]) * 131072 + (log.len[i] & 0xffff) * 2 + (log.fromClient(i) ? 1 : 0);
}

export interface ProxyPairingOptions {
  /** Clock offset (B ahead of A), when known; null to estimate it from the payload itself. */
  offset: number | null;
  /** Longest forwarding delay through the proxy, seconds. */
  maxForwardDelay: number;
  /** Start times within this many seconds pair by timing alone (unique candidates only). */
  timingWindow: number;
}

/** Candidate lists longer than this say nothing (a common segment length, a repeated message). */
const MAX_BUCKET = 64;

/**
 * Pairing 2: among conversations not paired yet, those carrying the same payload. A first pass
 * with any timing finds candidates and, unless given, the clock offset (the median difference of
 * the best candidates); the second pass keeps matches within maxForwardDelay of that offset.
 */
export function pairByPayload(
  A: CaptureFingerprints,
  B: CaptureFingerprints,
  pairedA: ReadonlySet<number>,
  pairedB: ReadonlySet<number>,
  options: ProxyPairingOptions,
): { pairs: Pair[]; matchings: Map<Pair, PayloadMatching>; offset: number; offsetEstimated: boolean } {
  const freeA = A.conversations.filter((c) => !pairedA.has(c.index));
  const freeB = B.conversations.filter((c) => !pairedB.has(c.index));
  // Candidate pairs: conversations sharing at least one payload key.
  const byKey = new Map<number, Set<number>>();
  const hashed = new Set<number>();
  for (const conv of freeB) {
    const q = conv.packets;
    for (let j = 0; j < q.length; j++) {
      if (q.len[j] === 0) continue;
      if (q.hash[j] !== 0) hashed.add(conv.index);
      const key = payloadKey(q, j, q.hash[j] === 0);
      let set = byKey.get(key);
      if (set === undefined) byKey.set(key, (set = new Set()));
      if (set.size <= MAX_BUCKET) set.add(conv.index);
    }
  }
  const candidates: { a: ConvPrint; b: ConvPrint; byLength: boolean }[] = [];
  for (const conv of freeA) {
    const p = conv.packets;
    const seen = new Set<number>();
    for (let i = 0; i < p.length; i++) {
      if (p.len[i] === 0) continue;
      const set = byKey.get(payloadKey(p, i, p.hash[i] === 0));
      if (set === undefined || set.size > MAX_BUCKET) continue;
      for (const b of set) seen.add(b);
    }
    for (const b of seen) {
      const other = B.conversations[b];
      const byLength = !(hashed.has(b) && conv.packets.hash.some((h, i) => i < conv.packets.length && h !== 0));
      candidates.push({ a: conv, b: other, byLength });
    }
  }
  let offset = options.offset;
  let offsetEstimated = false;
  if (offset === null) {
    // First pass: any timing. The best candidate of each A conversation votes for an offset.
    const votes: number[] = [];
    const bestOf = new Map<number, { score: number; delta: number }>();
    for (const c of candidates) {
      const m = matchPayload(c.a, c.b, 0, Infinity, c.byLength);
      const deltas = [...m.c2s, ...m.s2c].map((x) => x.delta);
      if (deltas.length === 0) continue;
      const score = m.c2s.length + m.s2c.length;
      const prior = bestOf.get(c.a.index);
      const delta = midDelta(m);
      // Equal evidence: the nearer in time (clocks are more often close than far apart).
      if (prior === undefined || score > prior.score || (score === prior.score && Math.abs(delta) < Math.abs(prior.delta))) {
        bestOf.set(c.a.index, { score, delta });
      }
    }
    for (const best of bestOf.values()) votes.push(best.delta);
    votes.sort((x, y) => x - y);
    offset = votes.length > 0 ? votes[votes.length >> 1] : 0;
    offsetEstimated = votes.length > 0;
  }
  const scored: { pair: Pair; matching: PayloadMatching; score: number }[] = [];
  for (const c of candidates) {
    const m = matchPayload(c.a, c.b, offset, options.maxForwardDelay, c.byLength);
    const segments = m.c2s.length + m.s2c.length;
    // One segment of a distinctive payload is enough; lengths alone need more, and agreement.
    const enough = m.hashed >= 2 || (m.hashed === 1 && m.bytes >= 16) || segments >= 3;
    if (!enough) continue;
    const pair: Pair = {
      a: c.a,
      b: c.b,
      kind: 'proxied',
      flipped: false,
      evidence: {
        isnClient: isnMatch(c.a.isn.client, c.b.isn.client),
        isnServer: isnMatch(c.a.isn.server, c.b.isn.server),
        sequenceMatches: 0,
        payloadMatches: segments,
        payloadBytes: m.bytes,
        payloadBy: m.by,
        timingOnly: false,
        startDelta: c.b.summary.start - offset - c.a.summary.start,
      },
    };
    scored.push({ pair, matching: m, score: segments * 1e6 + m.bytes });
  }
  scored.sort((x, y) => y.score - x.score || x.pair.a.index - y.pair.a.index || x.pair.b.index - y.pair.b.index);
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  const pairs: Pair[] = [];
  const matchings = new Map<Pair, PayloadMatching>();
  for (const s of scored) {
    if (usedA.has(s.pair.a.index) || usedB.has(s.pair.b.index)) continue;
    usedA.add(s.pair.a.index);
    usedB.add(s.pair.b.index);
    pairs.push(s.pair);
    matchings.set(s.pair, s.matching);
  }
  return { pairs, matchings, offset, offsetEstimated };
}

/** The offset a payload matching suggests: the middle of its two directions when it has both. */
function midDelta(m: PayloadMatching): number {
  const med = (list: SegmentMatch[]) => {
    const d = list.map((x) => x.delta).sort((x, y) => x - y);
    return d[d.length >> 1];
  };
  if (m.c2s.length > 0 && m.s2c.length > 0) return (med(m.c2s) + med(m.s2c)) / 2;
  return med(m.c2s.length > 0 ? m.c2s : m.s2c);
}

/**
 * Last resort for conversations without shared payload (a back leg that never got to carry data):
 * a leftover conversation of A and one of B that start within the window of each other (on A's
 * clock), each the other's only candidate.
 */
export function pairByTiming(
  A: CaptureFingerprints,
  B: CaptureFingerprints,
  pairedA: ReadonlySet<number>,
  pairedB: ReadonlySet<number>,
  offset: number,
  window: number,
): Pair[] {
  const freeA = A.conversations.filter((c) => !pairedA.has(c.index));
  const freeB = B.conversations.filter((c) => !pairedB.has(c.index));
  const near = (a: ConvPrint, b: ConvPrint) => Math.abs(b.summary.start - offset - a.summary.start) <= window;
  const pairs: Pair[] = [];
  for (const a of freeA) {
    const forA = freeB.filter((b) => near(a, b));
    if (forA.length !== 1) continue;
    const b = forA[0];
    if (freeA.filter((x) => near(x, b)).length !== 1) continue;
    pairs.push({
      a,
      b,
      kind: 'proxied',
      flipped: false,
      evidence: {
        isnClient: isnMatch(a.isn.client, b.isn.client),
        isnServer: isnMatch(a.isn.server, b.isn.server),
        sequenceMatches: 0,
        payloadMatches: 0,
        payloadBytes: 0,
        payloadBy: null,
        timingOnly: true,
        startDelta: b.summary.start - offset - a.summary.start,
      },
    });
  }
  return pairs;
}
