import type { ChalkInstance } from 'chalk';
import type { AnalysisSession } from '../core/session.js';
import { formatAddress } from '../decode/address.js';
import { linkTypeName } from '../decode/link-types.js';
import { type Finding, type Severity, SEVERITIES, severityRank } from '../detect/finding.js';
import { type Conversation, Side } from '../flow/conversation.js';
import { formatBytes, formatCount, formatTime, hostPort } from '../report/format.js';
import type { LiveListener, LiveStart, LiveStats } from './capture.js';

/**
 * Standard output that may be closed under us (`connscope live | head`): the first write error
 * (EPIPE) marks it closed, tells the capture to stop, and later writes are dropped.
 */
export class SafeOutput {
  closed = false;
  private readonly closeListeners: Array<() => void> = [];

  constructor(readonly stream: NodeJS.WriteStream) {
    stream.on('error', () => {
      if (this.closed) return;
      this.closed = true;
      for (const listener of this.closeListeners) listener();
    });
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  write(text: string): void {
    if (!this.closed) this.stream.write(text);
  }
}

/** A live display: the capture's events plus the end of live output (before the final report). */
export interface LiveView extends LiveListener {
  close(): void;
}

/**
 * Findings grow while they happen (a storm gains a retransmission each backoff): the first report
 * is shown at once, later versions at most once per tick, the latest one only.
 */
class UpdateQueue {
  private readonly pending = new Map<string, Finding>();
  /** What was last shown of each finding: a re-report with nothing new is not an update. */
  private readonly shown = new Map<string, string>();

  /** A new finding, shown now. */
  shownNew(finding: Finding): void {
    this.pending.delete(finding.id);
    this.shown.set(finding.id, JSON.stringify(finding));
  }

  add(finding: Finding): void {
    this.pending.set(finding.id, finding);
  }

  drain(): Finding[] {
    const out: Finding[] = [];
    for (const finding of this.pending.values()) {
      const text = JSON.stringify(finding);
      if (this.shown.get(finding.id) === text) continue;
      this.shown.set(finding.id, text);
      out.push(finding);
    }
    this.pending.clear();
    return out;
  }
}

/** The finding's title, with its endpoints in front when the title does not name them. */
function headline(finding: Finding): string {
  const { client, server } = finding;
  if (client === null || server === null) return finding.title;
  if (finding.title.includes(client.ip) && finding.title.includes(server.ip)) return finding.title;
  return `${hostPort(client)} -> ${hostPort(server)}: ${finding.title}`;
}

const SEVERITY_STYLE: Record<Severity, (chalk: ChalkInstance, text: string) => string> = {
  critical: (chalk, text) => chalk.bold.red(text),
  warning: (chalk, text) => chalk.yellow(text),
  info: (chalk, text) => chalk.cyan(text),
};

/** Standard output is not a terminal, text: one line per finding as it fires, updates marked. */
export class LineView implements LiveView {
  private readonly updates = new UpdateQueue();

  constructor(
    private readonly out: SafeOutput,
    private readonly chalk: ChalkInstance,
  ) {}

  started(): void {}

  finding(finding: Finding, isUpdate: boolean): void {
    if (isUpdate) this.updates.add(finding);
    else {
      this.updates.shownNew(finding);
      this.print(finding, false);
    }
  }

  tick(): void {
    for (const finding of this.updates.drain()) this.print(finding, true);
  }

  warning(): void {}

  close(): void {
    this.tick();
  }

  private print(finding: Finding, isUpdate: boolean): void {
    const { chalk } = this;
    const label = SEVERITY_STYLE[finding.severity](chalk, finding.severity.toUpperCase());
    const when = formatTime(isUpdate ? finding.end : finding.start);
    const what = isUpdate ? 'updated' : 'new';
    this.out.write(`${when} ${label} ${what} ${chalk.bold(finding.detector)}: ${headline(finding)} [${finding.id}]\n`);
  }
}

/** --json: NDJSON events, then (written by the command) the final report as the last line. */
export class JsonView implements LiveView {
  private readonly updates = new UpdateQueue();

  constructor(private readonly out: SafeOutput) {}

  started(info: LiveStart): void {
    this.emit({ type: 'start', time: Date.now() / 1000, ...info });
  }

  finding(finding: Finding, isUpdate: boolean): void {
    if (isUpdate) this.updates.add(finding);
    else {
      this.updates.shownNew(finding);
      this.emit({ type: 'finding', update: false, ...finding });
    }
  }

  tick(stats: LiveStats): void {
    this.flushUpdates();
    this.emit({ type: 'stats', ...stats });
  }

  warning(message: string): void {
    this.emit({ type: 'warning', message });
  }

  close(): void {
    this.flushUpdates();
  }

  private flushUpdates(): void {
    for (const finding of this.updates.drain()) this.emit({ type: 'finding', update: true, ...finding });
  }

