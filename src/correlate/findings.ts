import { basename } from 'node:path';
import { injectedRst } from '../detect/detectors/injected-rst.js';
import { blackhole } from '../detect/detectors/blackhole.js';
import type { Finding, Severity } from '../detect/finding.js';
import { humanSeconds, round } from '../detect/util.js';
import { shortSeconds } from './clock.js';
import { plural } from '../english.js';
import { hostPort } from '../flow/summary.js';
import { BLACKHOLE_MIN_STUCK_SECONDS, inFlightChange, pathLoss, unpropagatedFailure } from './catalogue.js';
import type { Correlation } from './correlate.js';
import type { ConvPrint } from './fingerprint.js';
import type { Pair } from './pairing.js';
import type { CaptureName, InjectedRst, PacketRef, PathReport } from './path.js';
import type { ProxyReport, StreamTransfer } from './proxy.js';

/** Packets listed in a finding's evidence. */
const MAX_LISTED = 20;

interface Names {
  label(c: CaptureName): string;
  offset: number;
  idShift: number;
}

function tuple(conv: ConvPrint, flipped = false): string {
  const s = conv.summary;
  return flipped ? `${hostPort(s.server)} -> ${hostPort(s.client)}` : `${hostPort(s.client)} -> ${hostPort(s.server)}`;
}

function ids(pair: Pair, names: Names, first: CaptureName = 'A'): number[] {
  const a = pair.a.summary.id;
  const b = pair.b.summary.id + names.idShift;
  return first === 'A' ? [a, b] : [b, a];
}

/** A packet reference's time on A's clock. */
function onA(r: PacketRef, names: Names): number {
  return r.capture === 'B' ? r.time - names.offset : r.time;
}

function refEvidence(r: PacketRef, names: Names): Record<string, unknown> {
  return {
    capture: r.capture,
    frame: r.frame,
    time: round(r.time),
    ...(r.capture === 'B' && names.offset !== 0 ? { timeOnA: round(r.time - names.offset) } : {}),
    direction: r.direction === 'c2s' ? 'client->server' : 'server->client',
    flags: r.flags,
    seq: r.seq,
    ack: r.ack,
    len: r.len,
    ttl: r.ttl,
    ipId: r.ipId,
  };
}

function other(c: CaptureName): CaptureName {
  return c === 'A' ? 'B' : 'A';
}

function sideWord(report: PathReport, c: CaptureName): string {
  if (report.clientSide === null) return '';
  return report.clientSide === c ? 'client side' : 'server side';
}

function hopsText(hops: number | null): string {
  if (hops === null) return 'an unknown number of routers';
  return hops === 0 ? 'no router (same link)' : plural(hops, 'router');
}

