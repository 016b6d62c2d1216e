import type { SequencePoint, SequenceRecording } from '../../core/timeline.js';
import { tcpdumpFlags } from '../../flow/flags.js';
import { formatDuration } from '../format.js';
import { noteLabelTones } from '../ladder.js';
import { esc } from './svg.js';

/** Rows shown per ladder: the first and last halves of this many, with the count left out between. */
export const MAX_LADDER_ROWS = 400;
/** A silence this long before a packet gets its own line in the ladder. */
const IDLE_LINE_SECONDS = 1;

/**
 * The ladder of one conversation as an HTML table: the rows `connscope flow` prints (frame, time
 * since the first packet, direction, flags, relative seq/ack, length, window, the tracker's notes),
 * with lines for long silences and for packets that were not recorded.
 */
export function renderLadderTable(rec: SequenceRecording, command: string): string {
  const points = rec.points;
  if (points.length === 0) return '';
  const start = points[0].time;
  let shown: (SequencePoint | { skipped: number })[] = points;
  if (points.length > MAX_LADDER_ROWS) {
    const half = MAX_LADDER_ROWS / 2;
    shown = [...points.slice(0, half), { skipped: points.length - MAX_LADDER_ROWS }, ...points.slice(-half)];
  }
  const rows: string[] = [];
  let previousIndex = points[0].index - 1;
  if (points[0].index > 0) rows.push(gapRow(`${points[0].index} earlier packets not recorded`));
  for (const item of shown) {
    if ('skipped' in item) {
      rows.push(gapRow(`${item.skipped} recorded packets not shown here: \`${command}\` lists every packet`));
      previousIndex = -1;
      continue;
    }
    const p = item;
    if (previousIndex >= 0 && p.index > previousIndex + 1) rows.push(gapRow(`${p.index - previousIndex - 1} packets not recorded (report size limit)`));
    previousIndex = p.index;
    if (p.idleBefore >= IDLE_LINE_SECONDS) rows.push(`<tr class="idle"><td colspan="9">${esc(formatDuration(p.idleBefore))} of silence</td></tr>`);
    const notes = noteLabelTones(p.notes).map(({ label, tone }) => `<span class="note ${tone}">${esc(label)}</span>`).join(' ');
    rows.push(`<tr class="pkt ${p.fromClient ? 'c2s' : 's2c'}" data-frame="${p.frame}"><td>${p.frame}</td><td>+${(p.time - start).toFixed(6)}</td>` +
      `<td>${p.fromClient ? 'c → s' : 's → c'}</td><td>${esc(tcpdumpFlags(p.flags))}</td><td>${p.relSeq}</td><td>${p.relAck ?? '-'}</td>` +
      `<td>${p.payloadLength}</td><td>${p.window}</td><td>${notes}</td></tr>`);
  }
  if (rec.packets > points[points.length - 1].index + 1) rows.push(gapRow(`${rec.packets - points[points.length - 1].index - 1} later packets not recorded`));
  const relative = rec.fromIsn.client && rec.fromIsn.server ? 'relative to each side\'s ISN' : 'relative to the first sequence number seen (no handshake in the capture)';
  return `<table class="ladder" data-conversation="${rec.id}"><thead><tr><th>frame</th><th>time</th><th>dir</th><th>flags</th>` +
    `<th title="${esc(relative)}">seq</th><th title="${esc(relative)}">ack</th><th>len</th><th>win</th><th>notes</th></tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table>`;
}

function gapRow(text: string): string {
  return `<tr class="gap"><td colspan="9">… ${esc(text)} …</td></tr>`;
}
