import { median } from '../detect/util.js';

/**
 * Clock offset between two capture points, from packets seen at both.
 *
 * Convention: `offset` is how far capture B's clock is ahead of capture A's, so a time of B is put
 * on A's clock by subtracting it. For one packet seen at both points, tB - tA = offset ± the one-way
 * delay between the points: + when it travelled from A's point to B's, - the other way. The median
 * of each direction's differences removes stray queueing; half their sum is the offset (the one-way
 * delays cancel when the path is symmetric, the NTP assumption) and half their difference is the
 * one-way delay ("the median minus half the RTT"). With packets in one direction only, the delay
 * cannot be told from the offset, and the estimate carries it.
 */

export interface ClockEstimate {
  /** Seconds B's clock is ahead of A's (subtract from B's times to compare with A's). */
  offset: number;
  /** Typical one-way delay between the capture points; null when it cannot be separated from the offset. */
  oneWayDelay: number | null;
  /**
   * Which capture saw the packets of direction 1 first: 'A' when direction-1 packets travel from A's
   * point to B's; null when unknown (one direction only, or no difference at all).
   */
  direction1From: 'A' | 'B' | null;
  method: 'two-way' | 'one-way' | 'none';
  /** Packets the estimate rests on, per direction. */
  samples: [number, number];
  /** Spread of the differences (max - min), per direction: queueing and clock drift show here. */
  spread: [number | null, number | null];
}

function spread(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return max - min;
}

/**
 * `direction1` and `direction2`: tB - tA of packets seen at both points, for packets of one
 * direction of the connections (client to server, say) and of the other.
 */
export function estimateClockOffset(direction1: readonly number[], direction2: readonly number[]): ClockEstimate {
  const samples: [number, number] = [direction1.length, direction2.length];
  const spreads: [number | null, number | null] = [spread(direction1), spread(direction2)];
  if (direction1.length > 0 && direction2.length > 0) {
    const m1 = median(direction1);
    const m2 = median(direction2);
    return {
      offset: (m1 + m2) / 2,
      oneWayDelay: Math.abs(m1 - m2) / 2,
      direction1From: m1 > m2 ? 'A' : m1 < m2 ? 'B' : null,
      method: 'two-way',
      samples,
      spread: spreads,
    };
  }
  const only = direction1.length > 0 ? direction1 : direction2;
  if (only.length === 0) return { offset: 0, oneWayDelay: null, direction1From: null, method: 'none', samples, spread: spreads };
  return { offset: median(only), oneWayDelay: null, direction1From: null, method: 'one-way', samples, spread: spreads };
}

/**
 * One estimate from several connections' estimates: the median of the two-way offsets when there
 * are any (each connection cancels its own one-way delay), else of the one-way ones. Connections
 * may run either way between the points, so direction1From is not carried over.
 */
export function combineClockEstimates(estimates: readonly ClockEstimate[]): ClockEstimate {
  const twoWay = estimates.filter((e) => e.method === 'two-way');
  const used = twoWay.length > 0 ? twoWay : estimates.filter((e) => e.method === 'one-way');
  const samples: [number, number] = [0, 0];
  for (const e of used) {
    samples[0] += e.samples[0];
    samples[1] += e.samples[1];
  }
  if (used.length === 0) return { offset: 0, oneWayDelay: null, direction1From: null, method: 'none', samples, spread: [null, null] };
  const delays = twoWay.map((e) => e.oneWayDelay as number);
  return {
    offset: median(used.map((e) => e.offset)),
    oneWayDelay: delays.length > 0 ? median(delays) : null,
    direction1From: null,
    method: twoWay.length > 0 ? 'two-way' : 'one-way',
    samples,
    spread: [null, null],
  };
}

/** Seconds with a unit that fits: `12 µs`, `3.4 ms`, `5.21 s`. */
export function shortSeconds(seconds: number): string {
  const abs = Math.abs(seconds);
  if (abs < 0.001) return `${(seconds * 1e6).toFixed(abs < 1e-5 ? 1 : 0)} µs`;
  if (abs < 1) return `${(seconds * 1000).toFixed(abs < 0.01 ? 2 : 1)} ms`;
  return `${seconds.toFixed(2)} s`;
}