  private emit(event: Record<string, unknown>): void {
    this.out.write(`${JSON.stringify(event)}\n`);
  }
}

interface ShownFinding {
  finding: Finding;
  updates: number;
}

interface TroubleRow {
  conv: Conversation;
  score: number;
}

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';

/**
 * A terminal: a screen redrawn about once a second in the alternate screen buffer. Each frame is
 * one write that homes the cursor and overwrites line by line (erasing each line's rest), so there
 * is no blank-then-draw flicker. The terminal is restored on close, and on any exit.
 */
export class ScreenView implements LiveView {
  private readonly findings = new Map<string, ShownFinding>();
  private readonly warnings: string[] = [];
  private info: LiveStart | null = null;
  private stats: LiveStats | null = null;
  private session: AnalysisSession | null = null;
  private active = false;
  private lastDraw = 0;
  private readonly restore = (): void => {
    if (!this.active) return;
    this.active = false;
    try {
      this.out.stream.write(LEAVE);
    } catch {
      // The terminal is gone.
    }
  };
  private readonly redraw = (): void => this.draw();

  constructor(
    private readonly out: SafeOutput,
    private readonly chalk: ChalkInstance,
  ) {}

  started(info: LiveStart): void {
    this.info = info;
    this.active = true;
    process.once('exit', this.restore);
    this.out.stream.on('resize', this.redraw);
    this.out.write(ENTER);
    this.draw();
  }

  finding(finding: Finding, isUpdate: boolean): void {
    const shown = this.findings.get(finding.id);
    this.findings.set(finding.id, { finding, updates: (shown?.updates ?? 0) + (isUpdate ? 1 : 0) });
    // New findings show at once, but a burst of them redraws at most four times a second.
    if (!isUpdate && Date.now() - this.lastDraw > 250) this.draw();
  }

  tick(stats: LiveStats, session: AnalysisSession): void {
    this.stats = stats;
    this.session = session;
    this.draw();
  }

  warning(message: string): void {
    this.warnings.push(message);
  }

  close(): void {
    this.out.stream.off('resize', this.redraw);
    process.off('exit', this.restore);
    this.restore();
    for (const warning of this.warnings) process.stderr.write(`connscope: warning: ${warning}\n`);
  }

  private draw(): void {
    if (!this.active || this.out.closed || this.info === null) return;
    this.lastDraw = Date.now();
    const width = Math.max(40, (this.out.stream.columns ?? 100) - 1);
    const height = Math.max(12, this.out.stream.rows ?? 30);
    const lines = this.frame(width, height).slice(0, height);
    const text = lines.map((line) => line + '\x1b[K').join('\n');
    this.out.write(`\x1b[H${text}\x1b[J`);
  }

  /** The frame's lines, each already cut to the width (colour is applied after cutting). */
  private frame(width: number, height: number): string[] {
    const { chalk } = this;
    const info = this.info as LiveStart;
    const cut = (text: string): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text);
    const lines: string[] = [];
    const link = info.linkType !== null ? `, ${linkTypeName(info.linkType)}` : '';
    const head = `connscope live — ${info.iface} (${info.backend}${link})` +
      (info.filter !== '' ? `  filter: ${info.filter}` : '') + (info.writePath !== null ? `  writing ${info.writePath}` : '');
    lines.push(chalk.bold(cut(head)));
    const s = this.stats;
    if (s === null) lines.push('starting…', '');
    else {
      lines.push(cut(`${clock(s.elapsedSeconds)}   ${formatCount(Math.round(s.packetsPerSecond))} packets/s, ${formatBytes(Math.round(s.bytesPerSecond))}/s   ` +
        `packets ${formatCount(s.packets)} (TCP ${formatCount(s.tcpPackets)}), ${formatBytes(s.bytes)}   conversations open ${formatCount(s.conversationsOpen)}`));
      const loss: string[] = [`not captured: ${formatCount(s.segmentsNotCaptured)} TCP segments`];
      if (s.kernelDrops !== null) loss.push(`kernel drops: ${formatCount(s.kernelDrops)}`);
      else if (info.backend === 'cap') loss.push('kernel drops: not counted by cap');
      if (s.queueDrops !== null) loss.push(`behind by ${formatBytes(s.queuedBytes ?? 0)}, dropped ${formatCount(s.queueDrops)}`);
      const lossy = s.segmentsNotCaptured > 0 || (s.kernelDrops ?? 0) > 0 || (s.queueDrops ?? 0) > 0;
      const text = cut(loss.join('   '));
      lines.push(lossy ? chalk.yellow(text) : chalk.dim(text));
    }

    const shown = [...this.findings.values()].sort((a, b) =>
      severityRank(a.finding.severity) - severityRank(b.finding.severity) || b.finding.end - a.finding.end);
    const counts = SEVERITIES.map((sev) => `${shown.filter((f) => f.finding.severity === sev).length} ${sev}`).join(', ');
    const troubleRows = this.trouble();
    const footer = 1;
    const findingRows = Math.max(1, shown.length);
    const convRows = Math.max(1, Math.min(troubleRows.length, 10, height - lines.length - 5 - Math.min(findingRows, 3) - footer));

