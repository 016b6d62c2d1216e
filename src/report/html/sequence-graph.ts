import type { SequencePoint, SequenceRecording } from '../../core/timeline.js';
import type { Finding } from '../../detect/finding.js';
import { Note } from '../../flow/segment.js';
import { esc, linear, num, type Scale, secondsLabel, shortNumber, stepPath, ticks, timeTicks } from './svg.js';

/**
 * The time-sequence graph of one conversation (W. R. Stevens' graph, as tcptrace and Wireshark's
 * "Stevens"/"tcptrace" views draw it): one panel per direction, sequence offset against time. The
 * sender's segments are vertical bars from seq to seq+len (retransmissions in red), its SYN, FIN and
 * RST, keep-alive and persist probes are marks; the receiver's cumulative ACK is a step line, the
 * ACK plus its advertised window another, its zero-window advertisements and duplicate ACKs marks.
 *
 * Every series is `<g class="series" data-series="<sender>-<kind>" data-points="N">` holding one
 * `<path>`: marks and bars have one `M` per point; step lines (ack, window) have one vertex (the
 * first `M`, then one `V`) per point.
 */

const SYN = 0x02;
const FIN = 0x01;
const RST = 0x04;

type Kind = 'data' | 'retrans' | 'probe' | 'syn' | 'fin' | 'rst' | 'ack' | 'window' | 'zero-window' | 'dup-ack';

interface SeriesStyle {
  label: string;
  /** Sent by the stream's sender (else by the receiver, about the sender's data). */
  bySender: boolean;
  shape: 'bar' | 'step' | 'mark';
}

export const SERIES_STYLES: Record<Kind, SeriesStyle> = {
  data: { label: 'data segment (seq → seq+len)', bySender: true, shape: 'bar' },
  retrans: { label: 'retransmission', bySender: true, shape: 'bar' },
  probe: { label: 'keep-alive / zero-window probe', bySender: true, shape: 'mark' },
  syn: { label: 'SYN', bySender: true, shape: 'mark' },
  fin: { label: 'FIN', bySender: true, shape: 'mark' },
  rst: { label: 'RST', bySender: true, shape: 'mark' },
  ack: { label: 'ACK from the peer', bySender: false, shape: 'step' },
  window: { label: 'ACK + advertised window', bySender: false, shape: 'step' },
  'zero-window': { label: 'zero window advertised', bySender: false, shape: 'mark' },
  'dup-ack': { label: 'duplicate ACK', bySender: false, shape: 'mark' },
};

const KIND_ORDER: Kind[] = ['window', 'ack', 'data', 'retrans', 'probe', 'syn', 'fin', 'rst', 'dup-ack', 'zero-window'];

/** Mark shapes drawn around (0, 0); each is one subpath after the caller's `M x y`. */
const MARKS: Partial<Record<Kind, string>> = {
  probe: 'm-3.5 0a3.5 3.5 0 1 0 7 0a3.5 3.5 0 1 0-7 0',
  syn: 'm-4 -4h8v8h-8z',
  fin: 'm0 -5l5 5l-5 5l-5 -5z',
  rst: 'm-5 -5l10 10m0 -10l-10 10',
  'zero-window': 'm-5 -8h10l-5 8z',
  'dup-ack': 'm-4 0h8m-4 -4v8',
};

interface Series {
  kind: Kind;
  xs: number[];
  /** Bars: y from (seq) and y to (seq+len); others: one y per point. */
  ys: number[];
  ys2: number[];
}

const WIDTH = 1100;
const HEIGHT = 250;
const MARGIN = { left: 64, right: 18, top: 22, bottom: 38 };
/** Bars shorter than this are drawn this tall, so a 1-byte segment in a 1 GB stream still shows. */
const MIN_BAR = 5;

function newSeries(kind: Kind): Series {
  return { kind, xs: [], ys: [], ys2: [] };
}

