import type { Finding } from '../detect/finding.js';

/**
 * Baselines: findings a team has looked at and accepted, so CI fails only on new ones. Entries
 * match findings by detector and by the conversation's endpoints, never by finding or conversation
 * ids (those change whenever the capture changes). A field that is absent or "*" matches anything:
 * client ports are usually ephemeral, so --write-baseline leaves them out.
 */
export interface BaselineEntry {
  detector: string;
  /** `ip`, `ip:port`, `[v6]:port`, or `*`. */
  client?: string;
  server?: string;
  /** What the finding said when it was accepted; informational only. */
  title?: string;
}

export interface Baseline {
  schemaVersion: 1;
  entries: BaselineEntry[];
}

export class BaselineError extends Error {}

export interface BaselineOutcome {
  /** Findings not covered by the baseline: the ones that count for --fail-on. */
  fresh: Finding[];
  suppressed: Finding[];
  /** Entries that matched nothing: the problem went away, or the capture no longer shows it. */
  stale: BaselineEntry[];
}

/** `ip`, `ip:port`, `*:port`, `[v6]:port` or a bare IPv6 address; port null = any port. */
function parseEndpointPattern(pattern: string): { ip: string; port: number | null } | null {
  const bracketed = /^\[([^\]]+)\](?::(\d+|\*))?$/.exec(pattern);
  if (bracketed) return { ip: bracketed[1], port: bracketed[2] === undefined || bracketed[2] === '*' ? null : Number(bracketed[2]) };
  if (pattern.split(':').length > 2) return { ip: pattern, port: null };
  const plain = /^([^:]+)(?::(\d+|\*))?$/.exec(pattern);
  if (!plain) return null;
  return { ip: plain[1], port: plain[2] === undefined || plain[2] === '*' ? null : Number(plain[2]) };
}

function endpointMatches(pattern: string | undefined, endpoint: { ip: string; port: number } | null): boolean {
  if (pattern === undefined || pattern === '*') return true;
  const parsed = parseEndpointPattern(pattern);
  if (endpoint === null || parsed === null) return false;
  return (parsed.ip === '*' || parsed.ip === endpoint.ip) && (parsed.port === null || parsed.port === endpoint.port);
}

export function entryMatches(entry: BaselineEntry, finding: Finding): boolean {
  return entry.detector === finding.detector && endpointMatches(entry.client, finding.client) &&
    endpointMatches(entry.server, finding.server);
}

export function applyBaseline(findings: readonly Finding[], baseline: Baseline): BaselineOutcome {
  const used = new Set<BaselineEntry>();
  const fresh: Finding[] = [];
  const suppressed: Finding[] = [];
  for (const finding of findings) {
    const entry = baseline.entries.find((e) => entryMatches(e, finding));
    if (entry === undefined) fresh.push(finding);
    else {
      used.add(entry);
      suppressed.push(finding);
    }
  }
  return { fresh, suppressed, stale: baseline.entries.filter((e) => !used.has(e)) };
}

function formatEndpoint(endpoint: { ip: string; port: number }, withPort: boolean): string {
  const ip = endpoint.ip.includes(':') ? `[${endpoint.ip}]` : endpoint.ip;
  return withPort ? `${ip}:${endpoint.port}` : ip;
}

/** A baseline accepting these findings: client by address only, server by address and port. */
export function baselineFor(findings: readonly Finding[]): Baseline {
  const entries: BaselineEntry[] = [];
  const seen = new Set<string>();
  for (const finding of findings) {
    const entry: BaselineEntry = { detector: finding.detector };
    if (finding.client !== null) entry.client = formatEndpoint(finding.client, false);
    if (finding.server !== null) entry.server = formatEndpoint(finding.server, true);
    const key = `${entry.detector} ${entry.client ?? ''} ${entry.server ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    entries.push({ ...entry, title: finding.title });
  }
  return { schemaVersion: 1, entries };
}

export function parseBaseline(text: string, source: string): Baseline {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new BaselineError(`${source}: not valid JSON (${(error as Error).message})`);
  }
  const entries = (raw as { entries?: unknown })?.entries;
  if (!Array.isArray(entries) || entries.some((e) => typeof (e as BaselineEntry)?.detector !== 'string')) {
    throw new BaselineError(`${source}: expected {"schemaVersion": 1, "entries": [{"detector": ..., "client": ..., "server": ...}]}`);
  }
  return { schemaVersion: 1, entries: entries as BaselineEntry[] };
}
