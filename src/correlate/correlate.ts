import { analyzeFiles, combineResults } from '../core/analyze.js';
import type { AnalysisResult } from '../core/session.js';
import type { FilterOptions } from '../core/filter.js';
import { compareFindings, type Finding } from '../detect/finding.js';
import { emptyPolicy, type Policy } from '../detect/policy.js';
import { plural } from '../english.js';
import type { EndpointSummary } from '../flow/summary.js';
import { type ClockEstimate, combineClockEstimates, estimateClockOffset } from './clock.js';
import { type CaptureFingerprints, type CollectorLimits, type ConvPrint, FingerprintCollector } from './fingerprint.js';
import { buildFindings } from './findings.js';
import { matchPayload, type Pair, type PairEvidence, pairByPayload, pairBySequence, pairByTiming, type PayloadMatching } from './pairing.js';
import { analysePath, matchPathPackets, type PathReport } from './path.js';
import { analyseProxy, type ProxyReport } from './proxy.js';

export interface CorrelateOptions {
  policy?: Policy;
  filter?: FilterOptions;
  /** Seconds capture B's clock is ahead of A's; overrides the estimate. */
  clockOffset?: number | null;
  limits?: Partial<CollectorLimits>;
  /** Longest forwarding delay through a proxy when pairing by payload (seconds). */
  maxForwardDelay?: number;
  /** Start-time window for pairing leftover conversations by timing alone (seconds). */
  timingWindow?: number;
  /** Packets listed per pair in the report (the counts are always complete). */
  maxListed?: number;
}

export const DEFAULT_MAX_FORWARD_DELAY = 2;
export const DEFAULT_TIMING_WINDOW = 0.5;

export interface ConversationRef {
  /** Id in the combined report (B's ids follow A's). */
  id: number;
  capture: 'A' | 'B';
  client: EndpointSummary;
  server: EndpointSummary;
  start: number;
  packets: number;
}

export interface PairSection {
  kind: Pair['kind'];
  a: ConversationRef;
  b: ConversationRef;
  /** B's conversation has client and server the other way round. */
  flipped: boolean;
  evidence: PairEvidence;
  /** The evidence in words: which facts matched. */
  matchedBy: string[];
  path?: PathSection;
  proxy?: ProxySection;
}

export type ProxySection = Omit<ProxyReport, 'pair'>;

export type PathSection = Omit<PathReport, 'pair' | 'unmatched'> & { unmatched: PathReport['unmatched']; unmatchedListed: number };

export interface UnmatchedConversation extends ConversationRef {
  reason: string;
}

export interface CorrelationReport {
  captures: { A: CaptureSide; B: CaptureSide };
  clock: {
    /** The offset used: B's clock minus A's, seconds. */
    offset: number;
    source: 'given' | 'matched packets' | 'proxied payload' | 'assumed 0';
    estimate: ClockEstimate | null;
    given: number | null;
  };
  pairs: PairSection[];
  unmatched: { A: UnmatchedConversation[]; B: UnmatchedConversation[] };
  totals: {
    pairs: number;
    sameConnection: number;
    proxied: number;
    /** Same-connection pairs where every packet both captures could see was seen by both. */
    complete: number;
    packetsMatched: number;
    lost: number;
    notCaptured: number;
    appeared: number;
    outside: number;
    injectedRsts: number;
    /** Bytes proxies ACKed and never delivered, both directions, all proxied pairs. */
    undeliveredBytes: number;
    unmatchedConversations: { A: number; B: number };
  };
}

export interface CaptureSide {
  path: string;
  conversations: number;
  packetsRecorded: number;
  conversationsNotRecorded: number;
  packetsNotRecorded: number;
  start: number | null;
  end: number | null;
}

export interface CorrelateOutcome {
  /** Both captures' analyses combined (B's conversation ids follow A's), with the correlation findings added. */
  result: AnalysisResult;
  correlation: CorrelationReport | null;
  errors: string[];
}

async function fingerprint(path: string, options: CorrelateOptions): Promise<{ result: AnalysisResult; prints: CaptureFingerprints; errors: string[] }> {
  const collector = new FingerprintCollector(options.limits);
  const { result, errors } = await analyzeFiles([path], {
    policy: options.policy,
    filter: options.filter,
    segmentObserver: collector,
    payloadHash: true,
  });
  const input = result.inputs[0];
  return { result, prints: collector.result(path, input?.start ?? null, input?.end ?? null), errors };
}