/** Sorts one direction's packets into the series of its panel. */
function seriesFor(points: readonly SequencePoint[], fromClient: boolean): Map<Kind, Series> {
  const series = new Map<Kind, Series>(KIND_ORDER.map((k) => [k, newSeries(k)]));
  const add = (kind: Kind, t: number, y: number, y2 = y) => {
    const s = series.get(kind) as Series;
    s.xs.push(t);
    s.ys.push(y);
    s.ys2.push(y2);
  };
  for (const p of points) {
    const syn = (p.flags & SYN) !== 0;
    const fin = (p.flags & FIN) !== 0;
    const rst = (p.flags & RST) !== 0;
    if (p.fromClient === fromClient) {
      const occupied = p.payloadLength + (syn ? 1 : 0) + (fin ? 1 : 0);
      if (rst) add('rst', p.time, p.relSeq);
      else if ((p.notes & Note.Retransmission) !== 0) add('retrans', p.time, p.relSeq, p.relSeq + Math.max(1, occupied));
      else if ((p.notes & (Note.KeepAlive | Note.ZeroWindowProbe)) !== 0) add('probe', p.time, p.relSeq);
      else {
        if (p.payloadLength > 0) add('data', p.time, p.relSeq + (syn ? 1 : 0), p.relSeq + (syn ? 1 : 0) + p.payloadLength);
        if (syn) add('syn', p.time, p.relSeq);
        if (fin) add('fin', p.time, p.relSeq + p.payloadLength);
      }
    } else if (!rst && p.relAck !== null) {
      add('ack', p.time, p.relAck);
      add('window', p.time, p.relAck + p.window);
      if ((p.notes & Note.ZeroWindow) !== 0) add('zero-window', p.time, p.relAck);
      if ((p.notes & Note.DupAck) !== 0) add('dup-ack', p.time, p.relAck);
    }
  }
  return series;
}

function yExtent(series: Map<Kind, Series>): [number, number] | null {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const s of series.values()) {
    // The window line may tower over the data; it is clipped. RSTs can carry any sequence number.
    if (s.kind === 'window' || s.kind === 'rst') continue;
    for (let i = 0; i < s.xs.length; i++) {
      lo = Math.min(lo, s.ys[i], s.ys2[i]);
      hi = Math.max(hi, s.ys[i], s.ys2[i]);
    }
  }
  const rst = series.get('rst') as Series;
  if (lo > hi && rst.xs.length === 0) return null;
  if (lo > hi) {
    lo = Math.min(...rst.ys);
    hi = Math.max(...rst.ys);
  }
  const pad = Math.max(1, (hi - lo) * 0.05);
  return [lo - pad, hi + pad];
}

function seriesPath(s: Series, x: Scale, y: Scale, endX: number): string {
  const style = SERIES_STYLES[s.kind];
  const [top, bottom] = [y.range[1], y.range[0]];
  const clampY = (v: number) => Math.min(bottom, Math.max(top, y(v)));
  if (style.shape === 'step') return stepPath(s.xs.map(x), s.ys.map(y), endX);
  const parts: string[] = [];
  for (let i = 0; i < s.xs.length; i++) {
    const px = num(x(s.xs[i]));
    if (style.shape === 'bar') {
      let y1 = y(s.ys[i]);
      let y2 = y(s.ys2[i]);
      if (y1 - y2 < MIN_BAR) {
        const mid = (y1 + y2) / 2;
        y1 = mid + MIN_BAR / 2;
        y2 = mid - MIN_BAR / 2;
      }
      parts.push(`M${px} ${num(y1)}V${num(y2)}`);
    } else parts.push(`M${px} ${num(clampY(s.ys[i]))}${MARKS[s.kind]}`);
  }
  return parts.join('');
}

export interface SequenceGraphOptions {
  /** Findings naming this conversation: their time spans are shaded on the graph. */
  findings: readonly Finding[];
  clientLabel: string;
  serverLabel: string;
}

/** Both panels of one conversation's graph, or '' when nothing was recorded. */
export function renderSequenceGraph(rec: SequenceRecording, options: SequenceGraphOptions): string {
  const points = rec.points;
  if (points.length === 0) return '';
  const t0 = points[0].time;
  let t1 = points[points.length - 1].time;
  for (const p of points) if (p.time > t1) t1 = p.time;
  const span = t1 - t0;
  const tPad = span > 0 ? span * 0.02 : 0.001;
  const x = linear(-tPad, span + tPad, MARGIN.left, WIDTH - MARGIN.right);
  const rel = points.map((p) => ({ ...p, time: p.time - t0 }));
  const panels: string[] = [];
  for (const fromClient of [true, false]) {
    const series = seriesFor(rel, fromClient);
    const extent = yExtent(series);
    if (extent === null) continue;
    const y = linear(extent[0], extent[1], HEIGHT - MARGIN.bottom, MARGIN.top);
    const sender = fromClient ? 'client' : 'server';
    const receiver = fromClient ? 'server' : 'client';
    const title = fromClient
      ? `client → server data (${options.clientLabel} → ${options.serverLabel}), ACKs from the server`
      : `server → client data (${options.serverLabel} → ${options.clientLabel}), ACKs from the client`;
    panels.push(renderPanel(rec.id, sender, receiver, title, series, x, y, t0, span, options.findings));
  }
  const kinds = new Set<Kind>();
  for (const fromClient of [true, false]) for (const s of seriesFor(rel, fromClient).values()) if (s.xs.length > 0) kinds.add(s.kind);
  return `<div class="seqgraph" data-conversation="${rec.id}">${panels.join('')}${legend(kinds)}</div>`;
}

