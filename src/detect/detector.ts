import type { Conversation } from '../flow/conversation.js';
import type { Segment } from '../flow/segment.js';
import type { CapFactory } from './capped.js';
import type { DetectorFinding, Severity } from './finding.js';

/** One tunable number of a detector, documented where it is declared. */
export interface ThresholdSpec {
  default: number;
  unit: string;
  description: string;
}

/** What `connscope explain <id>` prints, and what the catalogue is built from. */
export interface DetectorSpec<T extends Record<string, number> = Record<string, number>> {
  /** Stable id: appears in JSON, --fail-on, baselines and --set. */
  id: string;
  title: string;
  /** Severity of its findings unless the detector escalates, or policy overrides it. */
  severity: Severity;
  /** One line for the catalogue listing. */
  summary: string;
  /** The long explanation: the failure, how it shows on the wire, how the detector recognises it. */
  explanation: string;
  /** Meaning of each evidence field. */
  evidence: Record<string, string>;
  thresholds: { [K in keyof T]: ThresholdSpec };
  advice: string[];
  create(context: DetectorContext<T>): DetectorInstance;
}

export interface DetectorContext<T extends Record<string, number>> {
  thresholds: Readonly<T>;
  /** Index into Conversation.scratch reserved for this detector's per-conversation state. */
  slot: number;
  /** Adds a finding, or replaces the earlier one with the same key (evidence grew). */
  report(finding: DetectorFinding): void;
  /** A bound on state that grows with the traffic; what it turns away is warned about in the report. */
  cap: CapFactory;
  /**
   * Whether anyone watches findings as they change (live capture, a FindingListener). When false,
   * only the last report of each finding is ever seen: a detector whose report costs time in
   * proportion to its evidence may skip re-reporting on every new piece of it, provided it reports
   * the finished finding (in finish()), so a long capture does not cost quadratic time.
   */
  readonly live: boolean;
}

/**
 * A running detector. It sees conversations only through the tracker's state and verdicts, never
 * bytes. `interest` is a mask of Note bits: onSegment is called only for segments carrying one of
 * them, so a detector pays nothing for the packets it does not care about.
 */
export interface DetectorInstance {
  readonly interest: number;
  onSegment?(conv: Conversation, seg: Segment): void;
  /** The conversation is complete: last chance to report on it alone. */
  onFinalize?(conv: Conversation): void;
  /** End of input: conclusions that need every conversation (ratios, inferred timeouts). */
  finish?(): void;
}

/**
 * Erases a detector's threshold type so detectors with different thresholds share one list. Sound
 * because the engine builds each detector's thresholds from that detector's own spec.
 */
export function defineDetector<T extends Record<string, number>>(spec: DetectorSpec<T>): DetectorSpec {
  return spec as unknown as DetectorSpec;
}