function convRef(conv: ConvPrint, capture: 'A' | 'B', idShift: number): ConversationRef {
  const s = conv.summary;
  return {
    id: s.id + idShift,
    capture,
    client: s.client,
    server: s.server,
    start: s.start,
    packets: s.packets.client + s.packets.server,
  };
}

function matchedBy(pair: Pair, path: PathReport | null): string[] {
  const e = pair.evidence;
  const out: string[] = [];
  if (pair.kind === 'same-connection') {
    if (e.isnClient === 'equal' && e.isnServer === 'equal') out.push('client and server ISNs equal');
    else if (e.isnClient === 'equal') out.push('client ISN equal');
    else if (e.isnServer === 'equal') out.push('server ISN equal');
    else out.push('no handshake in one capture: matched on mid-stream sequence numbers');
    if (path !== null) {
      out.push(`${path.matched.c2s + path.matched.s2c} packets with the same seq/ack/length/flags`);
      if (path.changes.ipIdPreserved === true) out.push('IPv4 IDs equal (preserved by the path)');
      else if (path.changes.ipIdPreserved === false) out.push('IPv4 IDs differ (rewritten by the path)');
      if (path.changes.nat.client !== null) out.push(`client address/port rewritten: ${path.changes.nat.client.upstream} -> ${path.changes.nat.client.downstream}`);
      if (path.changes.nat.server !== null) out.push(`server address/port rewritten: ${path.changes.nat.server.upstream} -> ${path.changes.nat.server.downstream}`);
      if (path.changes.nat.client === null && path.changes.nat.server === null) out.push('same addresses and ports');
    }
    if (pair.flipped) out.push('client and server guessed the other way round in one capture (no SYN)');
  } else if (e.timingOnly) {
    out.push(`timing only: the only leftover conversations starting ${Math.abs(e.startDelta * 1000).toFixed(3)} ms apart`);
  } else {
    const by = e.payloadBy === 'hash' ? 'content (payload hash) and length'
      : e.payloadBy === 'length' ? 'length (payload not captured)' : 'content, or length where the payload was not captured in full,';
    out.push(`${plural(e.payloadMatches, 'payload segment')} (${e.payloadBytes} bytes) with the same ${by} within the forwarding delay`);
    out.push('different sequence spaces: a proxy terminating TCP');
    out.push(`B's conversation starts ${Math.abs(e.startDelta * 1000).toFixed(3)} ms ${e.startDelta >= 0 ? 'after' : 'before'} A's`);
  }
  return out;
}

function unmatchedReason(conv: ConvPrint, other: CaptureFingerprints, shift: number): string {
  const start = conv.summary.start + shift;
  const end = conv.summary.end + shift;
  if (other.start === null || other.end === null) return 'the other capture has no packets';
  if (end < other.start || start > other.end) return 'outside the other capture\'s time span';
  return 'no conversation of the other capture has its sequence numbers or payload';
}

/**
 * Correlates two captures of the same traffic taken at two points: analyses each (the same
 * detectors as `analyze`), pairs their conversations, estimates the clock offset, and explains
 * every difference. See the README, "Correlating two captures".
 */
export async function correlateFiles(pathA: string, pathB: string, options: CorrelateOptions = {}): Promise<CorrelateOutcome> {
  const a = await fingerprint(pathA, options);
  const b = await fingerprint(pathB, options);
  const result = combineResults([a.result, b.result]);
  const errors = [...a.errors, ...b.errors];
  if (errors.length > 0) return { result, correlation: null, errors };
  const correlation = correlatePrints(a.prints, b.prints, a.result.summary.conversations, options);
  const findings = applyPolicy(buildFindings(correlation), options.policy ?? emptyPolicy());
  result.findings = [...supersede(result.findings, findings), ...findings].sort(compareFindings);
  return { result, correlation: correlation.report, errors };
}

/**
 * A single-capture finding that a correlation finding proves (the same RST, the same blackholed
 * conversation) is replaced by it: the correlation's evidence names the other capture too. The
 * replaced ids are kept in the correlation finding's evidence (`confirms`).
 */
