import type { Conversation } from '../flow/conversation.js';
import { Note, type Segment } from '../flow/segment.js';
import type { FlowObserver } from '../flow/tracker.js';

/**
 * What the TCP streams say about packets the capture never saw. `cap` has no drop counters, so
 * this is the honest measure of loss there: a sequence gap (a segment starting beyond everything
 * its sender was seen to send) or an acknowledgement of bytes never seen. A gap can also be a
 * packet lost on the network before it reached the capture point; either way the analysis did not
 * see it.
 */
export class LossCounter implements FlowObserver {
  sequenceGaps = 0;
  ackedUnseen = 0;

  get total(): number {
    return this.sequenceGaps + this.ackedUnseen;
  }

  onSegment(_conv: Conversation, seg: Segment): void {
    const notes = seg.notes;
    if ((notes & Note.PreviousNotCaptured) !== 0) this.sequenceGaps++;
    if ((notes & Note.AckedUnseen) !== 0) this.ackedUnseen++;
  }

  onFinalize(): void {}

  /** The report's warning, or null when the streams show no gap. */
  warning(): string | null {
    if (this.total === 0) return null;
    return `${this.total} TCP segments not captured (${this.sequenceGaps} sequence gaps, ${this.ackedUnseen} acknowledgements of data never seen): ` +
      'lost by the capture, or on the network before the capture point; findings about those conversations may be incomplete';
  }
}
