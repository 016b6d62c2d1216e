import { type Conversation, type Endpoint, Side } from './conversation.js';
import type { CloseKind } from './conversation.js';

/** What a summary reads of an endpoint: a live Endpoint, or one kept in a SummaryStore. */
export type EndpointFacts = Pick<Endpoint,
  'packets' | 'bytes' | 'payloadBytes' | 'retransmissions' | 'keepAlives' | 'zeroWindows' | 'dupAcks' | 'rsts' |
  'mss' | 'windowScale' | 'sackPermitted' | 'timestamps' | 'ttlFirst' | 'port' | 'finTime' | 'ipText' | 'addressWord'>;

/** What a summary reads of a conversation: a live Conversation, or one kept in a SummaryStore. */
export type ConversationFacts = Pick<Conversation,
  'id' | 'input' | 'ipVersion' | 'start' | 'end' | 'firstFrame' | 'lastFrame' | 'midstream' | 'establishedTime' |
  'lastSynTime' | 'closeTime' | 'closeKind' | 'firstFinBy' | 'longestIdle' | 'previousId' | 'previousCloseTime'> & {
  readonly client: EndpointFacts;
  readonly server: EndpointFacts;
};

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

export function endpointSummary(endpoint: Pick<Endpoint, 'ipText' | 'port'>, ipVersion: 4 | 6): EndpointSummary {
  return { ip: endpoint.ipText(ipVersion), port: endpoint.port };
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

function closedBy(conv: ConversationFacts): Side {
  if (conv.closeKind === 'rst-client') return Side.Client;
  if (conv.closeKind === 'rst-server') return Side.Server;
  if (conv.closeKind === 'fin' || conv.firstFinBy !== Side.None) return conv.firstFinBy;
  return Side.None;
}

/*
 * A session keeps up to hundreds of thousands of summaries, and most of their small objects repeat:
 * {client: 0, server: 0} counters, the same options and TTLs, the same server. Summaries share one
 * frozen object for each of those values instead of holding a copy each, which halves their
 * memory. Every cache is bounded: past its limit it starts over (values are then merely not shared).
 */
const INTERN_LIMIT = 1 << 16;

class Interned<T> {
  private map = new Map<number, T>();
  get(key: number, make: () => T): T {
    let value = this.map.get(key);
    if (value === undefined) {
      if (this.map.size >= INTERN_LIMIT) this.map = new Map();
      value = Object.freeze(make());
      this.map.set(key, value);
    }
    return value;
  }
}

const countPairs = new Interned<PerSide<number>>();
const ttlPairs = new Interned<PerSide<number | null>>();
const sideOptions = new Interned<SideOptions>();
const optionPairs = new Interned<PerSide<SideOptions>>();
const servers = new Interned<EndpointSummary>();
const openCloses = new Interned<ConversationSummary['close']>();

type SideOptions = ConversationSummary['options']['client'];

/** Counts below this are shared (pairs of them); larger ones get their own object. */
const SMALL_COUNT = 1 << 20;

function countPair(client: number, server: number): PerSide<number> {
  if (client >= SMALL_COUNT || server >= SMALL_COUNT) return { client, server };
  return countPairs.get(client * SMALL_COUNT + server, () => ({ client, server }));
}

function ttlPair(conv: ConversationFacts): PerSide<number | null> {
  const client = conv.client.ttlFirst;
  const server = conv.server.ttlFirst;
  // ttlFirst is -1 (unknown) or an IPv4 TTL / IPv6 hop limit (0..255).
  return ttlPairs.get((client + 1) * 512 + (server + 1), () => ({
    client: client >= 0 ? client : null,
    server: server >= 0 ? server : null,
  }));
}

/** Index of one side's options: mss (-1..65535), window scale (-1..255), SACK, timestamps. */
function optionsKey(e: EndpointFacts): number {
  return (((e.mss + 1) * 512 + (e.windowScale + 1)) * 2 + (e.sackPermitted ? 1 : 0)) * 2 + (e.timestamps ? 1 : 0);
}

function optionsOf(e: EndpointFacts, key: number): SideOptions {
  return sideOptions.get(key, () => ({
    mss: e.mss >= 0 ? e.mss : null,
    windowScale: e.windowScale >= 0 ? e.windowScale : null,
    sackPermitted: e.sackPermitted,
    timestamps: e.timestamps,
  }));
}

function optionPair(conv: ConversationFacts): PerSide<SideOptions> {
  const c = optionsKey(conv.client);
  const s = optionsKey(conv.server);
  // Keys stay below 2^27: the pair below 2^54, exact as a double.
  return optionPairs.get(c * 2 ** 27 + s, () => ({ client: optionsOf(conv.client, c), server: optionsOf(conv.server, s) }));
}

function serverSummary(conv: ConversationFacts): EndpointSummary {
  const server = conv.server;
  if (conv.ipVersion !== 4) return endpointSummary(server, conv.ipVersion);
  const word = server.addressWord(3);
  return servers.get(word * 65536 + server.port, () => endpointSummary(server, 4));
}

export const CLOSE_KIND_KEYS: Record<CloseKind, number> = {
  'fin': 0, 'rst-client': 1, 'rst-server': 2, 'open-at-end': 3, 'timeout-evicted': 4, 'superseded': 5,
};

function closeOf(conv: ConversationFacts, closeTime: number): ConversationSummary['close'] {
  const kind = conv.closeKind;
  const by = sideName(closedBy(conv));
  if (closeTime >= 0) return { kind, by, time: closeTime };
  return openCloses.get(CLOSE_KIND_KEYS[kind] * 3 + (by === null ? 0 : by === 'client' ? 1 : 2), () => ({ kind, by, time: null }));
}

export function summarize(conv: ConversationFacts): ConversationSummary {
  const handshakeRtt = conv.establishedTime >= 0 && conv.lastSynTime >= 0 ? conv.establishedTime - conv.lastSynTime : -1;
  const closeTime = conv.closeTime >= 0 ? conv.closeTime : conv.client.finTime >= 0 || conv.server.finTime >= 0
    ? Math.max(conv.client.finTime, conv.server.finTime) : -1;
  const client = conv.client;
  const server = conv.server;
  return {
    id: conv.id,
    input: conv.input,
    ipVersion: conv.ipVersion,
    client: endpointSummary(client, conv.ipVersion),
    server: serverSummary(conv),
    start: conv.start,
    end: conv.end,
    firstFrame: conv.firstFrame,
    lastFrame: conv.lastFrame,
    midstream: conv.midstream,
    packets: countPair(client.packets, server.packets),
    bytes: { client: client.bytes, server: server.bytes },
    payloadBytes: { client: client.payloadBytes, server: server.payloadBytes },
    retransmissions: countPair(client.retransmissions, server.retransmissions),
    keepAlives: countPair(client.keepAlives, server.keepAlives),
    zeroWindows: countPair(client.zeroWindows, server.zeroWindows),
    dupAcks: countPair(client.dupAcks, server.dupAcks),
    resets: countPair(client.rsts, server.rsts),
    handshakeRttMs: handshakeRtt >= 0 ? roundMicros(handshakeRtt * 1000) : null,
    close: closeOf(conv, closeTime),
    longestIdleSeconds: roundMicros(conv.longestIdle),
    options: optionPair(conv),
    ttl: ttlPair(conv),
    previousId: conv.previousId > 0 ? conv.previousId : null,
    previousGapSeconds: conv.previousId > 0 && conv.previousCloseTime >= 0 ? roundMicros(conv.start - conv.previousCloseTime) : null,
  };
}

/** Rounds to the microsecond: captures carry no more, and JSON stays readable. */
export function roundMicros(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
