/** Small helpers for the report's hand-written SVG: escaping, linear scales, axis ticks, labels. */

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for element content and double- or single-quoted attributes. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** A coordinate with one decimal, as short as it gets (`12`, `12.5`, `-3`). */
export function num(value: number): string {
  const rounded = Math.round(value * 10) / 10;
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

export interface Scale {
  (value: number): number;
  domain: readonly [number, number];
  range: readonly [number, number];
}

/** Linear map from [d0, d1] to [r0, r1]; a degenerate domain maps to the middle of the range. */
export function linear(d0: number, d1: number, r0: number, r1: number): Scale {
  const span = d1 - d0;
  const scale = ((value: number) => (span === 0 ? (r0 + r1) / 2 : r0 + ((value - d0) / span) * (r1 - r0))) as Scale;
  scale.domain = [d0, d1];
  scale.range = [r0, r1];
  return scale;
}

/** About `count` round tick values (1, 2, 2.5, 5 × 10^n steps) covering [lo, hi]. */
export function ticks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** Time ticks in seconds that fall on whole units (s, min, h) once the span is long. */
export function timeTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo;
  if (span < 120) return ticks(lo, hi, count);
  const unit = span < 7200 ? 60 : 3600;
  return ticks(lo / unit, hi / unit, count).map((v) => v * unit);
}

/** `0`, `950`, `12.5 k`, `1.2 M`, `3.4 G`: sequence offsets and counts on an axis. */
export function shortNumber(value: number): string {
  const abs = Math.abs(value);
  const fmt = (v: number) => String(Number(v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)));
  if (abs < 1000) return fmt(value);
  if (abs < 1e6) return `${fmt(value / 1e3)} k`;
  if (abs < 1e9) return `${fmt(value / 1e6)} M`;
  return `${fmt(value / 1e9)} G`;
}

/** Seconds since a start as an axis label: `0`, `0.25 s`, `90 s`, `12 min`, `2.5 h`. */
export function secondsLabel(value: number, span: number): string {
  if (value === 0) return '0';
  if (span >= 7200) return `${Number((value / 3600).toFixed(2))} h`;
  if (span >= 120) return `${Number((value / 60).toFixed(2))} min`;
  if (span < 0.01) return `${Number((value * 1000).toFixed(3))} ms`;
  return `${Number(value.toFixed(span < 1 ? 3 : 2))} s`;
}

/**
 * A step line through (x_i, y_i): `M x0 y0 H x1 V y1 H x2 V y2 ...`, one vertex (the M or a V) per
 * point, ending with a horizontal run to `endX`.
 */
export function stepPath(xs: readonly number[], ys: readonly number[], endX: number | null): string {
  if (xs.length === 0) return '';
  const parts = [`M${num(xs[0])} ${num(ys[0])}`];
  for (let i = 1; i < xs.length; i++) parts.push(`H${num(xs[i])}V${num(ys[i])}`);
  if (endX !== null) parts.push(`H${num(endX)}`);
  return parts.join('');
}
