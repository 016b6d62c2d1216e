import type { ChalkInstance } from 'chalk';
import type { LadderRow } from '../core/ladder.js';
import { tcpdumpFlags } from '../flow/flags.js';
import { Note } from '../flow/segment.js';
import type { ConversationSummary } from '../flow/summary.js';
import { formatTime, hostPort } from './format.js';

/** Names of the tracker's verdicts as the ladder prints them, Wireshark's wording where it has one. */
const NOTE_LABELS: ReadonlyArray<readonly [number, string, 'bad' | 'warn' | 'info']> = [
  [Note.SynRetransmission, 'SYN retransmission', 'bad'],
  [Note.Retransmission, 'retransmission', 'bad'],
  [Note.KeepAlive, 'keep-alive', 'info'],
  [Note.ZeroWindowProbe, 'zero-window probe', 'warn'],
  [Note.ZeroWindow, 'zero window', 'warn'],
  [Note.WindowReopened, 'window reopened', 'info'],
  [Note.DupAck, 'dup ack', 'warn'],
  [Note.PreviousNotCaptured, 'previous segment not captured', 'info'],
  [Note.OutOfOrder, 'out of order', 'warn'],
  [Note.AckedUnseen, 'ACKed unseen segment', 'info'],
  [Note.AckOfPreviousConversation, 'ACK of previous connection (TIME_WAIT?)', 'bad'],
  [Note.AfterReset, 'after reset', 'warn'],
];

function labelledNotes(notes: number) {
  // A SYN retransmission is also a retransmission: name it once.
  return NOTE_LABELS.filter(([bit]) => (notes & bit) !== 0 && !(bit === Note.Retransmission && (notes & Note.SynRetransmission) !== 0));
}

export function noteLabels(notes: number): string[] {
  return labelledNotes(notes).map(([, label]) => label);
}

/** The labels with their tone, for reports that colour them (the HTML ladder). */
export function noteLabelTones(notes: number): { label: string; tone: 'bad' | 'warn' | 'info' }[] {
  return labelledNotes(notes).map(([, label, tone]) => ({ label, tone }));
}

function styleNotes(notes: number, chalk: ChalkInstance): string {
  return labelledNotes(notes)
    .map(([, label, tone]) => (tone === 'bad' ? chalk.red(label) : tone === 'warn' ? chalk.yellow(label) : chalk.dim(label)))
    .join(', ');
}

/**
 * The ladder of one conversation, one line a packet: time since its first packet, direction,
 * flags, relative seq/ack, payload length, window and the tracker's annotations.
 */
export function renderLadder(summary: ConversationSummary | null, rows: readonly LadderRow[], truncated: boolean, chalk: ChalkInstance): string {
  const out: string[] = [];
  if (summary !== null) {
    out.push(chalk.bold(`conversation #${summary.id}: ${hostPort(summary.client)} (client) ⇄ ${hostPort(summary.server)} (server)`));
    out.push(chalk.dim(`  ${formatTime(summary.start)}, ${rows.length} packets, ended ${summary.close.kind}${summary.close.by ? ` by ${summary.close.by}` : ''}` +
      (summary.previousId !== null ? `, reuses the tuple of #${summary.previousId} (${summary.previousGapSeconds ?? '?'} s after it closed)` : '') +
      (summary.midstream ? ', started before the capture (client guessed from ports)' : '')));
  }
  const start = rows.length > 0 ? rows[0].time : 0;
  out.push(chalk.bold(`${'frame'.padStart(7)} ${'time'.padStart(11)}  dir ${'flags'.padEnd(7)} ${'seq'.padStart(10)} ${'ack'.padStart(10)} ${'len'.padStart(6)} ${'win'.padStart(8)}  notes`));
  for (const row of rows) {
    out.push([
      String(row.frame).padStart(7),
      `+${(row.time - start).toFixed(6)}`.padStart(11),
      ` ${row.fromClient ? 'c→s' : chalk.cyan('s→c')}`,
      tcpdumpFlags(row.flags).padEnd(7),
      String(row.relSeq).padStart(10),
      (row.relAck === null ? '-' : String(row.relAck)).padStart(10),
      String(row.payloadLength).padStart(6),
      String(row.window).padStart(8),
      ` ${styleNotes(row.notes, chalk)}`,
    ].join(' '));
  }
  if (truncated) out.push(chalk.yellow('… more packets not shown (ladder limit reached)'));
  return out.join('\n') + '\n';
}