function injectedFinding(report: PathReport, inj: InjectedRst, names: Names): Finding {
  const pair = report.pair;
  const here = inj.rst.capture;
  const there = other(here);
  const conv = here === 'A' ? pair.a : pair.b;
  const s = conv.summary;
  const claimed = inj.claimedSender === 'server' ? (here === 'B' && pair.flipped ? s.client : s.server) : (here === 'B' && pair.flipped ? s.server : s.client);
  const who = inj.claimedSender;
  const parts: string[] = [];
  parts.push(`At ${names.label(here)}${sideWord(report, here) ? ` (${sideWord(report, here)})` : ''}, frame ${inj.rst.frame} is an RST claiming to come from the ${who} ${hostPort(claimed)}. ` +
    `${names.label(there)}, at the ${who}'s end of the path and capturing at that time, has no such RST: the ${who} never sent it.`);
  if (inj.ttlDiffers && inj.senderTtl !== null) {
    const up = inj.senderTtlUpstream;
    parts.push(`Its TTL is ${inj.rst.ttl} where the ${who}'s real packets arrive with ${inj.senderTtl}` +
      (up !== null ? ` (they leave with ${up}: ${hopsText(inj.hopsBetweenPoints)} between the points)` : '') + '.');
  }
  const forger = inj.forgerHopsFromArrival;
  let where = 'between the two capture points';
  if (forger !== null && inj.hopsBetweenPoints !== null && inj.hopsBetweenPoints > 0 && forger < inj.hopsBetweenPoints) {
    where = `at router ${forger + 1} of ${inj.hopsBetweenPoints} between the points, counted from the ${here === report.clientSide ? 'client' : 'server'} side`;
    parts.push(`With an initial TTL of ${inj.rst.ttl + forger}, it was made ${forger === 0 ? 'by the device adjacent to this capture point (no router decremented its TTL)' : `${plural(forger, 'router')} before this capture point`}: ${where}.`);
  }
  if (inj.precededByLoss !== null) {
    const lost = inj.precededByLoss;
    parts.push(`${shortSeconds(inj.rst.time - lost.time)} before it, the ${lost.direction === 'c2s' ? 'client' : 'server'}'s ${lost.len > 0 ? `${lost.len}-byte segment` : `${lost.flags} packet`} (${lost.capture} frame ${lost.frame}) was dropped between the points: the device that dropped it answered with this reset.`);
  }
  if (inj.senderCarriedOn !== null) {
    const c = inj.senderCarriedOn;
    parts.push(`The ${who} carried on as if nothing had happened: ${c.flags} at ${c.capture} frame ${c.frame}, ${humanSeconds(Math.max(0, onA(c, names) - onA(inj.rst, names)))} later.`);
  }
  if (inj.seqInWindow) parts.push('Its sequence number is exactly the next byte the receiver expected, as a forger that read the connection writes it.');
  if (inj.rst.ipId === 0 && inj.senderIpIds.some((id) => id > 0)) {
    parts.push(`Its IP ID is 0 while the ${who}'s packets carry ${inj.senderIpIds.filter((id) => id > 0).slice(-3).join(', ')} (weak on its own: Linux sends RSTs and SYN-ACKs with IP ID 0).`);
  }
  const strong = inj.ttlDiffers || inj.precededByLoss !== null || inj.senderCarriedOn !== null;
  const severity: Severity = strong ? 'critical' : 'warning';
  if (!strong) parts.push(`Nothing else distinguishes it from the ${who}'s packets; if ${names.label(there)} dropped packets while capturing, it may have missed a real RST.`);
  const start = onA(inj.rst, names);
  const end = inj.senderCarriedOn !== null ? Math.max(start, onA(inj.senderCarriedOn, names)) : start;
  return {
    id: `injected-rst/correlate:${here}${inj.rst.frame}`,
    detector: injectedRst.id,
    severity,
    title: `RST at ${here} frame ${inj.rst.frame} never sent by the ${who}, forged ${where}: ${tuple(conv)}`,
    conversations: ids(pair, names, here),
    client: here === 'B' && pair.flipped ? s.server : s.client,
    server: here === 'B' && pair.flipped ? s.client : s.server,
    start,
    end,
    evidence: {
      vantage: 'two captures',
      rst: refEvidence(inj.rst, names),
      claimedSender: { side: who, ip: claimed.ip, port: claimed.port },
      absentFrom: there,
      senderTtl: inj.senderTtl,
      senderTtlAtOrigin: inj.senderTtlUpstream,
      hopsBetweenPoints: inj.hopsBetweenPoints,
      forgerRouterFromArrival: forger === null ? null : forger + 1,
      senderIpIds: inj.senderIpIds,
      seqInWindow: inj.seqInWindow,
      precededByLoss: inj.precededByLoss === null ? null : refEvidence(inj.precededByLoss, names),
      senderCarriedOn: inj.senderCarriedOn === null ? null : refEvidence(inj.senderCarriedOn, names),
      pairedConversation: ids(pair, names, there)[0],
    },
    explanation: parts.join(' '),
    advice: [
      `Look for the device ${where} that resets connections: a firewall rule such as iptables \`REJECT --reject-with tcp-reset\` or a "reset on deny" policy, an IPS/IDS with active response, a DPI or web filter; its logs at ${new Date(start * 1000).toISOString()} name the rule or signature that fired.`,
      ...(inj.precededByLoss !== null ? [`The dropped segment triggered it: check the device's content or policy rules against that payload (A/B frame ${inj.precededByLoss.frame}).`] : []),
    ],
  };
}

