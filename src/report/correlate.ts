import type { Writable } from 'node:stream';
import type { ChalkInstance } from 'chalk';
import type { CorrelateOutcome, CorrelationReport, PairSection } from '../correlate/correlate.js';
import type { UnmatchedPacket } from '../correlate/path.js';
import type { StreamTransfer } from '../correlate/proxy.js';
import { shortSeconds } from '../correlate/clock.js';
import { plural } from '../english.js';
import { hostPort } from '../flow/summary.js';
import { TOOL } from '../version.js';
import { SCHEMA_VERSION } from './json.js';
import { formatCount, formatTime } from './format.js';
import { renderText, type TextOptions } from './text.js';

function signed(seconds: number): string {
  return `${seconds >= 0 ? '+' : '-'}${shortSeconds(Math.abs(seconds))}`;
}

function tuple(ref: PairSection['a']): string {
  return `${hostPort(ref.client)} -> ${hostPort(ref.server)}`;
}

function dirArrow(dir: 'c2s' | 's2c'): string {
  return dir === 'c2s' ? 'c→s' : 's→c';
}

function packetLine(u: UnmatchedPacket): string {
  return `${u.capture} frame ${u.frame} ${dirArrow(u.direction)} ${u.flags} seq ${u.seq}${u.len > 0 ? ` len ${u.len}` : ''} ttl ${u.ttl}`;
}

const KIND_WORDS: Record<UnmatchedPacket['kind'], string> = {
  lost: 'lost between the points',
  'not-captured': 'missed by a capture',
  outside: 'outside the other capture',
  appeared: 'appeared between the points',
  unplaced: 'seen in one capture only',
};

function clockLine(c: CorrelationReport['clock']): string {
  const e = c.estimate;
  const parts = [`clock: B - A = ${signed(c.offset)}`];
  if (c.source === 'given') parts.push(`(given${e !== null && e.method !== 'none' ? `; estimate ${signed(e.offset)}` : ''})`);
  else if (c.source === 'assumed 0') parts.push('(assumed: no packet seen at both points)');
  else if (e !== null) {
    const n = e.samples[0] + e.samples[1];
    parts.push(c.source === 'matched packets'
      ? `(estimated from ${formatCount(n)} packets seen at both points, ${e.method}${e.oneWayDelay !== null ? `; one-way delay ${shortSeconds(e.oneWayDelay)}` : ''})`
      : `(estimated from ${formatCount(n)} payload segments forwarded through the proxy, assuming it takes as long each way)`);
  }
  return parts.join(' ');
}

function streamLine(t: StreamTransfer): string {
  const name = t.direction === 'c2s' ? 'client→backend' : 'backend→client';
  const base = `${name}: sent ${t.sent}, ACKed by proxy ${t.ackedByProxy}, forwarded ${t.forwarded}, delivered ${t.delivered}`;
  return t.undelivered > 0 ? `${base} — ${t.undelivered} undelivered (${t.unforwarded} never forwarded)` : base;
}

