import type { ChalkInstance } from 'chalk';
import Table from 'cli-table3';
import type { AnalysisResult, BaselineReport, InputReport } from '../core/session.js';
import { type Finding, type Severity, SEVERITIES } from '../detect/finding.js';
import { plural } from '../english.js';
import type { ConversationSummary } from '../flow/summary.js';
import { linkTypeName } from '../decode/link-types.js';
import { TOOL } from '../version.js';
import { formatBytes, formatCount, formatDuration, formatTime, formatTimeOfDay, hostPort } from './format.js';
import { inputSourceLabel } from './input-label.js';

export type FlowSelection = 'interesting' | 'all' | 'flagged' | 'none';

export interface TextOptions {
  chalk: ChalkInstance;
  flows: FlowSelection;
  /** Conversations shown when flows is 'interesting'. */
  limit: number;
  /** Only findings and the summary line. */
  quiet: boolean;
}

/** Plain tables: cli-table3 would colour borders itself even when piped; we colour with chalk. */
const TABLE_STYLE = { head: [] as string[], border: [] as string[] };
/** No rule between body rows: a 20-row table stays 20 lines. */
const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

export function renderText(result: AnalysisResult, options: TextOptions): string {
  const { chalk } = options;
  const out: string[] = [];
  if (!options.quiet) {
    for (const input of result.inputs) out.push(...renderInput(input, chalk));
    out.push('');
  }
  out.push(...renderFindings(result.findings, new Set(result.baseline?.suppressed ?? []), chalk));
  if (result.baseline !== undefined) out.push(...renderBaseline(result.baseline, chalk));
  if (!options.quiet) {
    const shown = selectConversations(result, options);
    if (shown.length > 0) {
      out.push('', chalk.bold(conversationsHeading(result, shown.length, options.flows)));
      out.push(renderConversations(shown, chalk));
    }
    if (Object.keys(result.summary.flags).length > 0) {
      out.push('', chalk.bold('TCP FLAGS (per direction, tcpdump notation)'), renderFlags(result, chalk));
    }
    out.push('');
  }
  out.push(summaryLine(result, chalk));
  return out.join('\n') + '\n';
}

function renderInput(input: InputReport, chalk: ChalkInstance): string[] {
  const lines = [chalk.bold(`${TOOL.name} ${TOOL.version} — ${input.path}`)];
  if (input.error !== null) {
    lines.push(chalk.red(`  error: ${input.error}`));
    return lines;
  }
  const links = input.linkTypes.length > 0 ? [...new Set(input.linkTypes)].map(linkTypeName).join(', ') : 'none';
  lines.push(`  ${inputSourceLabel(input)}, link ${links}`);
  const span = input.start !== null && input.end !== null
    ? `, ${formatTime(input.start)} → ${formatTime(input.end)} (${formatDuration(input.end - input.start)})`
    : '';
  lines.push(`  ${formatCount(input.packets)} packets, ${formatCount(input.tcpPackets)} TCP, ${formatBytes(input.bytes)}${span}`);
  for (const warning of input.warnings) lines.push(chalk.yellow(`  warning: ${warning}`));
  return lines;
}

const SEVERITY_STYLE: Record<Severity, (chalk: ChalkInstance, text: string) => string> = {
  critical: (chalk, text) => chalk.bold.red(text),
  warning: (chalk, text) => chalk.yellow(text),
  info: (chalk, text) => chalk.cyan(text),
};

function renderBaseline(baseline: BaselineReport, chalk: ChalkInstance): string[] {
  const lines = ['', chalk.dim(`baseline ${baseline.path}: ${baseline.suppressed.length} finding(s) accepted, ${baseline.stale.length} stale entr${baseline.stale.length === 1 ? 'y' : 'ies'}`)];
  for (const entry of baseline.stale) {
    lines.push(chalk.yellow(`  stale: ${entry.detector} client=${entry.client ?? '*'} server=${entry.server ?? '*'}${entry.title ? ` (${entry.title})` : ''}`));
  }
  return lines;
}

