import { existsSync } from 'node:fs';
import type { Finding } from '../../src/detect/finding.js';
import { capture } from './paths.js';

/** Shared by the detector tests: lab captures may be absent, findings are looked at one detector at a time. */

/** Skips a test whose lab captures (file names in fixtures/captures) have not been generated. */
export function skipUnlessCaptures(...names: string[]): { skip: string | false } {
  const missing = names.filter((n) => !existsSync(capture(n)));
  return { skip: missing.length === 0 ? false : `${missing.join(', ')} not generated yet (fixtures/lab)` };
}

export function ofDetector(findings: readonly Finding[], id: string): Finding[] {
  return findings.filter((f) => f.detector === id);
}

/** `ip:port` as the lab facts write it (IPv6 addresses keep their colons). */
export function endpoint(text: string): { ip: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { ip: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** Independent 32-bit serial distance (RFC 1982), written out rather than taken from src/flow/seq. */
export function serialDistance(a: number, b: number): number {
  const d = (a - b) % 2 ** 32;
  const u = d < 0 ? d + 2 ** 32 : d;
  return u >= 2 ** 31 ? u - 2 ** 32 : u;
}