function supersede(single: Finding[], correlated: Finding[]): Finding[] {
  const dropped = new Set<string>();
  for (const f of correlated) {
    const confirms: string[] = [];
    if (f.detector === 'injected-rst') {
      const rst = f.evidence.rst as { capture: 'A' | 'B'; frame: number };
      const prefix = `${rst.capture === 'A' ? 1 : 2}:injected-rst/`;
      for (const s of single) {
        const rsts = (s.evidence.rsts ?? []) as { frame?: number }[];
        if (s.id.startsWith(prefix) && rsts.some((r) => r.frame === rst.frame)) confirms.push(s.id);
      }
    } else if (f.detector === 'blackhole') {
      const front = f.conversations[0];
      for (const s of single) if (s.detector === 'blackhole' && /^[12]:/.test(s.id) && s.conversations.includes(front)) confirms.push(s.id);
    }
    if (confirms.length > 0) {
      f.evidence.confirms = confirms;
      for (const id of confirms) dropped.add(id);
    }
  }
  return single.filter((f) => !dropped.has(f.id));
}

function applyPolicy(findings: Finding[], policy: Policy): Finding[] {
  return findings
    .filter((f) => !policy.disabled.includes(f.detector))
    .map((f) => (policy.severity[f.detector] !== undefined ? { ...f, severity: policy.severity[f.detector] } : f));
}

/** The report plus the full per-pair analyses the findings are built from. */
export interface Correlation {
  report: CorrelationReport;
  context: FindingContext;
  pathReports: PathReport[];
  proxyReports: ProxyReport[];
}

export interface FindingContext {
  pathA: string;
  pathB: string;
  idShift: number;
  thresholds: { minLostPackets: number; minSilentSeconds: number };
}

