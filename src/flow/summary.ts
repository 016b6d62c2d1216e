import { formatAddress } from '../decode/address.js';
import { type Conversation, type Endpoint, Side } from './conversation.js';
import type { CloseKind } from './conversation.js';

/**
 * The plain-data form of a finished conversation: what is kept once its live state is released,
 * and what JSON reports contain (the contract is documented in the README, schemaVersion 1).
 */
export interface EndpointSummary {
  ip: string;
  port: number;
}

export interface PerSide<T> {
  client: T;
  server: T;
}

export interface ConversationSummary {
  id: number;
  input: number;
  ipVersion: 4 | 6;
  client: EndpointSummary;
  server: EndpointSummary;
  start: number;
  end: number;
  firstFrame: number;
  lastFrame: number;
  midstream: boolean;
  packets: PerSide<number>;
  bytes: PerSide<number>;
  payloadBytes: PerSide<number>;
  retransmissions: PerSide<number>;
  keepAlives: PerSide<number>;
  zeroWindows: PerSide<number>;
  dupAcks: PerSide<number>;
  resets: PerSide<number>;
  /** SYN to the ACK completing the handshake, as seen at the capture point; null without one. */
  handshakeRttMs: number | null;
  close: { kind: CloseKind; by: 'client' | 'server' | null; time: number | null };
  longestIdleSeconds: number;
  options: PerSide<{ mss: number | null; windowScale: number | null; sackPermitted: boolean; timestamps: boolean }>;
  ttl: PerSide<number | null>;
  previousId: number | null;
  /** Seconds between the previous conversation on this tuple closing and this one's first packet. */
  previousGapSeconds: number | null;
}

export function endpointSummary(endpoint: Endpoint, ipVersion: 4 | 6): EndpointSummary {
  return { ip: formatAddress(endpoint.addr, ipVersion), port: endpoint.port };
}

/** `10.0.0.1:443` or `[2001:db8::1]:443`. */
export function hostPort(endpoint: EndpointSummary): string {
  return endpoint.ip.includes(':') ? `[${endpoint.ip}]:${endpoint.port}` : `${endpoint.ip}:${endpoint.port}`;
}

function sideName(side: Side): 'client' | 'server' | null {
  if (side === Side.Client) return 'client';
  if (side === Side.Server) return 'server';
  return null;
}

function perSide<T>(conv: Conversation, pick: (endpoint: Endpoint) => T): PerSide<T> {
  return { client: pick(conv.client), server: pick(conv.server) };
}

function closedBy(conv: Conversation): Side {
  if (conv.closeKind === 'rst-client') return Side.Client;
  if (conv.closeKind === 'rst-server') return Side.Server;
  if (conv.closeKind === 'fin' || conv.firstFinBy !== Side.None) return conv.firstFinBy;
  return Side.None;
}

export function summarize(conv: Conversation): ConversationSummary {
  const handshakeRtt = conv.establishedTime >= 0 && conv.lastSynTime >= 0 ? conv.establishedTime - conv.lastSynTime : -1;
  const closeTime = conv.closeTime >= 0 ? conv.closeTime : conv.client.finTime >= 0 || conv.server.finTime >= 0
    ? Math.max(conv.client.finTime, conv.server.finTime) : -1;
  return {
    id: conv.id,
    input: conv.input,
    ipVersion: conv.ipVersion,
    client: endpointSummary(conv.client, conv.ipVersion),
    server: endpointSummary(conv.server, conv.ipVersion),
    start: conv.start,
    end: conv.end,
    firstFrame: conv.firstFrame,
    lastFrame: conv.lastFrame,
    midstream: conv.midstream,
    packets: perSide(conv, (e) => e.packets),
    bytes: perSide(conv, (e) => e.bytes),
    payloadBytes: perSide(conv, (e) => e.payloadBytes),
    retransmissions: perSide(conv, (e) => e.retransmissions),
    keepAlives: perSide(conv, (e) => e.keepAlives),
    zeroWindows: perSide(conv, (e) => e.zeroWindows),
    dupAcks: perSide(conv, (e) => e.dupAcks),
    resets: perSide(conv, (e) => e.rsts),
    handshakeRttMs: handshakeRtt >= 0 ? roundMicros(handshakeRtt * 1000) : null,
    close: { kind: conv.closeKind, by: sideName(closedBy(conv)), time: closeTime >= 0 ? closeTime : null },
    longestIdleSeconds: roundMicros(conv.longestIdle),
    options: perSide(conv, (e) => ({
      mss: e.mss >= 0 ? e.mss : null,
      windowScale: e.windowScale >= 0 ? e.windowScale : null,
      sackPermitted: e.sackPermitted,
      timestamps: e.timestamps,
    })),
    ttl: perSide(conv, (e) => (e.ttlFirst >= 0 ? e.ttlFirst : null)),
    previousId: conv.previousId > 0 ? conv.previousId : null,
    previousGapSeconds: conv.previousId > 0 && conv.previousCloseTime >= 0 ? roundMicros(conv.start - conv.previousCloseTime) : null,
  };
}

/** Rounds to the microsecond: captures carry no more, and JSON stays readable. */
export function roundMicros(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