function renderPanel(
  id: number,
  sender: string,
  receiver: string,
  title: string,
  series: Map<Kind, Series>,
  x: Scale,
  y: Scale,
  t0: number,
  span: number,
  findings: readonly Finding[],
): string {
  const clip = `clip-${id}-${sender}`;
  const [left, right] = x.range;
  const [bottom, top] = y.range;
  const out: string[] = [];
  out.push(`<svg class="chart seq-panel" data-direction="${sender}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${esc(title)}">`);
  out.push(`<defs><clipPath id="${clip}"><rect x="${num(left)}" y="${num(top)}" width="${num(right - left)}" height="${num(bottom - top)}"/></clipPath></defs>`);
  out.push(`<text class="panel-title" x="${num(left)}" y="14">${esc(title)}</text>`);
  // Findings' time spans behind everything.
  for (const f of findings) {
    const a = Math.max(x.domain[0], f.start - t0);
    const b = Math.min(x.domain[1], f.end - t0);
    if (!(b >= a)) continue;
    const xa = x(a);
    const w = Math.max(2, x(b) - xa);
    out.push(`<g class="finding-span sev-${f.severity}" data-detector="${esc(f.detector)}"><rect x="${num(xa)}" y="${num(top)}" width="${num(w)}" height="${num(bottom - top)}"/>` +
      `<text x="${num(xa + 3)}" y="${num(bottom - 5)}">${esc(f.detector)}</text></g>`);
  }
  out.push(axes(x, y, span));
  out.push(`<g clip-path="url(#${clip})">`);
  for (const kind of KIND_ORDER) {
    const s = series.get(kind) as Series;
    if (s.xs.length === 0) continue;
    const owner = SERIES_STYLES[kind].bySender ? sender : receiver;
    out.push(`<g class="series s-${kind}" data-series="${owner}-${kind}" data-points="${s.xs.length}"><path d="${seriesPath(s, x, y, right)}"/></g>`);
  }
  out.push('</g></svg>');
  return out.join('');
}

function axes(x: Scale, y: Scale, span: number): string {
  const [left, right] = x.range;
  const [bottom, top] = y.range;
  const out: string[] = ['<g class="axis">'];
  for (const t of timeTicks(Math.max(0, x.domain[0]), x.domain[1], 10)) {
    const px = num(x(t));
    out.push(`<line class="grid" x1="${px}" x2="${px}" y1="${num(top)}" y2="${num(bottom)}"/>`);
    out.push(`<text x="${px}" y="${num(bottom + 15)}" text-anchor="middle">${esc(secondsLabel(t, span))}</text>`);
  }
  // Sequence offsets are whole bytes.
  for (const v of ticks(y.domain[0], y.domain[1], 5).filter(Number.isInteger)) {
    const py = num(y(v));
    out.push(`<line class="grid" x1="${num(left)}" x2="${num(right)}" y1="${py}" y2="${py}"/>`);
    out.push(`<text x="${num(left - 6)}" y="${py}" dy="0.35em" text-anchor="end">${esc(shortNumber(v))}</text>`);
  }
  out.push(`<rect class="frame" x="${num(left)}" y="${num(top)}" width="${num(right - left)}" height="${num(bottom - top)}"/>`);
  out.push(`<text class="axis-title" x="${num(right)}" y="${num(bottom + 31)}" text-anchor="end">seconds since the conversation's first packet</text>`);
  out.push(`<text class="axis-title" transform="translate(14 ${num((top + bottom) / 2)}) rotate(-90)" text-anchor="middle">relative seq (bytes)</text>`);
  out.push('</g>');
  return out.join('');
}

function legend(kinds: ReadonlySet<Kind>): string {
  const items = KIND_ORDER.filter((k) => kinds.has(k)).map((kind) => {
    const style = SERIES_STYLES[kind];
    const icon = style.shape === 'bar' ? 'M9 2V16' : style.shape === 'step' ? 'M1 13H9V5H17' : `M9 9${MARKS[kind]}`;
    return `<span class="legend-item"><svg viewBox="0 0 18 18" width="18" height="18" class="s-${kind}"><path d="${icon}"/></svg>${esc(style.label)}</span>`;
  });
  return `<div class="legend">${items.join('')}</div>`;
}