function renderFindings(findings: readonly Finding[], accepted: ReadonlySet<string>, chalk: ChalkInstance): string[] {
  const counts = SEVERITIES.map((s) => `${findings.filter((f) => f.severity === s).length} ${s}`).join(', ');
  const lines = [chalk.bold(`FINDINGS (${counts})`)];
  if (findings.length === 0) {
    lines.push('  none: no detector found anything wrong in this capture');
    return lines;
  }
  for (const finding of findings) {
    const label = SEVERITY_STYLE[finding.severity](chalk, finding.severity.toUpperCase().padEnd(8));
    const note = accepted.has(finding.id) ? chalk.dim(' (accepted in baseline)') : '';
    lines.push('', `${label} ${chalk.bold(finding.detector)}  ${finding.title}${note}`);
    const conv = finding.conversations.length > 0
      ? `conversation${finding.conversations.length > 1 ? 's' : ''} ${formatIdList(finding.conversations)}, `
      : '';
    lines.push(chalk.dim(`  ${conv}${formatTime(finding.start)} → ${formatTime(finding.end)}`));
    lines.push(`  ${chalk.dim('evidence:')} ${formatEvidence(finding.evidence)}`);
    lines.push(`  ${chalk.dim('why:')} ${finding.explanation}`);
    if (finding.advice.length > 0) {
      lines.push(`  ${chalk.dim('what to change:')}`);
      for (const advice of finding.advice) lines.push(`    - ${advice}`);
    }
  }
  return lines;
}

function formatIdList(ids: readonly number[]): string {
  const shown = ids.slice(0, 8).map((id) => `#${id}`).join(' ');
  return ids.length > 8 ? `${shown} … (${ids.length} in all)` : shown;
}

/**
 * Evidence on one line: scalars as key=value, lists of scalars shortened. Nested records (per-packet
 * details, per-conversation lists) are left to the JSON report and `connscope flow`.
 */
export function formatEvidence(evidence: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(evidence)) {
    if (value === null || value === undefined) continue;
    const format = CAPTURE_TIME_KEY.test(key) ? formatTimeScalar : formatScalar;
    if (Array.isArray(value)) {
      if (value.length === 0 || value.some((item) => typeof item === 'object' && item !== null)) continue;
      const items = value.slice(0, 6).map(format);
      parts.push(`${key}=[${items.join(', ')}${value.length > 6 ? `, … ${value.length - 6} more` : ''}]`);
    } else if (typeof value !== 'object') parts.push(`${key}=${format(value)}`);
  }
  return parts.join(' ');
}

/**
 * Evidence fields holding capture times (seconds since the epoch, as JSON keeps them): `times`,
 * `sinceTime`, `peakWindowStart`... Ten-digit epoch seconds mean nothing to a reader; a time of day does.
 */
const CAPTURE_TIME_KEY = /^times?$|Times?$|Start$/;

function formatTimeScalar(value: unknown): string {
  return typeof value === 'number' ? formatTimeOfDay(value) : formatScalar(value);
}

function formatScalar(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(3)));
  return String(value);
}

/** How much a conversation deserves a look, for ordering the table; not a diagnosis. */
function attention(conv: ConversationSummary, flagged: ReadonlySet<number>): number {
  const troubles = conv.retransmissions.client + conv.retransmissions.server + conv.resets.client + conv.resets.server +
    conv.zeroWindows.client + conv.zeroWindows.server;
  return (flagged.has(conv.id) ? 1e12 : 0) + troubles * 1e6 + conv.packets.client + conv.packets.server;
}

function selectConversations(result: AnalysisResult, options: TextOptions): ConversationSummary[] {
  const flagged = new Set(result.findings.flatMap((f) => f.conversations));
  switch (options.flows) {
    case 'none':
      return [];
    case 'all':
      return result.conversations;
    case 'flagged':
      return result.conversations.filter((c) => flagged.has(c.id));
    case 'interesting':
      return [...result.conversations]
        .sort((a, b) => attention(b, flagged) - attention(a, flagged) || a.id - b.id)
        .slice(0, options.limit)
        .sort((a, b) => a.id - b.id);
  }
}

function conversationsHeading(result: AnalysisResult, shown: number, flows: FlowSelection): string {
  const total = result.summary.conversations;
  if (flows === 'interesting' && shown < total) return `CONVERSATIONS (${formatCount(total)} in all, the ${shown} most interesting; --flows all lists every one)`;
  if (flows === 'flagged') return `CONVERSATIONS WITH FINDINGS (${shown} of ${formatCount(total)})`;
  return `CONVERSATIONS (${formatCount(total)})`;
}