function lossFinding(report: PathReport, names: Names, minLost: number): Finding | null {
  const lost = report.unmatched.filter((u) => u.kind === 'lost');
  if (lost.length === 0 || lost.length < minLost) return null;
  const pair = report.pair;
  const c2s = lost.filter((u) => u.direction === 'c2s');
  const s2c = lost.filter((u) => u.direction === 's2c');
  const unrecovered = lost.filter((u) => u.len > 0 && u.recovered === false);
  const bytes = lost.reduce((n, u) => n + u.len, 0);
  const first = lost[0];
  const last = lost[lost.length - 1];
  const hops = first.direction === 'c2s' ? report.changes.hops.c2s : report.changes.hops.s2c;
  const describe = (list: typeof lost, who: 'client' | 'server') => {
    if (list.length === 0) return null;
    const from = list[0].capture;
    return `${plural(list.length, 'packet')} from the ${who} (${list.reduce((n, u) => n + u.len, 0)} payload bytes, ${from} frame${list.length === 1 ? '' : 's'} ${list.slice(0, 6).map((u) => u.frame).join(', ')}${list.length > 6 ? ', …' : ''}) left ${names.label(from)} and never reached ${names.label(other(from))}`;
  };
  const parts = [describe(c2s, 'client'), describe(s2c, 'server')].filter((x): x is string => x !== null);
  const injected = report.injected.filter((i) => i.precededByLoss !== null);
  let text = `${parts.join('; ')}, although both captures were running: ${lost.length === 1 ? 'it was' : 'they were'} dropped between the two capture points (${hopsText(hops ?? null)} between them, by the TTL of the packets seen at both).`;
  if (unrecovered.length > 0) text += ` ${plural(unrecovered.length, 'payload segment')} never arrived in any copy.`;
  else text += ' Every lost payload byte arrived later in a retransmission.';
  if (injected.length > 0) text += ` The drop was answered by an RST forged in the receiver's name (see the injected-rst finding): the dropping device is the forger.`;
  const conv = pair.a;
  const start = onA(first, names);
  const end = onA(last, names);
  return {
    id: `path-loss/correlate:${pair.a.summary.id}-${pair.b.summary.id + names.idShift}`,
    detector: pathLoss.id,
    severity: unrecovered.length > 0 ? 'critical' : 'warning',
    title: `${plural(lost.length, 'packet')} lost between the capture points (${unrecovered.length > 0 ? `${plural(unrecovered.length, 'segment')} never delivered` : 'recovered by retransmission'}): ${tuple(conv)}`,
    conversations: ids(pair, names),
    client: conv.summary.client,
    server: conv.summary.server,
    start: Math.min(start, end),
    end: Math.max(start, end),
    evidence: {
      vantage: 'two captures',
      lost: lost.length,
      lostBytes: bytes,
      clientToServer: c2s.length,
      serverToClient: s2c.length,
      unrecovered: unrecovered.length,
      hopsBetweenPoints: hops,
      clientSide: report.clientSide,
      otherTuple: tuple(pair.b, pair.flipped),
      packets: lost.slice(0, MAX_LISTED).map((u) => ({ ...refEvidence(u, names), recovered: u.recovered ?? null })),
    },
    explanation: text,
    advice: pathLoss.advice,
  };
}

function changeSignature(report: PathReport): { key: string; parts: string[]; severity: Severity; changes: Record<string, unknown> } | null {
  const c = report.changes;
  const parts: string[] = [];
  const changes: Record<string, unknown> = {};
  let severity: Severity = 'info';
  for (const o of c.options) {
    if (o.option === 'mss') parts.push(`${o.side} MSS ${o.upstream ?? 'none'} -> ${o.downstream ?? 'none'}${typeof o.upstream === 'number' && typeof o.downstream === 'number' && o.downstream < o.upstream ? ' (clamped)' : ''}`);
    else if (o.downstream === false || o.downstream === null) {
      parts.push(`${o.side} ${o.option} stripped from the SYN`);
      if (o.option !== 'sackPermitted') severity = 'warning';
    } else parts.push(`${o.side} ${o.option} ${String(o.upstream)} -> ${String(o.downstream)}`);
  }
  if (c.options.length > 0) changes.options = c.options;
  const ts = c.timestampsStripped.c2s + c.timestampsStripped.s2c;
  if (ts > 0 && !c.options.some((o) => o.option === 'timestamps')) {
    parts.push('timestamps stripped from segments');
    severity = 'warning';
  }
  if (ts > 0) changes.timestampsStripped = c.timestampsStripped;
  if (c.windowChanged.c2s + c.windowChanged.s2c > 0) {
    parts.push('advertised windows rewritten');
    changes.windowChanged = { c2s: c.windowChanged.c2s, s2c: c.windowChanged.s2c };
  }
  if (c.flagsChanged > 0) {
    parts.push('TCP flags changed');
    changes.flagsChanged = c.flagsChanged;
  }
  if (parts.length === 0) return null;
  return { key: parts.join('; '), parts, severity, changes };
}

