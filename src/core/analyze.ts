import { readCapture } from '../capture/read.js';
import { CaptureError } from '../capture/record.js';
import { compareFindings } from '../detect/finding.js';
import { type ConversationSelector, LadderRecorder } from './ladder.js';
import { AnalysisSession, type AnalysisResult, type AnalysisSummary, type InputReport, type SessionOptions } from './session.js';

export interface AnalyzeOptions extends SessionOptions {
  /** Treat all inputs as one capture split into files (tcpdump -C/-G rotation) instead of separate captures. */
  merge?: boolean;
  onProgress?: (path: string, bytesRead: number, totalBytes: number | undefined) => void;
}

export interface AnalyzeOutcome {
  result: AnalysisResult;
  /** One line per input that could not be read at all (the rest of the report still stands). */
  errors: string[];
}

/** Analyses capture files: separately (one report section each, ids numbered on) or merged. */
export async function analyzeFiles(paths: readonly string[], options: AnalyzeOptions = {}): Promise<AnalyzeOutcome> {
  const errors: string[] = [];
  if (options.merge === true) {
    const session = new AnalysisSession(options);
    for (const path of paths) await feed(session, path, options, errors);
    return { result: session.finish(), errors };
  }
  const results: AnalysisResult[] = [];
  for (const path of paths) {
    const session = new AnalysisSession(options);
    await feed(session, path, options, errors);
    results.push(session.finish());
  }
  return { result: combineResults(results), errors };
}

async function feed(session: AnalysisSession, path: string, options: AnalyzeOptions, errors: string[]): Promise<void> {
  session.beginInput(path);
  try {
    const info = await readCapture(path, session.record, {
      onProgress: options.onProgress ? (read, total) => options.onProgress?.(path, read, total) : undefined,
    });
    session.endInput(info);
  } catch (error) {
    if (!(error instanceof CaptureError)) throw error;
    errors.push(error.message);
    session.failInput(error.message);
  }
}

/**
 * Joins the reports of separately analysed captures into one, as if one session had read them in
 * order: conversation ids are numbered on across inputs and finding ids are prefixed by the input,
 * so the output does not depend on how (or in which thread) each capture was analysed.
 */
export function combineResults(results: readonly AnalysisResult[]): AnalysisResult {
  if (results.length === 1) return results[0];
  const combined: AnalysisResult = { inputs: [], summary: emptySummary(), conversations: [], findings: [] };
  let idOffset = 0;
  results.forEach((result, index) => {
    const shift = (id: number) => id + idOffset;
    const inputOffset = combined.inputs.length;
    combined.inputs.push(...result.inputs);
    for (const conv of result.conversations) {
      combined.conversations.push({
        ...conv,
        id: shift(conv.id),
        input: conv.input + inputOffset,
        previousId: conv.previousId === null ? null : shift(conv.previousId),
      });
    }
    for (const finding of result.findings) {
      combined.findings.push({ ...finding, id: `${index + 1}:${finding.id}`, conversations: finding.conversations.map(shift) });
    }
    addSummary(combined.summary, result.summary);
    idOffset += result.summary.conversations;
  });
  combined.findings.sort(compareFindings);
  return combined;
}

function emptySummary(): AnalysisSummary {
  return {
    inputs: 0, conversations: 0, conversationsNotListed: 0, packets: 0, tcpPackets: 0, bytes: 0, start: null, end: null,
    flags: {}, flagsByDirection: { client: {}, server: {} }, retransmissions: 0, resets: 0, closeKinds: {}, evicted: 0,
  };
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

function addSummary(into: AnalysisSummary, from: AnalysisSummary): void {
  into.inputs += from.inputs;
  into.conversations += from.conversations;
  into.conversationsNotListed += from.conversationsNotListed;
  into.packets += from.packets;
  into.tcpPackets += from.tcpPackets;
  into.bytes += from.bytes;
  into.retransmissions += from.retransmissions;
  into.resets += from.resets;
  into.evicted += from.evicted;
  if (from.start !== null && (into.start === null || from.start < into.start)) into.start = from.start;
  if (from.end !== null && (into.end === null || from.end > into.end)) into.end = from.end;
  addCounts(into.flags, from.flags);
  addCounts(into.flagsByDirection.client, from.flagsByDirection.client);
  addCounts(into.flagsByDirection.server, from.flagsByDirection.server);
  addCounts(into.closeKinds, from.closeKinds);
}

export type { AnalysisResult, InputReport };

export interface LadderOutcome extends AnalyzeOutcome {
  ladders: LadderRecorder['ladders'];
}

/** Analyses one capture and records every packet of the selected conversation(s). */
export async function ladderOf(path: string, selector: ConversationSelector, options: AnalyzeOptions = {}): Promise<LadderOutcome> {
  const recorder = new LadderRecorder(selector);
  const outcome = await analyzeFiles([path], { ...options, segmentObserver: recorder });
  return { ...outcome, ladders: recorder.ladders };
}
