/**
 * The findings catalogue: what every detector emits and every reporter prints. Like Wireshark's
 * expert info, a finding names a stable detector id and a severity; unlike it, a finding is about a
 * conversation (or a pattern across conversations) and carries its evidence and the advice.
 */

export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Rank for sorting and --fail-on: lower is more severe. */
export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Report order: most severe first, then by time, then by id (deterministic). */
export function compareFindings(a: Finding, b: Finding): number {
  return severityRank(a.severity) - severityRank(b.severity) || a.start - b.start || a.id.localeCompare(b.id);
}

export interface EndpointRef {
  ip: string;
  port: number;
}

export interface Finding {
  /** Unique within a report and stable across runs on the same capture: `<detector>/<key>`. */
  id: string;
  detector: string;
  severity: Severity;
  title: string;
  /** Conversation ids the finding is about, most relevant first. */
  conversations: number[];
  client: EndpointRef | null;
  server: EndpointRef | null;
  /** Capture time span of the evidence, seconds since the epoch. */
  start: number;
  end: number;
  /** Detector-specific numbers, packet (frame) numbers and times; documented by `connscope explain`. */
  evidence: Record<string, unknown>;
  /** One paragraph on what happened here, in this capture's numbers. */
  explanation: string;
  advice: string[];
}

/** A finding as a detector produces it: the engine adds the id and applies the severity policy. */
export type DetectorFinding = Omit<Finding, 'id' | 'detector' | 'severity'> & {
  /** Distinguishes several findings of one detector; the same key updates an earlier finding. */
  key: string;
  /** The detector's suggested severity; policy may override it. */
  severity: Severity;
};