function changeFindings(reports: PathReport[], names: Names): Finding[] {
  const groups = new Map<string, { sig: NonNullable<ReturnType<typeof changeSignature>>; reports: PathReport[] }>();
  for (const r of reports) {
    const sig = changeSignature(r);
    if (sig === null) continue;
    let g = groups.get(sig.key);
    if (g === undefined) groups.set(sig.key, (g = { sig, reports: [] }));
    g.reports.push(r);
  }
  const out: Finding[] = [];
  let n = 0;
  for (const { sig, reports: list } of groups.values()) {
    n++;
    const first = list[0];
    const start = Math.min(...list.map((r) => r.pair.a.summary.start));
    const end = Math.max(...list.map((r) => r.pair.a.summary.end));
    out.push({
      id: `in-flight-change/correlate:${n}`,
      detector: inFlightChange.id,
      severity: sig.severity,
      title: `TCP rewritten between the capture points: ${sig.parts.join(', ')} (${plural(list.length, 'connection')})`,
      conversations: list.flatMap((r) => ids(r.pair, names)),
      client: first.pair.a.summary.client,
      server: first.pair.a.summary.server,
      start,
      end,
      evidence: {
        vantage: 'two captures',
        ...sig.changes,
        hopsBetweenPoints: first.changes.hops,
        connections: list.length,
        tuples: list.slice(0, MAX_LISTED).map((r) => tuple(r.pair.a)),
      },
      explanation: `On ${plural(list.length, 'connection')} seen at both points (first: ${tuple(first.pair.a)} at ${names.label('A')}), ` +
        `the packets differ in ways routing and NAT do not explain: ${sig.parts.join('; ')}. A device between the points rewrites TCP. ` +
        (sig.parts.some((p) => p.includes('timestamps')) ? 'Without timestamps the endpoints lose PAWS and RTT measurement, and Linux cannot safely reuse TIME_WAIT ports (tcp_tw_reuse). ' : '') +
        (sig.parts.some((p) => p.includes('windowScale')) ? 'Without window scaling the window is capped at 64 KiB per round trip. ' : ''),
      advice: inFlightChange.advice,
    });
  }
  return out;
}

function streamText(t: StreamTransfer): string {
  const who = t.direction === 'c2s' ? 'client' : 'backend';
  const to = t.direction === 'c2s' ? 'backend' : 'client';
  return `the proxy ACKed ${t.ackedByProxy} bytes from the ${who}, put ${t.forwarded} of them on the ${to === 'backend' ? 'back' : 'front'} leg, and the ${to} ACKed ${t.delivered}`;
}

