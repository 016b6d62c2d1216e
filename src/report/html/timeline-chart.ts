import type { CaptureTimeline } from '../../core/timeline.js';
import { formatDuration, formatTime } from '../format.js';
import { esc, linear, num, secondsLabel, shortNumber, stepPath, ticks, timeTicks } from './svg.js';

/**
 * The capture's timeline: conversations open, new connections per second, and RSTs and
 * retransmissions per second, three panels over one time axis. At most MAX_BUCKETS points per
 * series: longer captures are drawn in buckets of several bins (rates averaged over the bucket,
 * open conversations at their maximum in it).
 *
 * Series: `<g class="series" data-series="open|new-connections|resets|retransmissions"
 * data-points="N" data-values="v0 v1 ...">` with one step `<path>` (one vertex per point: the first
 * `M`, then one `V` each).
 */

export const MAX_BUCKETS = 1200;

const WIDTH = 1100;
const PANEL = 120;
const GAP = 26;
const MARGIN = { left: 64, right: 18, top: 22, bottom: 40 };

interface TimelineSeries {
  name: string;
  label: string;
  values: number[];
}

export interface DisplayTimeline {
  origin: number;
  bucketSeconds: number;
  open: number[];
  newConnections: number[];
  resets: number[];
  retransmissions: number[];
}

/** Groups bins into at most MAX_BUCKETS buckets: rates per second, open conversations at their peak. */
export function bucketTimeline(timeline: CaptureTimeline, maxBuckets = MAX_BUCKETS): DisplayTimeline {
  const bins = timeline.open.length;
  const group = Math.max(1, Math.ceil(bins / maxBuckets));
  const seconds = group * timeline.binSeconds;
  const rate = (values: number[]) => {
    const out: number[] = [];
    for (let i = 0; i < bins; i += group) {
      let sum = 0;
      for (let j = i; j < Math.min(bins, i + group); j++) sum += values[j];
      out.push(sum / seconds);
    }
    return out;
  };
  const peak: number[] = [];
  for (let i = 0; i < bins; i += group) {
    let max = 0;
    for (let j = i; j < Math.min(bins, i + group); j++) max = Math.max(max, timeline.open[j]);
    peak.push(max);
  }
  return {
    origin: timeline.origin,
    bucketSeconds: seconds,
    open: peak,
    newConnections: rate(timeline.newConnections),
    resets: rate(timeline.resets),
    retransmissions: rate(timeline.retransmissions),
  };
}

function valueList(values: readonly number[]): string {
  return values.map((v) => String(Number(v.toFixed(3)))).join(' ');
}

export function renderTimeline(timeline: CaptureTimeline, title: string): string {
  const d = bucketTimeline(timeline);
  const n = d.open.length;
  if (n === 0) return '';
  const span = n * d.bucketSeconds;
  const x = linear(0, span, MARGIN.left, WIDTH - MARGIN.right);
  const panels: { label: string; series: TimelineSeries[] }[] = [
    { label: 'open conversations', series: [{ name: 'open', label: 'open conversations', values: d.open }] },
    { label: 'new connections / s', series: [{ name: 'new-connections', label: 'new connections (SYN) per second', values: d.newConnections }] },
    {
      label: 'RSTs and retransmissions / s',
      series: [
        { name: 'retransmissions', label: 'retransmissions per second', values: d.retransmissions },
        { name: 'resets', label: 'RST segments per second', values: d.resets },
      ],
    },
  ];
  const height = MARGIN.top + panels.length * PANEL + (panels.length - 1) * GAP + MARGIN.bottom;
  const out: string[] = [`<svg class="chart timeline" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${esc(title)}" data-bucket-seconds="${d.bucketSeconds}">`];
  const xs = Array.from({ length: n }, (_, i) => x(i * d.bucketSeconds));
  const [left, right] = x.range;
  panels.forEach((panel, index) => {
    const top = MARGIN.top + index * (PANEL + GAP);
    const bottom = top + PANEL;
    const max = Math.max(1, ...panel.series.flatMap((s) => s.values));
    const integral = panel.series.every((s) => s.values.every(Number.isInteger));
    const yTicks = ticks(0, max, 3).filter((v) => !integral || Number.isInteger(v));
    const y = linear(0, Math.max(max, yTicks[yTicks.length - 1] ?? max) * 1.05, bottom, top);
    out.push(`<g class="panel" data-panel="${index}">`);
    out.push(`<text class="panel-title" x="${num(left)}" y="${num(top - 6)}">${esc(panel.label)}</text>`);
    for (const v of yTicks) {
      const py = num(y(v));
      out.push(`<line class="grid" x1="${num(left)}" x2="${num(right)}" y1="${py}" y2="${py}"/><text class="tick" x="${num(left - 6)}" y="${py}" dy="0.35em" text-anchor="end">${esc(shortNumber(v))}</text>`);
    }
    for (const t of timeTicks(0, span, 10)) {
      const px = num(x(t));
      out.push(`<line class="grid" x1="${px}" x2="${px}" y1="${num(top)}" y2="${num(bottom)}"/>`);
      if (index === panels.length - 1) out.push(`<text class="tick" x="${px}" y="${num(bottom + 15)}" text-anchor="middle">${esc(secondsLabel(t, span))}</text>`);
    }
    out.push(`<rect class="frame" x="${num(left)}" y="${num(top)}" width="${num(right - left)}" height="${PANEL}"/>`);
    for (const s of panel.series) {
      out.push(`<g class="series t-${s.name}" data-series="${s.name}" data-points="${s.values.length}" data-values="${valueList(s.values)}">` +
        `<title>${esc(s.label)}</title><path d="${stepPath(xs, s.values.map(y), right)}"/></g>`);
    }
    out.push('</g>');
  });
  const bottom = height - MARGIN.bottom;
  out.push(`<text class="axis-title" x="${num(right)}" y="${num(bottom + 32)}" text-anchor="end">seconds since ${esc(formatTime(d.origin))} UTC` +
    `${d.bucketSeconds !== 1 ? ` (one point per ${esc(formatDuration(d.bucketSeconds))})` : ''}</text>`);
  out.push('</svg>');
  const legend = '<div class="legend"><span class="legend-item"><svg viewBox="0 0 18 18" width="18" height="18" class="t-retransmissions"><path d="M1 13H9V5H17"/></svg>retransmissions</span>' +
    '<span class="legend-item"><svg viewBox="0 0 18 18" width="18" height="18" class="t-resets"><path d="M1 13H9V5H17"/></svg>RST segments</span></div>';
  return `<figure class="timeline-figure"><figcaption>${esc(title)}</figcaption>${out.join('')}${legend}</figure>`;
}
