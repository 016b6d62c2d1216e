import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { hostPort } from '../../flow/summary.js';
import type { DetectorSpec } from '../detector.js';
import type { EndpointRef } from '../finding.js';
import { LINUX_TIME_WAIT_SECONDS } from '../knowledge.js';
import { endpointsOf, humanSeconds, median, round } from '../util.js';

type Thresholds = {
  minConnections: number;
  oneRequestShare: number;
  minOpensPerSecond: number;
  shortLivedSeconds: number;
  phaseRatio: number;
};

/** Servers followed at once; past it new servers are not followed (bounded memory). */
const MAX_SERVERS = 100_000;
/** Distinct client addresses counted per server. */
const MAX_CLIENTS = 10_000;
/** Requests-per-connection histogram buckets; the last one holds everything above. */
const REQUEST_BUCKETS = 64;
/** Linux net.ipv4.ip_local_port_range default 32768-60999. */
const LINUX_EPHEMERAL_PORTS = 60999 - 32768 + 1;

/** Per server: connections opened to it, how many requests each carried, and when they opened. */
class ServerState {
  connections = 0;
  readonly requestHistogram = new Uint32Array(REQUEST_BUCKETS + 1);
  totalRequests = 0;
  shortLived = 0;
  fins = 0;
  dataSegments = 0;
  readonly handshakeRtts: number[] = [];
  /** Per capture second (floor of time): connections opened and requests started. */
  readonly opens = new Map<number, number>();
  readonly requests = new Map<number, number>();
  readonly clients = new Map<string, number>();
  firstOpen = Infinity;
  lastOpen = -Infinity;
  readonly sampleConversations: number[] = [];
  constructor(readonly server: EndpointRef, readonly key: string) {}
}

/** Per conversation: requests (client payload bursts that start a turn) and where they are counted. */
class State {
  requests = 0;
  /** The last payload was the client's: a request in progress. */
  clientTurn = false;
  entry: ServerState | null = null;
}

interface PhaseStats {
  from: number;
  to: number;
  opens: number;
  requests: number;
  requestsPerConnection: number;
}

function bump<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** Median of a histogram whose bucket i holds the count of value i. */
function histogramMedian(hist: Uint32Array, total: number): number {
  if (total === 0) return NaN;
  const lowIndex = Math.floor((total - 1) / 2);
  const highIndex = Math.floor(total / 2);
  let seen = 0;
  let low = NaN;
  for (let i = 0; i < hist.length; i++) {
    const next = seen + hist[i];
    if (Number.isNaN(low) && lowIndex < next) low = i;
    if (highIndex < next) return (low + i) / 2;
    seen = next;
  }
  return low;
}