function blackholeFinding(report: ProxyReport, t: StreamTransfer, names: Names): Finding | null {
  if (t.undelivered === 0 || t.firstUndelivered === null || (t.stuckSeconds ?? 0) < BLACKHOLE_MIN_STUCK_SECONDS) return null;
  const pair = report.pair;
  const front = report.front;
  const back = other(front);
  const frontConv = front === 'A' ? pair.a : pair.b;
  const backConv = front === 'A' ? pair.b : pair.a;
  const receivingLeg = t.receivedOn === 'front' ? front : back;
  const sendingLeg = other(receivingLeg);
  const fu = t.firstUndelivered;
  const fw = t.firstUnforwarded;
  const parts = [
    `${streamText(t).replace(/^t/, 'T')}:`,
    `${t.undelivered} bytes the proxy acknowledged never reached the ${t.direction === 'c2s' ? 'backend' : 'client'}` +
      (t.unforwarded > 0 ? ` (${t.unforwarded} of them were never even sent on ${names.label(sendingLeg)}; ${t.undelivered - t.unforwarded} were sent but never acknowledged).` : ' (they were sent on but never acknowledged).'),
  ];
  if (fu.segment !== null) {
    parts.push(`The first undelivered byte (relative seq ${fu.seq}) came in ${names.label(receivingLeg)} frame ${fu.segment.frame}` +
      (fu.ackedBy !== null ? ` and the proxy acknowledged it in frame ${fu.ackedBy.frame}, ${shortSeconds(Math.max(0, fu.ackedBy.time - fu.segment.time))} later` : '') + '.');
  }
  if (fw !== null && fw.segment !== null) parts.push(`The first byte never forwarded (seq ${fw.seq}) came in frame ${fw.segment.frame}.`);
  parts.push(`The ${t.direction === 'c2s' ? 'client' : 'backend'} saw a healthy TCP connection: everything it sent was ACKed, and the data vanished inside the proxy for at least ${humanSeconds(t.stuckSeconds ?? 0)}.`);
  const start = fu.ackedBy?.time ?? fu.segment?.time ?? frontConv.summary.start;
  return {
    id: `blackhole/correlate:${frontConv.summary.id + (front === 'B' ? names.idShift : 0)}-${t.direction}`,
    detector: blackhole.id,
    severity: 'critical',
    title: `${t.undelivered} bytes ACKed by the proxy never reached the ${t.direction === 'c2s' ? 'backend' : 'client'}${t.unforwarded > 0 ? ` (${t.unforwarded} never forwarded)` : ''}: ${tuple(frontConv)}`,
    conversations: ids(pair, names, front),
    client: frontConv.summary.client,
    server: frontConv.summary.server,
    start,
    end: start + (t.stuckSeconds ?? 0),
    evidence: {
      vantage: 'two captures (proxy)',
      direction: t.direction === 'c2s' ? 'client->backend' : 'backend->client',
      frontCapture: front,
      backLeg: tuple(backConv),
      sent: t.sent,
      ackedByProxy: t.ackedByProxy,
      forwarded: t.forwarded,
      delivered: t.delivered,
      undelivered: t.undelivered,
      unforwarded: t.unforwarded,
      streamOffset: t.streamOffset,
      firstUndeliveredSeq: fu.seq,
      firstUndeliveredFrame: fu.segment?.frame ?? null,
      firstUndeliveredTime: fu.segment === null ? null : round(fu.segment.time),
      proxyAckFrame: fu.ackedBy?.frame ?? null,
      firstUnforwardedSeq: fw?.seq ?? null,
      firstUnforwardedFrame: fw?.segment?.frame ?? null,
      firstUnforwardedTime: fw?.segment == null ? null : round(fw.segment.time),
      stuckSeconds: t.stuckSeconds === null ? null : round(t.stuckSeconds),
    },
    explanation: parts.join(' '),
    advice: blackhole.advice,
  };
}

