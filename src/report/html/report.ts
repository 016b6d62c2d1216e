import type { AnalysisResult, InputReport } from '../../core/session.js';
import type { SequenceRecording, TimelineData } from '../../core/timeline.js';
import { linkTypeName } from '../../decode/link-types.js';
import { DETECTORS } from '../../detect/registry.js';
import { type Finding, type Severity, SEVERITIES } from '../../detect/finding.js';
import { plural } from '../../english.js';
import type { ConversationSummary } from '../../flow/summary.js';
import { TOOL } from '../../version.js';
import { formatBytes, formatCount, formatDuration, formatTime, hostPort } from '../format.js';
import { formatEvidence } from '../text.js';
import { inputSourceLabel } from '../input-label.js';
import { STYLE, SCRIPT } from './assets.js';
import { renderLadderTable } from './ladder.js';
import { renderSequenceGraph } from './sequence-graph.js';
import { esc } from './svg.js';
import { renderTimeline } from './timeline-chart.js';

/**
 * The HTML report: one self-contained file (inline CSS, SVG and a few lines of script for sorting),
 * viewable offline. It shows what the analysis found and the data core collected for it: the
 * findings as the text report words them, the capture's timeline, the time-sequence graph and
 * ladder of the conversations the findings name, and the conversations table. It decides nothing.
 */

export interface HtmlOptions {
  /** When the report was made (shown in the header); omitted when absent. */
  generatedAt?: Date;
  /** Conversations drawn (graph and ladder) per finding, in the finding's order. */
  graphsPerFinding?: number;
  /** Conversations drawn in all. */
  maxGraphs?: number;
  /** Rows in the conversations table (flagged conversations first). */
  maxTableRows?: number;
}

const DEFAULTS = { graphsPerFinding: 3, maxGraphs: 20, maxTableRows: 1000 };
/** Ids of a finding looked at when choosing the ones to draw (a pattern can name thousands). */
const CANDIDATES_PER_FINDING = 200;

