/**
 * TCP sequence-number arithmetic (RFC 1982 serial numbers): 32-bit values that wrap, compared by the
 * sign of their 32-bit difference. Every comparison of seq/ack values goes through these so that a
 * conversation crossing 2^32 is analysed like any other.
 */

/** a - b as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