/** The correlation itself, on fingerprints (unit tests build these without capture files). */
export function correlatePrints(
  A: CaptureFingerprints,
  B: CaptureFingerprints,
  idShift: number,
  options: CorrelateOptions = {},
): Correlation {
  const given = options.clockOffset ?? null;
  const maxListed = options.maxListed ?? 50;
  // Pairing 1: same sequence numbers.
  const seqPairs = pairBySequence(A, B);
  const pathMatches = seqPairs.map(matchPathPackets);
  const perPair = pathMatches.map((m) => estimateClockOffset(m.deltas.c2s, m.deltas.s2c));
  const estimate = pathMatches.length > 0 ? combineClockEstimates(perPair) : null;
  let offset = given ?? (estimate !== null && estimate.method !== 'none' ? estimate.offset : null);
  let source: CorrelationReport['clock']['source'] = given !== null ? 'given' : offset !== null ? 'matched packets' : 'assumed 0';
  const pairedA = new Set(seqPairs.map((p) => p.a.index));
  const pairedB = new Set(seqPairs.map((p) => p.b.index));
  // Pairing 2: same payload, different sequence spaces.
  const maxForwardDelay = options.maxForwardDelay ?? DEFAULT_MAX_FORWARD_DELAY;
  const proxied = pairByPayload(A, B, pairedA, pairedB, { offset, maxForwardDelay, timingWindow: options.timingWindow ?? DEFAULT_TIMING_WINDOW });
  let proxyEstimate: ClockEstimate | null = null;
  if (offset === null && proxied.offsetEstimated) {
    // Pairing used the best candidates' median; the estimate uses every forwarded segment.
    const c2s = [...proxied.matchings.values()].flatMap((m) => m.c2s.map((x) => x.delta));
    const s2c = [...proxied.matchings.values()].flatMap((m) => m.s2c.map((x) => x.delta));
    proxyEstimate = estimateClockOffset(c2s, s2c);
    offset = proxyEstimate.method !== 'none' ? proxyEstimate.offset : proxied.offset;
    source = 'proxied payload';
  }
  const used = offset ?? 0;
  for (const p of proxied.pairs) {
    pairedA.add(p.a.index);
    pairedB.add(p.b.index);
  }
  // Last resort: leftover conversations paired by start time, only between captures that are not
  // two points of one path (there, a leftover is a connection only one point saw).
  const timed = seqPairs.length > 0 ? [] : pairByTiming(A, B, pairedA, pairedB, used, options.timingWindow ?? DEFAULT_TIMING_WINDOW);
  for (const p of timed) {
    pairedA.add(p.a.index);
    pairedB.add(p.b.index);
    const bothHashed = hasHashes(p.a) && hasHashes(p.b);
    proxied.matchings.set(p, matchPayload(p.a, p.b, used, maxForwardDelay, !bothHashed));
  }

  const spanA: [number, number] = [A.start ?? 0, A.end ?? 0];
  const spanB: [number, number] = [B.start ?? 0, B.end ?? 0];
  const owd = estimate?.oneWayDelay ?? 0;
  const pathReports = pathMatches.map((m) => analysePath(m, {
    offset: used,
    spanA,
    spanB,
    edge: Math.max(0.01, 10 * owd),
    dropBeforeRstWindow: 0.5,
  }));
  const observedUntil = Math.min(spanA[1], spanB[1] - used);
  const proxyReports = [...proxied.pairs, ...timed].map((p) => analyseProxy(p, proxied.matchings.get(p) as PayloadMatching, {
    offset: used,
    observedUntil,
    maxRequests: maxListed,
  }));

  const pairs: PairSection[] = [];
  pathReports.forEach((r) => {
    const { pair, unmatched, ...rest } = r;
    pairs.push({
      kind: pair.kind,
      a: convRef(pair.a, 'A', 0),
      b: convRef(pair.b, 'B', idShift),
      flipped: pair.flipped,
      evidence: pair.evidence,
      matchedBy: matchedBy(pair, r),
      path: { ...rest, unmatched: unmatched.slice(0, maxListed), unmatchedListed: Math.min(unmatched.length, maxListed) },
    });
  });
  for (const r of proxyReports) {
    const { pair: _pair, ...proxy } = r;
    pairs.push({
      kind: r.pair.kind,
      a: convRef(r.pair.a, 'A', 0),
      b: convRef(r.pair.b, 'B', idShift),
      flipped: false,
      evidence: r.pair.evidence,
      matchedBy: matchedBy(r.pair, null),
      proxy,
    });
  }
  pairs.sort((x, y) => x.a.start - y.a.start || x.a.id - y.a.id);

  const unmatchedA = A.conversations.filter((c) => !pairedA.has(c.index))
    .map((c) => ({ ...convRef(c, 'A', 0), reason: unmatchedReason(c, B, used) }));
  const unmatchedB = B.conversations.filter((c) => !pairedB.has(c.index))
    .map((c) => ({ ...convRef(c, 'B', idShift), reason: unmatchedReason(c, A, -used) }));
  const sum = (pick: (r: PathReport) => number) => pathReports.reduce((n, r) => n + pick(r), 0);
  const side = (prints: CaptureFingerprints): CaptureSide => ({
    path: prints.path,
    conversations: prints.conversations.length,
    packetsRecorded: prints.conversations.reduce((n, c) => n + c.packets.length, 0),
    conversationsNotRecorded: prints.conversationsNotRecorded,
    packetsNotRecorded: prints.packetsNotRecorded,
    start: prints.start,
    end: prints.end,
  });
  const report: CorrelationReport = {
    captures: { A: side(A), B: side(B) },
    clock: { offset: used, source, estimate: estimate ?? proxyEstimate, given },
    pairs,
    unmatched: { A: unmatchedA, B: unmatchedB },
    totals: {
      pairs: pairs.length,
      sameConnection: pathReports.length,
      proxied: proxyReports.length,
      complete: pathReports.filter((r) => r.complete).length,
      packetsMatched: sum((r) => r.matched.c2s + r.matched.s2c),
      lost: sum((r) => r.counts.lost),
      notCaptured: sum((r) => r.counts['not-captured']),
      appeared: sum((r) => r.counts.appeared),
      outside: sum((r) => r.counts.outside),
      injectedRsts: sum((r) => r.injected.length),
      undeliveredBytes: proxyReports.reduce((n, r) => n + r.streams.c2s.undelivered + r.streams.s2c.undelivered, 0),
      unmatchedConversations: { A: unmatchedA.length, B: unmatchedB.length },
    },
  };
  const context: FindingContext = {
    pathA: A.path,
    pathB: B.path,
    idShift,
    thresholds: {
      minLostPackets: options.policy?.thresholds['path-loss']?.minLostPackets ?? 1,
      minSilentSeconds: options.policy?.thresholds['unpropagated-failure']?.minSilentSeconds ?? 1,
    },
  };
  return { report, context, pathReports, proxyReports };
}

function hasHashes(conv: ConvPrint): boolean {
  const log = conv.packets;
  for (let i = 0; i < log.length; i++) if (log.hash[i] !== 0) return true;
  return false;
}
