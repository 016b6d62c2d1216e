import type { Conversation } from '../flow/conversation.js';
import { endpointSummary, hostPort, roundMicros } from '../flow/summary.js';
import type { EndpointRef } from './finding.js';

export function endpointsOf(conv: Conversation): { client: EndpointRef; server: EndpointRef } {
  return { client: endpointSummary(conv.client, conv.ipVersion), server: endpointSummary(conv.server, conv.ipVersion) };
}

/** `10.0.0.1:43210 -> 10.0.0.2:6379`, the way findings name a conversation. */
export function tupleText(conv: Conversation): string {
  const { client, server } = endpointsOf(conv);
  return `${hostPort(client)} -> ${hostPort(server)}`;
}

export function median(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Seconds for people: `350 ms`, `4.2 s`, `15 min 31 s`, `2 h 5 min`. */
export function humanSeconds(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Number(seconds.toFixed(seconds < 10 ? 2 : 1))} s`;
  if (seconds < 3600) {
    const minutes = Math.floor(seconds / 60);
    const rest = Math.round(seconds - minutes * 60);
    return rest > 0 ? `${minutes} min ${rest} s` : `${minutes} min`;
  }
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.round((seconds - hours * 3600) / 60);
  return minutes > 0 ? `${hours} h ${minutes} min` : `${hours} h`;
}

/** Evidence numbers are rounded to the microsecond: the capture holds no more precision. */
export const round = roundMicros;

/** A detector's per-conversation state in its scratch slot, created on first use. */
export function scratchState<S>(conv: Conversation, slot: number, create: new () => S): S {
  let state = conv.scratch[slot] as S | undefined;
  if (state === undefined) {
    state = new create();
    conv.scratch[slot] = state;
  }
  return state;
}