    lines.push('', chalk.bold(cut('TOP CONVERSATIONS BY TROUBLE')));
    if (troubleRows.length === 0) lines.push(chalk.dim(cut('  none: no retransmissions, resets, zero windows or findings so far')));
    else {
      const tuples = troubleRows.slice(0, convRows).map((r) => convTuple(r.conv));
      const tw = Math.max(16, ...tuples.map((t) => t.length));
      lines.push(chalk.dim(cut(`  ${'#'.padStart(6)}  ${'client -> server'.padEnd(tw)}  ${'pkts'.padStart(7)} ${'retr'.padStart(5)} ${'dupack'.padStart(6)} ${'zwin'.padStart(5)} ${'rst'.padStart(3)} ${'idle'.padStart(7)}  state`)));
      const now = s?.time ?? Date.now() / 1000;
      troubleRows.slice(0, convRows).forEach((row, i) => {
        const c = row.conv;
        const retr = c.client.retransmissions + c.server.retransmissions;
        const text = `  ${String(c.id).padStart(6)}  ${tuples[i].padEnd(tw)}  ${formatCount(c.client.packets + c.server.packets).padStart(7)} ` +
          `${String(retr).padStart(5)} ${String(c.client.dupAcks + c.server.dupAcks).padStart(6)} ` +
          `${String(c.client.zeroWindows + c.server.zeroWindows).padStart(5)} ${String(c.client.rsts + c.server.rsts).padStart(3)} ` +
          `${idle(now - c.end).padStart(7)}  ${convState(c)}`;
        lines.push(row.score >= 1e6 ? chalk.red(cut(text)) : cut(text));
      });
    }

    lines.push('', chalk.bold(cut(`FINDINGS (${counts})`)));
    const room = Math.max(1, height - lines.length - footer);
    if (shown.length === 0) lines.push(chalk.dim(cut('  none yet')));
    for (const { finding, updates } of shown.slice(0, shown.length > room ? room - 1 : room)) {
      const sev = finding.severity.toUpperCase().padEnd(8);
      const more = updates > 0 ? ` (updated ${updates}×)` : '';
      const text = `  ${formatTime(finding.start).slice(11, 19)} ${sev} ${finding.detector}  ${headline(finding)}${more}`;
      lines.push(SEVERITY_STYLE[finding.severity](chalk, cut(text)));
    }
    if (shown.length > room) lines.push(chalk.dim(cut(`  … ${shown.length - room + 1} more in the final report`)));
    while (lines.length < height - footer) lines.push('');
    lines.push(chalk.dim(cut('Ctrl-C: stop and print the full report')));
    return lines;
  }

  /** Live conversations worth a look, most troubled first (findings, then retransmissions, ...). */
  private trouble(): TroubleRow[] {
    if (this.session === null) return [];
    const flagged = new Map<number, number>();
    for (const { finding } of this.findings.values()) {
      for (const id of finding.conversations) flagged.set(id, (flagged.get(id) ?? 0) + 1);
    }
    const rows: TroubleRow[] = [];
    let floor = 0;
    this.session.forEachLiveConversation((conv) => {
      const c = conv.client;
      const v = conv.server;
      const score = (flagged.get(conv.id) ?? 0) * 1e6 + (c.retransmissions + v.retransmissions) * 100 +
        (c.zeroWindows + v.zeroWindows) * 100 + (c.rsts + v.rsts) * 50 + c.dupAcks + v.dupAcks;
      if (score <= floor) return;
      rows.push({ conv, score });
      if (rows.length > 64) {
        rows.sort((a, b) => b.score - a.score);
        rows.length = 32;
        floor = rows[31].score;
      }
    });
    return rows.sort((a, b) => b.score - a.score || a.conv.id - b.conv.id);
  }
}

function convTuple(conv: Conversation): string {
  const ep = (side: Side.Client | Side.Server) => {
    const e = conv.endpoint(side);
    return hostPort({ ip: formatAddress(e.addr, conv.ipVersion), port: e.port });
  };
  return `${ep(Side.Client)} -> ${ep(Side.Server)}`;
}

function convState(conv: Conversation): string {
  if (conv.resetBy !== Side.None) return conv.resetBy === Side.Client ? 'reset by client' : 'reset by server';
  if (conv.closed) return 'closed';
  if (conv.established) return 'established';
  if (conv.synTime >= 0) return 'handshake';
  return 'open';
}

function idle(seconds: number): string {
  if (seconds < 1) return '0s';
  if (seconds < 120) return `${Math.floor(seconds)}s`;
  return `${Math.floor(seconds / 60)}m`;
}

function clock(seconds: number): string {
  const s = Math.floor(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}
