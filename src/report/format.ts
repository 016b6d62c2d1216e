/** Number and time formatting shared by the human-readable reports. */

export { hostPort } from '../flow/summary.js';

const counts = new Intl.NumberFormat('en-US');

export function formatCount(n: number): string {
  return counts.format(n);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 0000-01-01 and 10000-01-01 UTC, in seconds since the epoch: the years toISOString writes in 4 digits. */
const MIN_CALENDAR_SECONDS = -62167219200;
const MAX_CALENDAR_SECONDS = 253402300800;

/** Capture time in UTC with microseconds, the precision of the capture: `2026-11-23 19:50:01.123456`. */
export function formatTime(seconds: number): string {
  const whole = Math.floor(seconds);
  const micros = Math.round((seconds - whole) * 1e6);
  const carry = micros === 1e6 ? 1 : 0;
  // A damaged or hostile capture can carry any 64-bit timestamp; past year 9999 (or before year 0)
  // there is no calendar form, and Date would throw: show the raw seconds instead.
  if (!(whole >= MIN_CALENDAR_SECONDS && whole + 1 < MAX_CALENDAR_SECONDS)) return `${seconds.toFixed(6)} s since 1970`;
  const iso = new Date((whole + carry) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(carry ? 0 : micros).padStart(6, '0')}`;
}

/** Time of day with milliseconds, `20:10:54.754`, for evidence where the date is already in the heading. */
export function formatTimeOfDay(seconds: number): string {
  const full = formatTime(seconds);
  return /^\d{4}-/.test(full) ? full.slice(11, 23) : full;
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  if (seconds < 120) return `${seconds.toFixed(2)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
