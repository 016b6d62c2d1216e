import type { Conversation } from '../flow/conversation.js';
import type { Segment } from '../flow/segment.js';
import type { FlowObserver } from '../flow/tracker.js';
import { Cap } from './capped.js';
import type { DetectorInstance, DetectorSpec } from './detector.js';
import { compareFindings, type Finding } from './finding.js';
import { type Policy, thresholdsFor } from './policy.js';

function noSegment(): void {}

type SegmentHandler = (conv: Conversation, seg: Segment) => void;

/** Told when a finding appears or grows (live capture prints these as they happen). */
export type FindingListener = (finding: Finding, isUpdate: boolean) => void;

/**
 * Runs every enabled detector over the tracker's output and keeps the catalogue of findings. A
 * segment reaches a detector only when it carries a Note the detector declared interest in.
 */
export class DetectorEngine implements FlowObserver {
  private readonly instances: DetectorInstance[] = [];
  private readonly interests: number[] = [];
  /**
   * Each instance's onSegment, bound once: the per-segment loop calls a function from an array
   * instead of looking a method up on a dozen differently shaped objects (a megamorphic lookup on
   * every segment for every interested detector).
   */
  private readonly segmentHandlers: SegmentHandler[] = [];
  /**
   * The handlers to call for each combination of notes: a segment carries a handful of the note bits,
   * and a few combinations make up nearly every packet, so the per-segment loop runs over only the
   * interested detectors instead of testing every detector's mask.
   */
  private readonly routes: (SegmentHandler[] | undefined)[] = [];
  private readonly findings = new Map<string, Finding>();
  private readonly caps: { detector: string; cap: Cap }[] = [];
  /** `next` sees every segment and finalised conversation after the detectors did. */
  constructor(
    specs: readonly DetectorSpec[],
    policy: Policy,
    private readonly next: FlowObserver | null,
    private readonly listener: FindingListener | null = null,
  ) {
    for (const spec of specs) {
      if (policy.disabled.includes(spec.id)) continue;
      const severityOverride = policy.severity[spec.id];
      const slot = this.instances.length;
      const instance = spec.create({
        thresholds: thresholdsFor(spec, policy),
        slot,
        live: listener !== null,
        cap: (limit, kept, lost) => {
          const cap = new Cap(limit, kept, lost);
          this.caps.push({ detector: spec.id, cap });
          return cap;
        },
        report: (found) => {
          const { key, ...rest } = found;
          const id = `${spec.id}/${key}`;
          const finding: Finding = {
            ...rest,
            id,
            detector: spec.id,
            severity: severityOverride ?? found.severity,
          };
          // Timestamps can go backwards in a capture (merged files, a clock step, a hostile file):
          // a span built from two packets is then reversed. The report promises start <= end.
          if (finding.end < finding.start) {
            finding.start = found.end;
            finding.end = found.start;
          }
          const isUpdate = this.findings.has(id);
          this.findings.set(id, finding);
          this.listener?.(finding, isUpdate);
        },
      });
      this.instances.push(instance);
      const onSegment = instance.onSegment;
      this.interests.push(onSegment === undefined ? 0 : instance.interest);
      this.segmentHandlers.push(onSegment === undefined ? noSegment : onSegment.bind(instance));
    }
  }

  get scratchSlots(): number {
    return this.instances.length;
  }

  onSegment(conv: Conversation, seg: Segment): void {
    const notes = seg.notes;
    const route = this.routes[notes] ?? this.route(notes);
    for (let i = 0; i < route.length; i++) route[i](conv, seg);
    this.next?.onSegment(conv, seg);
  }

  /** The handlers of the detectors interested in a combination of notes, built on first sight. */
  private route(notes: number): SegmentHandler[] {
    const route = this.segmentHandlers.filter((_, i) => (notes & this.interests[i]) !== 0);
    this.routes[notes] = route;
    return route;
  }

  onFinalize(conv: Conversation): void {
    for (const instance of this.instances) instance.onFinalize?.(conv);
    conv.scratch.length = 0;
    this.next?.onFinalize(conv);
  }

  /** Runs the cross-conversation conclusions; call once, after the tracker finished. */
  finish(): void {
    for (const instance of this.instances) instance.finish?.();
  }

  /** Every bound the detectors keep, with its current size and what it turned away. */
  limits(): { detector: string; kept: string; limit: number; inUse: number; dropped: number }[] {
    return this.caps.map(({ detector, cap }) => ({ detector, kept: cap.kept, limit: cap.limit, inUse: cap.inUse, dropped: cap.dropped }));
  }

  /** One line per bound that turned something away: the diagnosis did not see all of the traffic. */
  limitWarnings(): string[] {
    return this.caps
      .filter(({ cap }) => cap.dropped > 0)
      .map(({ detector, cap }) => `${detector}: ${cap.kept} limited to ${cap.limit.toLocaleString('en-US')}: ${cap.dropped.toLocaleString('en-US')} ${cap.lost}`);
  }

  /** Findings, most severe first, then by time. */
  results(): Finding[] {
    return [...this.findings.values()].sort(compareFindings);
  }
}
