import { TcpFlag } from '../decode/packet.js';

/** tcpdump's flag letters in tcpdump's own order (print-tcp.c), so `[FP.]` reads as users expect. */
const LETTERS: ReadonlyArray<readonly [number, string]> = [
  [TcpFlag.FIN, 'F'],
  [TcpFlag.SYN, 'S'],
  [TcpFlag.RST, 'R'],
  [TcpFlag.PSH, 'P'],
  [TcpFlag.ACK, '.'],
  [TcpFlag.URG, 'U'],
  [TcpFlag.ECE, 'E'],
  [TcpFlag.CWR, 'W'],
];

/** `[S.]`, `[P.]`, `[R]` ...; `[none]` for a segment with no flag, as tcpdump prints it. */
export function tcpdumpFlags(flags: number): string {
  let text = '';
  for (const [bit, letter] of LETTERS) if ((flags & bit) !== 0) text += letter;
  return `[${text || 'none'}]`;
}

/** Non-zero counters of a per-flag-byte table, keyed by tcpdump notation, most frequent first. */
export function flagTable(counts: Uint32Array): Record<string, number> {
  const entries: [string, number][] = [];
  for (let flags = 0; flags < counts.length; flags++) {
    if (counts[flags] > 0) entries.push([tcpdumpFlags(flags), counts[flags]]);
  }
  entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return Object.fromEntries(entries);
}