export const connChurn: DetectorSpec<Thresholds> = {
  id: 'conn-churn',
  title: 'Connections not reused (connection churn)',
  severity: 'warning',
  summary: 'A new TCP connection for (nearly) every request to the same server: no keep-alive or pooling.',
  explanation: [
    'A client that opens a new connection for each request pays a handshake round trip (and a TLS',
    'handshake) per request, and leaves a socket in TIME_WAIT for 60 s on whichever side closed first',
    'for every one of them. At a few hundred requests per second to one server address that exhausts',
    'the ephemeral port range (28232 ports on Linux by default: about 470 new connections per second per',
    'destination) and the SNAT ports of a NAT gateway or cloud load balancer, and connections start to',
    'fail with EADDRNOTAVAIL, SYN timeouts or resets. In the flag table the tell-tale is a FIN count close',
    'to the count of data segments. This detector counts, per conversation, the requests it carried (a',
    'client payload burst at the start or after server payload), and per server address (ip:port) the',
    'connections opened in the capture (SYN seen), the requests per connection, the open rate per second,',
    'the clients and the short-lived connections. A server with at least minConnections connections of',
    'which at least oneRequestShare carried a single request is reported: as a warning when the opens',
    'reach minOpensPerSecond at the peak, as info otherwise. When the capture has a phase with reuse and',
    'a phase without (requests per new connection differing by phaseRatio or more), both phases are',
    'compared and the churn phase alone is judged.',
  ].join(' '),
  evidence: {
    connections: 'connections to this server opened in the capture that carried at least one request',
    requestsPerConnectionMedian: 'median requests per connection (a request: client payload at the start or after server payload)',
    oneRequestShare: 'share of connections that carried exactly one request',
    requests: 'requests on those connections',
    peakOpensPerSecond: 'most connections opened in one second',
    medianOpensPerSecond: 'median connections opened per second over the seconds from the first open to the last',
    peakSecond: 'start of the peak second (seconds since the epoch)',
    shortLivedShare: `share of connections closed within shortLivedSeconds of their SYN`,
    finsPerDataSegment: 'FIN segments divided by payload segments on these connections: close to 1 when every request gets its own connection',
    handshakeRttMedianMs: 'median SYN to handshake ACK: the latency every request pays again',
    clients: 'distinct client addresses',
    topClients: 'clients with the most connections to this server',
    timeWaitAtPeak: `sockets left in TIME_WAIT (${LINUX_TIME_WAIT_SECONDS} s each) at the peak open rate`,
    ephemeralPortShareAtPeak: 'that number as a share of the default Linux ephemeral port range (28232), for a single client address',
    phases: 'when the capture has both: the reuse phase and the churn phase, with requests per new connection',
    sampleConversations: 'a few of the connections',
  },
  thresholds: {
    minConnections: { default: 50, unit: 'connections', description: 'connections to one server before anything is said' },
    oneRequestShare: { default: 0.8, unit: 'ratio', description: 'share of connections with a single request that makes it churn' },
    minOpensPerSecond: { default: 5, unit: 'connections/s', description: 'peak open rate for a warning (below: info)' },
    shortLivedSeconds: { default: 1, unit: 's', description: 'a connection closed this soon after its SYN is short-lived' },
    phaseRatio: { default: 3, unit: 'ratio', description: 'requests per new connection between two phases that makes them a reuse phase and a churn phase' },
  },
  advice: [
    'Reuse connections: HTTP keep-alive with a connection pool, e.g. Node.js `new http.Agent({ keepAlive: true, maxSockets })` (the default agent before Node 19 did not keep connections alive), Python `requests.Session()` instead of `requests.get()`, Java `HttpClient` / Apache `PoolingHttpClientConnectionManager` shared across requests, Go a single shared `http.Client` with the response body read and closed; for databases a connection pool (HikariCP, pgbouncer, SQLAlchemy pool).',
    'Why it matters: every new connection costs a handshake round trip (and a TLS handshake) before the request, and leaves a TIME_WAIT socket for 60 s; at a few hundred connections per second to one ip:port the 28232 default ephemeral ports (net.ipv4.ip_local_port_range) and the SNAT ports of NAT gateways or cloud load balancers run out (EADDRNOTAVAIL, SYN timeouts, resets).',
    'If connections must be short, let the client close first only when it can afford TIME_WAIT, widen `net.ipv4.ip_local_port_range`, enable `net.ipv4.tcp_tw_reuse=1` on the client, and spread load across more destination addresses.',
  ],
  create({ thresholds, slot, report }) {
    const servers = new Map<string, ServerState>();

    const entryFor = (conv: Conversation): ServerState | null => {
      const { server } = endpointsOf(conv);
      const key = hostPort(server);
      let entry = servers.get(key);
      if (entry === undefined) {
        if (servers.size >= MAX_SERVERS) return null;
        entry = new ServerState(server, key);
        servers.set(key, entry);
      }
      return entry;
    };

    const stateOf = (conv: Conversation): State | null => {
      let state = conv.scratch[slot] as State | undefined;
      if (state === undefined) {
        state = new State();
        // Only connections whose opening the capture saw are counted.
        if (conv.synTime >= 0 && !conv.midstream) state.entry = entryFor(conv);
        conv.scratch[slot] = state;
      }
      return state.entry === null ? null : state;
    };

    /** Splits the server's seconds where requests per new connection change most, if they do. */
    const phasesOf = (entry: ServerState): [PhaseStats, PhaseStats] | null => {
      const seconds = [...new Set([...entry.opens.keys(), ...entry.requests.keys()])].sort((a, b) => a - b);
      if (seconds.length < 2) return null;
      const totalOpens = [...entry.opens.values()].reduce((a, b) => a + b, 0);
      const totalRequests = [...entry.requests.values()].reduce((a, b) => a + b, 0);
      let opensBefore = 0;
      let requestsBefore = 0;
      let best: { index: number; score: number } | null = null;
      for (let i = 0; i < seconds.length - 1; i++) {
        opensBefore += entry.opens.get(seconds[i]) ?? 0;
        requestsBefore += entry.requests.get(seconds[i]) ?? 0;
        const opensAfter = totalOpens - opensBefore;
        const requestsAfter = totalRequests - requestsBefore;
        // Each phase needs real traffic: a tenth of the requests and a connection.
        if (opensBefore === 0 || opensAfter === 0) continue;
        if (requestsBefore < totalRequests / 10 || requestsAfter < totalRequests / 10) continue;
        const score = Math.abs(Math.log((requestsBefore / opensBefore) / (requestsAfter / opensAfter)));
        if (best === null || score > best.score) best = { index: i, score };
      }
      if (best === null || best.score < Math.log(thresholds.phaseRatio)) return null;
      const phase = (from: number, to: number): PhaseStats => {
        let opens = 0;
        let requests = 0;
        for (let i = from; i <= to; i++) {
          opens += entry.opens.get(seconds[i]) ?? 0;
          requests += entry.requests.get(seconds[i]) ?? 0;
        }
        return { from: seconds[from], to: seconds[to] + 1, opens, requests, requestsPerConnection: round(requests / opens) };
      };
      return [phase(0, best.index), phase(best.index + 1, seconds.length - 1)];
    };

    const judge = (entry: ServerState): void => {
      const n = entry.connections;
      if (n < thresholds.minConnections) return;
      const phases = phasesOf(entry);
      const churnPhase = phases === null ? null : phases[0].requestsPerConnection > phases[1].requestsPerConnection ? phases[1] : phases[0];
      const reusePhase = phases === null ? null : churnPhase === phases[0] ? phases[1] : phases[0];
      const single = entry.requestHistogram[1];
      const oneShare = single / n;
      const medianRequests = histogramMedian(entry.requestHistogram, n);
      let churnOpens = n;
      let churnShare = oneShare;
      if (churnPhase !== null) {
        // The churn phase alone: requests per new connection stands in for the per-connection count.
        churnOpens = churnPhase.opens;
        churnShare = Math.min(1, 1 / Math.max(churnPhase.requestsPerConnection, 1e-9));
      }
      if (churnOpens < thresholds.minConnections || churnShare < thresholds.oneRequestShare) return;

      const seconds = [...entry.opens.keys()].sort((a, b) => a - b);
      const perSecond: number[] = [];
      for (let s = seconds[0]; s <= seconds[seconds.length - 1]; s++) perSecond.push(entry.opens.get(s) ?? 0);
      let peak = 0;
      let peakSecond = seconds[0];
      for (const s of seconds) {
        const count = entry.opens.get(s) ?? 0;
        if (count > peak) {
          peak = count;
          peakSecond = s;
        }
      }
      const medianOpens = median(perSecond);
      const shortShare = entry.shortLived / n;
      const finsPerData = entry.dataSegments > 0 ? entry.fins / entry.dataSegments : NaN;
      const rtt = median(entry.handshakeRtts);
      const topClients = [...entry.clients.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 5);
      const timeWait = peak * LINUX_TIME_WAIT_SECONDS;
      const severity = peak >= thresholds.minOpensPerSecond ? 'warning' : 'info';
      const parts = [
        `${n} connections to ${entry.key} carried ${entry.totalRequests} requests: ${round(medianRequests)} per connection (median), ${Math.round(oneShare * 100)}% with exactly one.`,
        `Opens peaked at ${peak} per second (median ${round(medianOpens)}/s over ${perSecond.length} s); ${Math.round(shortShare * 100)}% closed within ${humanSeconds(thresholds.shortLivedSeconds)} of their SYN${Number.isFinite(finsPerData) ? `, and there were ${round(finsPerData)} FINs per payload segment` : ''}.`,
      ];
      if (phases !== null && churnPhase !== null && reusePhase !== null) {
        parts.push(`The capture shows both behaviours: ${reusePhase.requestsPerConnection} requests per new connection from ${new Date(reusePhase.from * 1000).toISOString()} (${reusePhase.opens} connections, ${reusePhase.requests} requests) against ${churnPhase.requestsPerConnection} from ${new Date(churnPhase.from * 1000).toISOString()} (${churnPhase.opens} connections, ${churnPhase.requests} requests): the client ${churnPhase.from > reusePhase.from ? 'stopped' : 'started'} reusing connections.`);
      }
      if (Number.isFinite(rtt)) parts.push(`Each request paid a new handshake of ${humanSeconds(rtt)} before it could be sent.`);
      parts.push(`At the peak rate, ${timeWait} sockets sit in TIME_WAIT (${LINUX_TIME_WAIT_SECONDS} s each), ${Math.round((timeWait / LINUX_EPHEMERAL_PORTS) * 100)}% of one client address's default ephemeral port range.`);
      report({
        key: entry.key,
        severity,
        title: `${n} connections for ${entry.totalRequests} requests (${round(medianRequests)} per connection, peak ${peak} opens/s): ${entry.key}`,
        conversations: [...entry.sampleConversations],
        client: topClients.length === 1 ? { ip: topClients[0][0], port: 0 } : null,
        server: entry.server,
        start: entry.firstOpen,
        end: entry.lastOpen,
        evidence: {
          connections: n,
          requests: entry.totalRequests,
          requestsPerConnectionMedian: round(medianRequests),
          oneRequestShare: round(oneShare),
          peakOpensPerSecond: peak,
          peakSecond,
          medianOpensPerSecond: round(medianOpens),
          shortLivedShare: round(shortShare),
          finsPerDataSegment: Number.isFinite(finsPerData) ? round(finsPerData) : null,
          handshakeRttMedianMs: Number.isFinite(rtt) ? round(rtt * 1000) : null,
          clients: entry.clients.size,
          topClients: topClients.map(([ip, connections]) => ({ ip, connections })),
          timeWaitAtPeak: timeWait,
          ephemeralPortShareAtPeak: round(timeWait / LINUX_EPHEMERAL_PORTS),
          phases: phases === null ? null : { reuse: reusePhase, churn: churnPhase },
          sampleConversations: [...entry.sampleConversations],
        },
        explanation: parts.join(' '),
        advice: connChurn.advice,
      });
    };

    return {
      interest: Note.NewData,
      onSegment(conv: Conversation, seg: Segment) {
        if (seg.payloadLength === 0 || (seg.notes & Note.AfterReset) !== 0) return;
        const state = stateOf(conv);
        if (state === null) return;
        if (seg.fromClient) {
          if (!state.clientTurn) {
            state.clientTurn = true;
            state.requests++;
            bump((state.entry as ServerState).requests, Math.floor(seg.time));
          }
        } else {
          state.clientTurn = false;
        }
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as State | undefined;
        if (state === undefined || state.entry === null || state.requests === 0) return;
        const entry = state.entry;
        entry.connections++;
        entry.totalRequests += state.requests;
        entry.requestHistogram[Math.min(state.requests, REQUEST_BUCKETS)]++;
        bump(entry.opens, Math.floor(conv.synTime));
        entry.firstOpen = Math.min(entry.firstOpen, conv.synTime);
        entry.lastOpen = Math.max(entry.lastOpen, conv.synTime);
        if (conv.closeTime >= 0 && conv.closeTime - conv.synTime < thresholds.shortLivedSeconds) entry.shortLived++;
        entry.fins += conv.client.fins + conv.server.fins;
        entry.dataSegments += conv.client.payloadPackets + conv.server.payloadPackets;
        if (conv.establishedTime >= 0 && conv.lastSynTime >= 0 && entry.handshakeRtts.length < 10_000) {
          entry.handshakeRtts.push(conv.establishedTime - conv.lastSynTime);
        }
        const { client } = endpointsOf(conv);
        if (entry.clients.has(client.ip) || entry.clients.size < MAX_CLIENTS) bump(entry.clients, client.ip);
        if (entry.sampleConversations.length < 10) entry.sampleConversations.push(conv.id);
      },
      finish() {
        for (const entry of servers.values()) judge(entry);
      },
    };
  },
};