/**
 * Rows per cli-table3 table. It spreads all rows into one call (a stack overflow somewhere past 100,000;
 * seen with `--flows all` on a flood of 250,000) and slows down with size, so a long listing is drawn in pieces of this
 * many rows with the same column widths, the borders between pieces left out: one table to the eye.
 */
const TABLE_PIECE = 2000;

const ANSI = /\x1b\[[0-9;]*m/g;

function drawTable(head: string[], rows: string[][]): string {
  if (rows.length <= TABLE_PIECE) {
    const table = new Table({ head, style: TABLE_STYLE, chars: COMPACT });
    for (const row of rows) table.push(row);
    return table.toString();
  }
  // Content plus one space of padding each side, as cli-table3 sizes columns itself.
  const widths = head.map((h) => h.replace(ANSI, '').length + 2);
  for (const row of rows) {
    row.forEach((cell, i) => {
      const width = cell.replace(ANSI, '').length + 2;
      if (width > widths[i]!) widths[i] = width;
    });
  }
  const pieces: string[] = [];
  for (let at = 0; at < rows.length; at += TABLE_PIECE) {
    const table = new Table({ head: at === 0 ? head : [], colWidths: widths, style: TABLE_STYLE, chars: COMPACT });
    for (const row of rows.slice(at, at + TABLE_PIECE)) table.push(row);
    const lines = table.toString().split('\n');
    if (at > 0) lines.shift();
    if (at + TABLE_PIECE < rows.length) lines.pop();
    pieces.push(lines.join('\n'));
  }
  return pieces.join('\n');
}

function renderConversations(conversations: readonly ConversationSummary[], chalk: ChalkInstance): string {
  const head = ['#', 'client', 'server', 'packets c→s/s→c', 'bytes c→s/s→c', 'duration', 'RTT', 'retrans c/s', 'end'].map((h) => chalk.bold(h));
  const rows: string[][] = [];
  for (const conv of conversations) {
    const retrans = conv.retransmissions.client + conv.retransmissions.server;
    const end = conv.close.by ? `${conv.close.kind} (${conv.close.by})` : conv.close.kind;
    rows.push([
      String(conv.id) + (conv.midstream ? '*' : ''),
      hostPort(conv.client),
      hostPort(conv.server),
      `${formatCount(conv.packets.client)}/${formatCount(conv.packets.server)}`,
      `${formatBytes(conv.bytes.client)}/${formatBytes(conv.bytes.server)}`,
      formatDuration(conv.end - conv.start),
      conv.handshakeRttMs === null ? '-' : `${conv.handshakeRttMs.toFixed(2)} ms`,
      retrans > 0 ? chalk.yellow(`${conv.retransmissions.client}/${conv.retransmissions.server}`) : '0/0',
      conv.close.kind.startsWith('rst') ? chalk.red(end) : end,
    ]);
  }
  return drawTable(head, rows) + (conversations.some((c) => c.midstream) ? '\n* started before the capture: client guessed from ports' : '');
}

function renderFlags(result: AnalysisResult, chalk: ChalkInstance): string {
  const { client, server } = result.summary.flagsByDirection;
  const clientTotal = Object.values(client).reduce((a, b) => a + b, 0);
  const serverTotal = Object.values(server).reduce((a, b) => a + b, 0);
  const table = new Table({
    head: ['flags', 'client→server', 'share', 'server→client', 'share'].map((h) => chalk.bold(h)),
    style: TABLE_STYLE,
    chars: COMPACT,
  });
  const share = (n: number, total: number) => (total > 0 ? `${((100 * n) / total).toFixed(1)}%` : '-');
  for (const flags of Object.keys(result.summary.flags)) {
    const c = client[flags] ?? 0;
    const s = server[flags] ?? 0;
    table.push([flags, formatCount(c), share(c, clientTotal), formatCount(s), share(s, serverTotal)]);
  }
  return table.toString();
}

export function summaryLine(result: AnalysisResult, chalk: ChalkInstance): string {
  const count = (s: Severity) => result.findings.filter((f) => f.severity === s).length;
  const captures = result.inputs.length;
  return chalk.bold(
    `Summary: ${plural(captures, 'capture')}, ${plural(result.summary.conversations, 'conversation')}, ` +
      `${count('critical')} critical, ${count('warning')} warning, ${count('info')} info`,
  );
}