export function renderHtml(result: AnalysisResult, data: TimelineData, options: HtmlOptions = {}): string {
  const opts = { ...DEFAULTS, ...options };
  const byId = new Map(result.conversations.map((c) => [c.id, c]));
  const accepted = new Set(result.baseline?.suppressed ?? []);
  const drawn = chooseDrawn(result.findings, data, opts.graphsPerFinding, opts.maxGraphs);
  const drawnIds = new Set(drawn.map((r) => r.id));
  const title = `${TOOL.name} report — ${result.inputs.map((i) => i.path).join(', ')}`;
  const body = [
    header(result, opts.generatedAt),
    findingsSection(result.findings, accepted, byId, drawnIds, result),
    timelineSection(result, data),
    conversationsSection(result, drawn, byId, data),
    tableSection(result, opts.maxTableRows),
    `<footer>Made by ${esc(TOOL.name)} ${esc(TOOL.version)}. Graphs and ladders show the packets recorded for the report` +
      `${data.bounded ? ' (on this capture some conversations were recorded only in part, to keep the report small)' : ''}; ` +
      '<code>connscope flow &lt;capture&gt; &lt;client:port-server:port&gt;</code> lists every packet of a conversation.</footer>',
  ].join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${esc(`${TOOL.name} ${TOOL.version}`)}">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/** Conversations to draw: the first few of each finding that were recorded, most severe first. */
function chooseDrawn(findings: readonly Finding[], data: TimelineData, perFinding: number, max: number): SequenceRecording[] {
  const out: SequenceRecording[] = [];
  const seen = new Set<number>();
  for (const finding of findings) {
    let taken = 0;
    for (const id of finding.conversations.slice(0, CANDIDATES_PER_FINDING)) {
      if (out.length >= max || taken >= perFinding) break;
      if (seen.has(id)) {
        taken++;
        continue;
      }
      const rec = data.sequence(id);
      if (rec === null || rec.points.length === 0) continue;
      seen.add(id);
      out.push(rec);
      taken++;
    }
  }
  return out;
}

function inputLine(input: InputReport): string {
  if (input.error !== null) return `<li><code>${esc(input.path)}</code>: <span class="error">${esc(input.error)}</span></li>`;
  const links = input.linkTypes.length > 0 ? [...new Set(input.linkTypes)].map(linkTypeName).join(', ') : 'none';
  const span = input.start !== null && input.end !== null
    ? `, ${esc(formatTime(input.start))} → ${esc(formatTime(input.end))} UTC (${esc(formatDuration(input.end - input.start))})`
    : '';
  const warnings = input.warnings.map((w) => `<br><span class="warning">warning: ${esc(w)}</span>`).join('');
  return `<li><code>${esc(input.path)}</code>: ${esc(inputSourceLabel(input))}, link ${esc(links)}, ${esc(formatCount(input.packets))} packets ` +
    `(${esc(formatCount(input.tcpPackets))} TCP), ${esc(formatBytes(input.bytes))}${span}${warnings}</li>`;
}

function header(result: AnalysisResult, generatedAt: Date | undefined): string {
  const s = result.summary;
  const count = (sev: Severity) => result.findings.filter((f) => f.severity === sev).length;
  const tile = (value: string, label: string, cls = '') => `<div class="tile ${cls}" data-tile="${esc(label)}"><div class="v">${esc(value)}</div><div class="k">${esc(label)}</div></div>`;
  const duration = s.start !== null && s.end !== null ? formatDuration(s.end - s.start) : '-';
  return `<header>
<h1>${esc(TOOL.name)} report</h1>
<div class="muted">${plural(result.inputs.length, 'capture')}${generatedAt ? `, made ${esc(generatedAt.toISOString().replace('T', ' ').slice(0, 19))} UTC` : ''}</div>
<ul class="inputs">${result.inputs.map(inputLine).join('')}</ul>
<nav class="toc"><a href="#findings">Findings</a><a href="#timeline">Timeline</a><a href="#flagged">Flagged conversations</a><a href="#table">All conversations</a></nav>
<section class="tiles" id="summary">
${tile(String(count('critical')), 'critical', count('critical') > 0 ? 'crit' : '')}${tile(String(count('warning')), 'warning', count('warning') > 0 ? 'warn' : '')}${tile(String(count('info')), 'info', count('info') > 0 ? 'info' : '')}
${tile(formatCount(s.conversations), 'conversations')}${tile(formatCount(s.tcpPackets), 'TCP packets')}${tile(formatBytes(s.bytes), 'captured')}${tile(duration, 'duration')}
${tile(formatCount(s.retransmissions), 'retransmissions')}${tile(formatCount(s.resets), 'RST segments')}
</section>
</header>`;
}

function convLink(id: number, drawn: ReadonlySet<number>): string {
  return `<a href="#${drawn.has(id) ? 'conv' : 'row'}-${id}">#${id}</a>`;
}

function findingsSection(
  findings: readonly Finding[],
  accepted: ReadonlySet<string>,
  byId: ReadonlyMap<number, ConversationSummary>,
  drawn: ReadonlySet<number>,
  result: AnalysisResult,
): string {
  const counts = SEVERITIES.map((s) => `${findings.filter((f) => f.severity === s).length} ${s}`).join(', ');
  const out = [`<section id="findings"><h2>Findings <span class="muted">(${esc(counts)})</span></h2>`];
  if (findings.length === 0) out.push('<p class="none">None: no detector found anything wrong in this capture.</p>');
  const specs = new Map(DETECTORS.map((d) => [d.id, d]));
  findings.forEach((f, index) => {
    const spec = specs.get(f.detector);
    const convs = f.conversations.slice(0, 12).map((id) => convLink(id, drawn)).join(' ') +
      (f.conversations.length > 12 ? ` … (${f.conversations.length} in all)` : '');
    const endpoints = f.client !== null || f.server !== null
      ? `<dt>endpoints</dt><dd class="mono">${f.client ? esc(hostPort(f.client)) : '*'} → ${f.server ? esc(hostPort(f.server)) : '*'}</dd>` : '';
    const first = f.conversations.map((id) => byId.get(id)).find((c) => c !== undefined);
    out.push(`<article class="finding sev-${f.severity}" id="finding-${index + 1}" data-detector="${esc(f.detector)}" data-severity="${f.severity}" data-finding-id="${esc(f.id)}">
<header><span class="badge sev-${f.severity}">${esc(f.severity)}</span><span class="detector"${spec ? ` title="${esc(spec.summary)}"` : ''}>${esc(f.detector)}</span><span class="title">${esc(f.title)}</span>${accepted.has(f.id) ? '<span class="badge accepted">accepted in baseline</span>' : ''}</header>
<dl>
${f.conversations.length > 0 ? `<dt>conversation${f.conversations.length > 1 ? 's' : ''}</dt><dd>${convs}</dd>` : ''}
${endpoints}
<dt>when</dt><dd>${esc(formatTime(f.start))} → ${esc(formatTime(f.end))} UTC${first && result.inputs.length > 1 ? ` <span class="muted">(${esc(result.inputs[first.input]?.path ?? '')})</span>` : ''}</dd>
<dt>evidence</dt><dd class="evidence">${esc(formatEvidence(f.evidence))}</dd>
<dt>why</dt><dd class="why">${esc(f.explanation)}</dd>
${f.advice.length > 0 ? `<dt>what to change</dt><dd><ul class="advice">${f.advice.map((a) => `<li>${esc(a)}</li>`).join('')}</ul></dd>` : ''}
</dl>
</article>`);
  });
  if (result.baseline !== undefined) {
    const b = result.baseline;
    out.push(`<p class="muted">Baseline <code>${esc(b.path)}</code>: ${b.suppressed.length} finding(s) accepted, ${b.stale.length} stale entr${b.stale.length === 1 ? 'y' : 'ies'}.</p>`);
    if (b.stale.length > 0) {
      out.push(`<ul class="stale">${b.stale.map((e) => `<li class="warning">stale: ${esc(e.detector)} client=${esc(e.client ?? '*')} server=${esc(e.server ?? '*')}${e.title ? ` (${esc(e.title)})` : ''}</li>`).join('')}</ul>`);
    }
  }
  out.push('</section>');
  return out.join('\n');
}

function timelineSection(result: AnalysisResult, data: TimelineData): string {
  const out = ['<section id="timeline"><h2>Timeline</h2>'];
  for (const timeline of data.timelines) {
    if (timeline.open.length === 0) continue;
    const paths = timeline.inputs.map((i) => result.inputs[i]?.path).filter((p) => p !== undefined);
    out.push(renderTimeline(timeline, `Conversations open, new connections and trouble per second: ${paths.join(', ')}`));
  }
  if (out.length === 1) out.push('<p class="none">No TCP packets.</p>');
  out.push('</section>');
  return out.join('\n');
}

function flowCommand(result: AnalysisResult, conv: ConversationSummary | undefined, id: number): string {
  if (conv === undefined) return `connscope flow <capture> ${id}`;
  const path = result.inputs[conv.input]?.path ?? '<capture>';
  return `connscope flow ${path} ${hostPort(conv.client)}-${hostPort(conv.server)}`;
}

function conversationsSection(
  result: AnalysisResult,
  drawn: readonly SequenceRecording[],
  byId: ReadonlyMap<number, ConversationSummary>,
  data: TimelineData,
): string {
  const out = ['<section id="flagged"><h2>Flagged conversations</h2>'];
  const flagged = new Set(result.findings.flatMap((f) => f.conversations));
  if (flagged.size === 0) out.push('<p class="none">No finding names a conversation.</p>');
  else if (drawn.length === 0) out.push('<p class="none">No packets of the flagged conversations were recorded for this report.</p>');
  else if (drawn.length < flagged.size) {
    out.push(`<p class="muted">${drawn.length} of the ${formatCount(flagged.size)} conversations the findings name are drawn (the first of each finding).</p>`);
  }
  for (const rec of drawn) {
    const conv = byId.get(rec.id);
    const findings = result.findings.filter((f) => f.conversations.includes(rec.id));
    const clientLabel = conv ? hostPort(conv.client) : 'client';
    const serverLabel = conv ? hostPort(conv.server) : 'server';
    const meta = conv
      ? `${esc(formatTime(conv.start))} UTC, ${esc(formatCount(conv.packets.client + conv.packets.server))} packets ` +
        `(${esc(formatCount(conv.packets.client))} c→s, ${esc(formatCount(conv.packets.server))} s→c), ${esc(formatDuration(conv.end - conv.start))}, ` +
        `handshake RTT ${conv.handshakeRttMs === null ? '-' : `${conv.handshakeRttMs.toFixed(2)} ms`}, ended ${esc(conv.close.kind)}${conv.close.by ? ` by the ${esc(conv.close.by)}` : ''}` +
        `${conv.midstream ? ', started before the capture (client guessed from ports)' : ''}`
      : `${formatCount(rec.packets)} packets`;
    const partial = rec.points.length < rec.packets ? ` <span class="warning">${formatCount(rec.points.length)} of ${formatCount(rec.packets)} packets drawn${samplingNote(rec)}.</span>` : '';
    const command = flowCommand(result, conv, rec.id);
    const ladder = renderLadderTable(rec, command);
    out.push(`<article class="conversation" id="conv-${rec.id}" data-conversation="${rec.id}">
<h3>#${rec.id} <span class="mono">${esc(clientLabel)}</span> (client) → <span class="mono">${esc(serverLabel)}</span> (server)</h3>
<div class="meta">${meta}.${partial}</div>
<div class="named">${findings.map((f) => `<a href="#finding-${result.findings.indexOf(f) + 1}"><span class="badge sev-${f.severity}">${esc(f.severity)}</span> <span class="detector">${esc(f.detector)}</span></a>`).join('')}</div>
${renderSequenceGraph(rec, { findings, clientLabel, serverLabel })}
<details${rec.points.length <= 80 ? ' open' : ''}><summary>Ladder: ${plural(rec.points.length, 'packet')} (<code>${esc(command)}</code>)</summary><div class="scroll">${ladder}</div></details>
</article>`);
  }
  const undrawn = [...flagged].filter((id) => !drawn.some((r) => r.id === id) && data.sequence(id) === null).length;
  if (undrawn > 0 && data.bounded) out.push(`<p class="muted">${formatCount(undrawn)} flagged conversation(s) have no recorded packets (report size limits on a large capture).</p>`);
  out.push('</section>');
  return out.join('\n');
}

/** How a recording was thinned, in words. */
function samplingNote(rec: SequenceRecording): string {
  const { plain, trouble, marks } = rec.sampling;
  if (plain === 1 && trouble === 1 && marks === 1) return ' (the others were not recorded: report size limits)';
  const parts = [`about 1 in ${plain} plain segments and ACKs`];
  parts.push(trouble > 1 ? `1 in ${trouble} retransmissions, probes and duplicate ACKs` : 'every retransmission, probe and duplicate ACK');
  parts.push(marks > 1 ? `1 in ${marks} SYNs, FINs, RSTs and window changes` : 'every SYN, FIN, RST and window change');
  return `, to keep the report small: ${parts.join(', ')} after the first packets`;
}

/** Order for choosing table rows when there are too many: flagged, then troubled, then busy. Not a diagnosis. */
function rowPriority(conv: ConversationSummary, flagged: ReadonlySet<number>): number {
  const troubles = conv.retransmissions.client + conv.retransmissions.server + conv.resets.client + conv.resets.server +
    conv.zeroWindows.client + conv.zeroWindows.server;
  return (flagged.has(conv.id) ? 1e12 : 0) + Math.min(troubles, 1e5) * 1e6 + Math.min(conv.packets.client + conv.packets.server, 999_999);
}

function tableSection(result: AnalysisResult, maxRows: number): string {
  const flagged = new Map<number, string[]>();
  for (const f of result.findings) {
    for (const id of f.conversations) {
      const list = flagged.get(id) ?? [];
      if (!list.includes(f.detector)) list.push(f.detector);
      flagged.set(id, list);
    }
  }
  const flaggedIds = new Set(flagged.keys());
  let rows = result.conversations;
  if (rows.length > maxRows) {
    rows = [...rows].sort((a, b) => rowPriority(b, flaggedIds) - rowPriority(a, flaggedIds) || a.id - b.id).slice(0, maxRows).sort((a, b) => a.id - b.id);
  }
  const total = result.summary.conversations;
  const heads: [string, string, 'num' | 'text', string][] = [
    ['id', '#', 'num', 'conversation id'], ['client', 'client', 'text', ''], ['server', 'server', 'text', ''],
    ['findings', 'findings', 'text', 'detectors whose findings name it'],
    ['packets-client', 'pkts c→s', 'num', 'packets client to server'], ['packets-server', 'pkts s→c', 'num', 'packets server to client'],
    ['bytes-client', 'bytes c→s', 'num', 'bytes on the wire, client to server'], ['bytes-server', 'bytes s→c', 'num', 'bytes on the wire, server to client'],
    ['duration', 'duration', 'num', ''], ['rtt', 'RTT', 'num', 'handshake RTT at the capture point'],
    ['retransmissions', 'retrans', 'num', 'retransmissions client/server'], ['resets', 'RST', 'num', 'RST segments client/server'],
    ['zero-windows', 'zero win', 'num', 'zero-window advertisements client/server'], ['end', 'end', 'text', 'how the conversation ended'],
  ];
  const th = heads.map(([key, label, type, tip]) => `<th data-key="${key}" data-type="${type}"${type === 'num' ? ' class="n"' : ''}${tip ? ` title="${esc(tip)}"` : ''}><button type="button">${esc(label)}</button></th>`).join('');
  const body = rows.map((c) => {
    const retrans = c.retransmissions.client + c.retransmissions.server;
    const resets = c.resets.client + c.resets.server;
    const zero = c.zeroWindows.client + c.zeroWindows.server;
    const detectors = flagged.get(c.id) ?? [];
    const end = c.close.by ? `${c.close.kind} (${c.close.by})` : c.close.kind;
    const pair = (n: number, a: number, b: number) => `<td class="n${n > 0 ? ' bad' : ''}" data-v="${n}">${a}/${b}</td>`;
    return `<tr id="row-${c.id}" data-id="${c.id}"${detectors.length > 0 ? ' class="flagged"' : ''}>` +
      `<td class="n" data-v="${c.id}">${c.id}${c.midstream ? '*' : ''}</td><td class="mono">${esc(hostPort(c.client))}</td><td class="mono">${esc(hostPort(c.server))}</td>` +
      `<td class="findings">${detectors.map((d) => `<span class="detector">${esc(d)}</span>`).join(' ')}</td>` +
      `<td class="n" data-v="${c.packets.client}">${esc(formatCount(c.packets.client))}</td><td class="n" data-v="${c.packets.server}">${esc(formatCount(c.packets.server))}</td>` +
      `<td class="n" data-v="${c.bytes.client}">${esc(formatBytes(c.bytes.client))}</td><td class="n" data-v="${c.bytes.server}">${esc(formatBytes(c.bytes.server))}</td>` +
      `<td class="n" data-v="${c.end - c.start}" title="${esc(formatTime(c.start))} → ${esc(formatTime(c.end))} UTC">${esc(formatDuration(c.end - c.start))}</td>` +
      `<td class="n" data-v="${c.handshakeRttMs ?? -1}">${c.handshakeRttMs === null ? '-' : `${c.handshakeRttMs.toFixed(2)} ms`}</td>` +
      pair(retrans, c.retransmissions.client, c.retransmissions.server) + pair(resets, c.resets.client, c.resets.server) + pair(zero, c.zeroWindows.client, c.zeroWindows.server) +
      `<td${c.close.kind.startsWith('rst') ? ' class="bad"' : ''}>${esc(end)}</td></tr>`;
  }).join('\n');
  const listed = result.conversations.length;
  const note = rows.length < total
    ? `<p class="muted">${formatCount(rows.length)} of ${formatCount(total)} conversations listed${rows.length < listed ? ' (flagged and most troubled first)' : ''}; <code>connscope analyze --json</code> lists ${listed < total ? `${formatCount(listed)}` : 'all'} of them.</p>`
    : '';
  return `<section id="table"><h2>All conversations <span class="muted">(${formatCount(total)})</span></h2>
${note}<div class="controls"><label><input type="checkbox" id="flagged-only"> only conversations named by a finding</label> · click a column header to sort · * started before the capture</div>
<div class="scroll"><table class="data sortable" id="conversations"><thead><tr>${th}</tr></thead><tbody>
${body}
</tbody></table></div></section>`;
}
