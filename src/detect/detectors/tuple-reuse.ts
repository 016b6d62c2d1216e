import { type Conversation, Side } from '../../flow/conversation.js';
import { seqDiff } from '../../flow/seq.js';
import { endpointSummary, hostPort } from '../../flow/summary.js';
import { humanSeconds } from '../util.js';

/**
 * What timewait-collision and port-reuse need to know about the conversation that used a 4-tuple
 * before: how and when it ended, and who therefore holds TIME_WAIT. The tracker finalises the
 * previous conversation immediately before it hands over the SYN that replaces it, so a detector
 * keeps a reference to the last finalised conversation and matches it by id (`conv.previousId`);
 * when they do not match (the previous conversation was finalised earlier) the facts the tracker
 * copied onto the new Conversation are used instead.
 */
export interface PreviousConversation {
  id: number;
  /** How it ended (null when only the tracker's copied facts were available). */
  closeKind: string | null;
  /** When it closed (second FIN, or first RST), seconds since the epoch; null if it never closed. */
  closeTime: number | null;
  /** Whether both sides sent FIN: only then does the first closer sit in TIME_WAIT. */
  closedByFin: boolean;
  /**
   * Which role in the NEW conversation the side that sent the first FIN of the old one plays: that
   * side is the one that holds TIME_WAIT. null when nobody sent FIN.
   */
  timeWaitHolder: 'client' | 'server' | null;
  /** Frames and times of the old conversation's FINs, from the point of view of the new roles. */
  clientFinFrame: number | null;
  serverFinFrame: number | null;
  clientFinTime: number | null;
  serverFinTime: number | null;
  /** One past the last sequence number the new client's host sent in the old conversation. */
  clientNextSeq: number;
  serverNextSeq: number;
  /** Both sides of the old conversation negotiated TCP timestamps. */
  timestamps: boolean;
  lastFrame: number | null;
}

export function previousOf(conv: Conversation, lastFinalized: Conversation | null): PreviousConversation | null {
  if (conv.previousId <= 0) return null;
  if (lastFinalized !== null && lastFinalized.id === conv.previousId) {
    const prev = lastFinalized;
    const sameRoles = prev.clientIsLow === conv.clientIsLow;
    const newClient = sameRoles ? prev.client : prev.server;
    const newServer = sameRoles ? prev.server : prev.client;
    const closedByFin = prev.client.finTime >= 0 && prev.server.finTime >= 0;
    let holder: 'client' | 'server' | null = null;
    if (prev.firstFinBy !== Side.None) {
      const closerWasPrevClient = prev.firstFinBy === Side.Client;
      holder = closerWasPrevClient === sameRoles ? 'client' : 'server';
    }
    return {
      id: prev.id,
      closeKind: prev.closeKind,
      closeTime: prev.closeTime >= 0 ? prev.closeTime : null,
      closedByFin,
      timeWaitHolder: holder,
      clientFinFrame: newClient.finTime >= 0 ? newClient.finFrame : null,
      serverFinFrame: newServer.finTime >= 0 ? newServer.finFrame : null,
      clientFinTime: newClient.finTime >= 0 ? newClient.finTime : null,
      serverFinTime: newServer.finTime >= 0 ? newServer.finTime : null,
      clientNextSeq: newClient.nextSeq,
      serverNextSeq: newServer.nextSeq,
      timestamps: prev.client.timestamps && prev.server.timestamps,
      lastFrame: prev.lastFrame,
    };
  }
  // Only the facts the tracker copied: the roles of the first FIN are those of the old conversation,
  // which for a reused tuple are almost always the same as the new one's.
  const holder = conv.previousFirstFinBy === Side.Client ? 'client' : conv.previousFirstFinBy === Side.Server ? 'server' : null;
  return {
    id: conv.previousId,
    closeKind: null,
    closeTime: conv.previousCloseTime >= 0 ? conv.previousCloseTime : null,
    closedByFin: conv.previousCloseTime >= 0 && holder !== null,
    timeWaitHolder: holder,
    clientFinFrame: null,
    serverFinFrame: null,
    clientFinTime: null,
    serverFinTime: null,
    clientNextSeq: conv.previousClientNextSeq,
    serverNextSeq: conv.previousServerNextSeq,
    timestamps: conv.previousHadTimestamps,
    lastFrame: null,
  };
}

/**
 * Where the new SYN's ISN lies relative to the old stream of the same host: a negative distance
 * means below the old connection's next sequence number, which a TIME_WAIT socket cannot take as a
 * new connection unless timestamps prove it newer (RFC 6191; Linux tcp_timewait_state_process).
 */
export function isnDistance(isn: number, previous: PreviousConversation): number {
  return seqDiff(isn, previous.clientNextSeq);
}

/** `10.0.0.2:80`: findings that aggregate over one server are keyed by it. */
export function serverKey(conv: Conversation): string {
  return hostPort(endpointSummary(conv.server, conv.ipVersion));
}

export function clientText(conv: Conversation): string {
  return hostPort(endpointSummary(conv.client, conv.ipVersion));
}

/** humanSeconds, but sub-10 ms gaps keep their precision (`0.32 ms`): reuse gaps are often that short. */
export function gapText(seconds: number): string {
  return seconds < 0.01 ? `${Number((seconds * 1000).toFixed(2))} ms` : humanSeconds(seconds);
}