function unpropagatedFinding(report: ProxyReport, names: Names, minSilent: number): Finding | null {
  const failure = report.backFailure;
  const outcome = report.frontOutcome;
  if (failure === null || outcome === null) return null;
  if (outcome.kind === 'reset' || outcome.kind === 'answered' || outcome.silentSeconds < minSilent) return null;
  const pair = report.pair;
  const front = report.front;
  const back = other(front);
  const frontConv = front === 'A' ? pair.a : pair.b;
  const backConv = front === 'A' ? pair.b : pair.a;
  const what = {
    unacknowledged: `the backend stopped acknowledging: data from ${back} frame ${failure.since.frame} on was never ACKed${failure.retransmissions > 0 ? ` (${plural(failure.retransmissions, 'retransmission')})` : ''}`,
    'reset-by-backend': `the backend reset the connection (${back} frame ${failure.since.frame})`,
    'reset-by-proxy': `the proxy reset the backend connection (${back} frame ${failure.since.frame})`,
    'connect-failed': `the proxy's connection attempt to the backend was never answered (${back} frame ${failure.since.frame})`,
  }[failure.kind];
  const reset = failure.reset !== null && failure.kind === 'unacknowledged'
    ? ` The proxy ${failure.reset.flags.includes('R') && failure.reset.direction === 'c2s' ? 'gave up and reset the back leg' : 'saw the back leg reset'} (${back} frame ${failure.reset.frame}) ${humanSeconds(Math.max(0, failure.reset.time - failure.since.time))} later.`
    : '';
  let told: string;
  switch (outcome.kind) {
    case 'fin':
      told = `The client was never told: the proxy closed the front leg with a FIN (${front} frame ${outcome.proxyPacket?.frame}), an orderly end, ${humanSeconds(outcome.silentSeconds)} after the failure` +
        (outcome.clientClose !== null && outcome.proxyPacket !== null && outcome.clientClose.time < outcome.proxyPacket.time
          ? `, after the client had already given up (its ${outcome.clientClose.flags} in ${front} frame ${outcome.clientClose.frame})` : '') +
        (failure.reset !== null && outcome.proxyPacket !== null && outcome.proxyPacket.time >= failure.reset.time
          ? `; the FIN followed the back-leg reset by ${shortSeconds(outcome.proxyPacket.time - failure.reset.time)}: the proxy turned a failure into an orderly close.` : '.');
      break;
    case 'client-closed':
      told = `The proxy sent the client nothing; the client gave up on its own (${outcome.clientClose?.flags} in ${front} frame ${outcome.clientClose?.frame}, ${humanSeconds(Math.max(0, (outcome.clientClose?.time ?? 0) - failure.since.time))} after the failure).`;
      break;
    default:
      told = `The proxy sent the client nothing for the remaining ${humanSeconds(outcome.silentSeconds)} of the captures: the client is left half-open.`;
  }
  return {
    id: `unpropagated-failure/correlate:${frontConv.summary.id + (front === 'B' ? names.idShift : 0)}`,
    detector: unpropagatedFailure.id,
    severity: 'warning',
    title: `Backend connection failed, client ${outcome.kind === 'open' ? 'left half-open' : outcome.kind === 'fin' ? 'got a clean FIN' : 'not told'}: ${tuple(frontConv)}`,
    conversations: ids(pair, names, front),
    client: frontConv.summary.client,
    server: frontConv.summary.server,
    start: failure.since.time,
    end: failure.since.time + outcome.silentSeconds,
    evidence: {
      vantage: 'two captures (proxy)',
      frontCapture: front,
      backLeg: tuple(backConv),
      backFailure: failure.kind,
      backFailureFrame: failure.since.frame,
      backFailureTime: round(failure.since.time),
      retransmissions: failure.retransmissions,
      backResetFrame: failure.reset?.frame ?? null,
      backResetTime: failure.reset === null ? null : round(failure.reset.time),
      frontOutcome: outcome.kind,
      proxyFrontFrame: outcome.proxyPacket?.frame ?? null,
      proxyFrontFlags: outcome.proxyPacket?.flags ?? null,
      clientCloseFrame: outcome.clientClose?.frame ?? null,
      silentSeconds: round(outcome.silentSeconds),
    },
    explanation: `On the back leg (${tuple(backConv)}), ${what}.${reset} ${told}`,
    advice: unpropagatedFailure.advice,
  };
}

/** Findings of one correlation, before policy. */
export function buildFindings(correlation: Correlation): Finding[] {
  const { context, pathReports, proxyReports, report } = correlation;
  const names: Names = {
    label: (c) => `${c} (${basename(c === 'A' ? context.pathA : context.pathB)})`,
    offset: report.clock.offset,
    idShift: context.idShift,
  };
  const out: Finding[] = [];
  for (const r of pathReports) {
    for (const inj of r.injected) out.push(injectedFinding(r, inj, names));
    const loss = lossFinding(r, names, context.thresholds.minLostPackets);
    if (loss !== null) out.push(loss);
  }
  out.push(...changeFindings(pathReports, names));
  for (const r of proxyReports) {
    for (const t of [r.streams.c2s, r.streams.s2c]) {
      const f = blackholeFinding(r, t, names);
      if (f !== null) out.push(f);
    }
    const u = unpropagatedFinding(r, names, context.thresholds.minSilentSeconds);
    if (u !== null) out.push(u);
  }
  return out;
}
