import { entryMatches } from './baseline.js';
import { type Finding, type Severity, SEVERITIES, severityRank } from '../detect/finding.js';

/**
 * Expect files pin the diagnosis of a capture in CI: the listed findings must be present (detector,
 * endpoints, optionally severity and evidence bounds) and nothing else at or above `failOn` may be.
 *
 *   { "findings": [ { "detector": "retransmit-storm", "server": "198.18.2.2:6379",
 *                     "severity": "critical",
 *                     "evidence": { "retransmissions": { "min": 5 }, "backoffFactor": { "min": 1.8, "max": 2.2 },
 *                                   "direction": "client" } } ],
 *     "failOn": "warning" }
 */
export type EvidenceBound = { min?: number; max?: number } | number | string | boolean;

export interface ExpectedFinding {
  detector: string;
  client?: string;
  server?: string;
  severity?: Severity;
  evidence?: Record<string, EvidenceBound>;
}

export interface ExpectFile {
  findings: ExpectedFinding[];
  /** Unlisted findings at or above this severity fail the check (default warning). */
  failOn?: Severity;
}

export class ExpectError extends Error {}

export interface ExpectOutcome {
  passed: boolean;
  /** Each expectation with the finding that satisfied it, or why none did. */
  expectations: { expected: ExpectedFinding; matched: Finding | null; reasons: string[] }[];
  unexpected: Finding[];
}

function boundProblem(name: string, bound: EvidenceBound, value: unknown): string | null {
  if (typeof bound === 'object') {
    if (typeof value !== 'number') return `evidence.${name} is ${JSON.stringify(value)}, not a number`;
    if (bound.min !== undefined && value < bound.min) return `evidence.${name} = ${value} < ${bound.min}`;
    if (bound.max !== undefined && value > bound.max) return `evidence.${name} = ${value} > ${bound.max}`;
    return null;
  }
  return value === bound ? null : `evidence.${name} = ${JSON.stringify(value)}, expected ${JSON.stringify(bound)}`;
}

/** Why a finding of the expected detector does not satisfy the expectation ([] when it does). */
function mismatches(expected: ExpectedFinding, finding: Finding): string[] {
  if (!entryMatches(expected, finding)) return ['endpoints differ'];
  const reasons: string[] = [];
  if (expected.severity !== undefined && expected.severity !== finding.severity) {
    reasons.push(`severity ${finding.severity}, expected ${expected.severity}`);
  }
  for (const [name, bound] of Object.entries(expected.evidence ?? {})) {
    const problem = boundProblem(name, bound, finding.evidence[name]);
    if (problem !== null) reasons.push(problem);
  }
  return reasons;
}

export function checkExpectations(findings: readonly Finding[], expect: ExpectFile): ExpectOutcome {
  const used = new Set<Finding>();
  const expectations = expect.findings.map((expected) => {
    const candidates = findings.filter((f) => f.detector === expected.detector);
    const matched = candidates.find((f) => mismatches(expected, f).length === 0) ?? null;
    if (matched !== null) used.add(matched);
    const reasons = matched !== null ? [] : candidates.length === 0 ? ['no finding from this detector']
      : candidates.map((f) => `${f.id}: ${mismatches(expected, f).join('; ')}`);
    return { expected, matched, reasons };
  });
  const limit = severityRank(expect.failOn ?? 'warning');
  const unexpected = findings.filter((f) => !used.has(f) && severityRank(f.severity) <= limit &&
    !expect.findings.some((e) => e.detector === f.detector && mismatches(e, f).length === 0));
  return { passed: expectations.every((e) => e.matched !== null) && unexpected.length === 0, expectations, unexpected };
}

export function parseExpectFile(text: string, source: string): ExpectFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ExpectError(`${source}: not valid JSON (${(error as Error).message})`);
  }
  const file = raw as ExpectFile;
  if (!Array.isArray(file?.findings) || file.findings.some((f) => typeof f?.detector !== 'string')) {
    throw new ExpectError(`${source}: expected {"findings": [{"detector": ..., "server": ..., "evidence": {...}}]}`);
  }
  if (file.failOn !== undefined && !(SEVERITIES as readonly string[]).includes(file.failOn)) {
    throw new ExpectError(`${source}: failOn must be one of ${SEVERITIES.join(', ')}`);
  }
  return file;
}