function renderPair(pair: PairSection, chalk: ChalkInstance): string[] {
  const lines: string[] = [];
  const head = `#${pair.a.id} ⇄ #${pair.b.id}  ${pair.kind}`;
  if (pair.path !== undefined) {
    const p = pair.path;
    const ok = p.complete ? chalk.green('complete') : chalk.yellow('incomplete');
    lines.push(`  ${chalk.bold(head)}  A ${tuple(pair.a)}  B ${tuple(pair.b)}  ${ok}`);
    lines.push(`      matched by: ${pair.matchedBy.join('; ')}`);
    const side = p.clientSide === null ? 'client side unknown' : `${p.clientSide} is the client side (by ${p.how})`;
    const hops = p.changes.hops;
    const hopText = hops.c2s === null && hops.s2c === null ? '' : `, routers between the points c→s ${hops.c2s ?? '?'} / s→c ${hops.s2c ?? '?'}`;
    lines.push(`      path: ${side}${hopText}${p.oneWayDelay !== null ? `, one-way delay ${shortSeconds(p.oneWayDelay)}` : ''}`);
    const counts = Object.entries(p.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${KIND_WORDS[k as UnmatchedPacket['kind']]}`);
    lines.push(`      packets: A ${p.packets.A}, B ${p.packets.B}, matched ${p.matched.c2s + p.matched.s2c}${counts.length > 0 ? `; ${counts.join(', ')}` : ''}`);
    for (const u of p.unmatched.slice(0, 8)) {
      const text = `        ${packetLine(u)}: ${KIND_WORDS[u.kind]}${u.recovered === true ? ' (recovered later)' : ''}`;
      lines.push(u.kind === 'lost' || u.kind === 'appeared' ? chalk.red(text) : chalk.dim(text));
    }
    if (p.unmatched.length > 8) lines.push(chalk.dim(`        … ${p.unmatched.length - 8} more (--json lists ${p.unmatchedListed})`));
    for (const inj of p.injected) {
      lines.push(chalk.red(`      injected RST at ${inj.rst.capture} frame ${inj.rst.frame} (claims to be the ${inj.claimedSender}; TTL ${inj.rst.ttl} vs ${inj.senderTtl ?? '?'})`));
    }
  } else if (pair.proxy !== undefined) {
    const x = pair.proxy;
    const back = x.front === 'A' ? 'B' : 'A';
    const frontRef = x.front === 'A' ? pair.a : pair.b;
    const backRef = x.front === 'A' ? pair.b : pair.a;
    lines.push(`  ${chalk.bold(head)}  front ${x.front} ${tuple(frontRef)}  back ${back} ${tuple(backRef)}`);
    lines.push(`      matched by: ${pair.matchedBy.join('; ')}`);
    for (const t of [x.streams.c2s, x.streams.s2c]) {
      const text = `      ${streamLine(t)}`;
      lines.push(t.undelivered > 0 ? chalk.red(text) : text);
    }
    const delay = [x.forwardDelay.c2s !== null ? `c→s ${shortSeconds(x.forwardDelay.c2s)}` : null, x.forwardDelay.s2c !== null ? `s→c ${shortSeconds(x.forwardDelay.s2c)}` : null]
      .filter((v) => v !== null);
    const req = x.proxySeconds !== null
      ? `${plural(x.requestCount, 'answered request')}, time in the proxy median ${shortSeconds(x.proxySeconds.median)}, max ${shortSeconds(x.proxySeconds.max)}`
      : `${plural(x.requestCount, 'answered request')}`;
    lines.push(`      latency: ${req}${delay.length > 0 ? `; forwarding ${delay.join(', ')}` : ''}`);
    if (x.backFailure !== null) {
      const f = x.backFailure;
      const o = x.frontOutcome;
      lines.push(chalk.yellow(`      back leg failed (${f.kind}) at ${back} frame ${f.since.frame}${f.reset !== null ? `, reset at ${f.reset.capture} frame ${f.reset.frame}` : ''}; ` +
        `client ${o === null ? '?' : o.kind === 'reset' ? 'reset' : o.kind === 'answered' ? 'answered' : o.kind === 'fin' ? 'got a FIN' : o.kind === 'client-closed' ? 'gave up first' : 'left half-open'}` +
        `${o !== null ? ` after ${shortSeconds(o.silentSeconds)}` : ''}`));
    }
  }
  return lines;
}

/** The correlation section of the text report. */
export function renderCorrelation(report: CorrelationReport, chalk: ChalkInstance): string[] {
  const t = report.totals;
  const out = ['', chalk.bold('CORRELATION')];
  for (const name of ['A', 'B'] as const) {
    const c = report.captures[name];
    const span = c.start !== null && c.end !== null ? `, ${formatTime(c.start)} → ${formatTime(c.end)}` : '';
    out.push(`  ${name}: ${c.path}: ${plural(c.conversations, 'conversation')}${span}` +
      (c.packetsNotRecorded > 0 ? chalk.yellow(` (${formatCount(c.packetsNotRecorded)} packets over the recording caps not correlated)`) : ''));
  }
  out.push(`  ${clockLine(report.clock)}`);
  out.push(`  ${plural(t.pairs, 'pair')}: ${formatCount(t.sameConnection)} same connection, ${formatCount(t.proxied)} proxied`);
  if (t.sameConnection > 0) {
    out.push(`  same connection: ${t.complete} of ${t.sameConnection} complete; ${formatCount(t.packetsMatched)} packets matched, ${t.lost} lost between the points, ` +
      `${t.appeared} appeared between them (${plural(t.injectedRsts, 'injected RST')}), ${t.notCaptured} missed by a capture, ${t.outside} outside the other capture's span`);
  }
  for (const pair of report.pairs) {
    out.push('');
    out.push(...renderPair(pair, chalk));
  }
  out.push('', chalk.bold(`UNMATCHED CONVERSATIONS (A ${t.unmatchedConversations.A}, B ${t.unmatchedConversations.B})`));
  for (const name of ['A', 'B'] as const) {
    const list = report.unmatched[name];
    if (list.length === 0) {
      out.push(`  ${name}: none`);
      continue;
    }
    for (const u of list.slice(0, 20)) out.push(`  ${name} #${u.id} ${tuple(u)} (${u.packets} packets): ${u.reason}`);
    if (list.length > 20) out.push(chalk.dim(`  ${name}: … ${list.length - 20} more (--json lists all)`));
  }
  return out;
}

/** The analyze text report of both captures, then the correlation, then the summary line. */
export function renderCorrelateText(outcome: CorrelateOutcome, options: TextOptions): string {
  const text = renderText(outcome.result, options).replace(/\n$/, '');
  const cut = text.lastIndexOf('\n');
  const body = cut >= 0 ? text.slice(0, cut) : '';
  const summary = cut >= 0 ? text.slice(cut + 1) : text;
  const out = [body];
  if (outcome.correlation !== null && !options.quiet) out.push(...renderCorrelation(outcome.correlation, options.chalk), '');
  const t = outcome.correlation?.totals;
  let tail = '';
  if (t !== undefined) {
    const parts = [`${plural(t.pairs, 'pair')} (${formatCount(t.sameConnection)} same connection, ${formatCount(t.proxied)} proxied)`];
    if (t.sameConnection > 0) parts.push(`${formatCount(t.packetsMatched)} packets matched, ${t.lost} lost, ${plural(t.injectedRsts, 'injected RST')}`);
    if (t.proxied > 0) parts.push(`${formatCount(t.undeliveredBytes)} bytes undelivered through proxies`);
    parts.push(`unmatched conversations A ${t.unmatchedConversations.A} / B ${t.unmatchedConversations.B}`);
    tail = options.chalk.bold(`; correlation: ${parts.join(', ')}`);
  }
  out.push(summary + tail);
  return out.filter((line, i) => !(i === 0 && line === '')).join('\n') + '\n';
}

/**
 * Captures carry microseconds (some nanoseconds): epoch times are rounded to the microsecond and
 * durations to the nanosecond, so float noise (0.006432056427001953) does not pose as precision.
 */
function roundTimes(_key: string, value: unknown): unknown {
  if (typeof value !== 'number' || Number.isInteger(value)) return value;
  return Math.abs(value) >= 1e6 ? Math.round(value * 1e6) / 1e6 : Math.round(value * 1e9) / 1e9;
}

/** The JSON report of `correlate`: analyze's schema (both captures combined) plus `correlation`. */
export async function writeCorrelateJson(outcome: CorrelateOutcome, out: Writable): Promise<void> {
  const { result, correlation } = outcome;
  const parts = [
    `{"schemaVersion":${SCHEMA_VERSION},"tool":${JSON.stringify(TOOL)},"command":"correlate",`,
    `"inputs":${JSON.stringify(result.inputs)},"summary":${JSON.stringify(result.summary)},`,
    `"findings":${JSON.stringify(result.findings)},"conversations":${JSON.stringify(result.conversations)},`,
    `"correlation":${JSON.stringify(correlation, roundTimes)}}\n`,
  ];
  for (const part of parts) {
    if (!out.write(part)) await new Promise<void>((resolve) => out.once('drain', resolve));
  }
}
