import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { hostPort } from '../../flow/summary.js';
import type { DetectorSpec } from '../detector.js';
import type { EndpointRef } from '../finding.js';
import { CappedGroups, maxServersThreshold } from '../capped.js';
import { LINUX_TIME_WAIT_SECONDS } from '../knowledge.js';
import { endpointsOf, humanSeconds, median, round } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  minConnections: number;
  oneRequestShare: number;
  minOpensPerSecond: number;
  shortLivedSeconds: number;
  phaseRatio: number;
  maxServers: number;
};

/** Distinct client addresses counted per server, and servers counted per client (fan-out). */
const MAX_CLIENTS = 10_000;
const MAX_FANOUT = 10_000;
/** Per-connection records kept over all servers (phases and rates); past it only totals are counted. */
const MAX_RECORDS = 2_000_000;
/** Linux net.ipv4.ip_local_port_range default 32768-60999. */
const LINUX_EPHEMERAL_PORTS = 60999 - 32768 + 1;

/** One finished connection, as far as churn is concerned. */
interface ConnRecord {
  id: number;
  clientPort: number;
  synTime: number;
  synFrame: number;
  requests: number;
  fins: number;
  dataSegments: number;
  shortLived: boolean;
  /** SYN to handshake ACK, -1 when unknown. */
  rtt: number;
}

/** Per server: the connections opened to it in the capture. */
class ServerState {
  connections = 0;
  totalRequests = 0;
  readonly records: ConnRecord[] = [];
  /** Records were not all kept (memory cap): phases and rates use the kept ones. */
  sampled = false;
  readonly clients = new Map<string, number>();
  constructor(readonly server: EndpointRef, readonly key: string) {}
}

/** Per conversation: requests (client payload bursts that start a turn). */
class State {
  requests = 0;
  /** The last payload was the client's: a request in progress. */
  clientTurn = false;
  entry: ServerState | null = null;
}

/** Numbers of one group of connections (all of them, or one phase). */
interface GroupStats {
  connections: number;
  requests: number;
  requestsPerConnectionMedian: number;
  oneRequestShare: number;
  from: number;
  to: number;
  firstSynFrame: number;
  opensPerSecond: number;
  peakOpensPerSecond: number;
  peakWindowStart: number;
  medianOpensPerSecond: number;
  shortLivedShare: number;
  finsPerDataSegment: number;
  handshakeRtt: number;
}

function groupStats(records: readonly ConnRecord[]): GroupStats {
  const times = records.map((r) => r.synTime);
  const from = times[0];
  const to = times[times.length - 1];
  // Peak: most SYNs in any one-second window (two pointers over the sorted times).
  let peak = 0;
  let peakStart = from;
  for (let lo = 0, hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= 1) lo++;
    if (hi - lo + 1 > peak) {
      peak = hi - lo + 1;
      peakStart = times[lo];
    }
  }
  const buckets: number[] = new Array(Math.floor(to - from) + 1).fill(0);
  for (const t of times) buckets[Math.floor(t - from)]++;
  let requests = 0;
  let single = 0;
  let short = 0;
  let fins = 0;
  let data = 0;
  const rtts: number[] = [];
  for (const r of records) {
    requests += r.requests;
    if (r.requests === 1) single++;
    if (r.shortLived) short++;
    fins += r.fins;
    data += r.dataSegments;
    if (r.rtt >= 0) rtts.push(r.rtt);
  }
  const n = records.length;
  return {
    connections: n,
    requests,
    requestsPerConnectionMedian: median(records.map((r) => r.requests)),
    oneRequestShare: single / n,
    from,
    to,
    firstSynFrame: records[0].synFrame,
    opensPerSecond: to > from ? (n - 1) / (to - from) : n,
    peakOpensPerSecond: peak,
    peakWindowStart: peakStart,
    medianOpensPerSecond: median(buckets),
    shortLivedShare: short / n,
    finsPerDataSegment: data > 0 ? fins / data : NaN,
    handshakeRtt: median(rtts),
  };
}

/**
 * Splits the connections (sorted by SYN time) where requests per connection change most: a reuse
 * phase and a churn phase, when they differ by `ratio` or more and each carries a tenth of the
 * requests. Returns the index of the first connection of the second phase, or -1.
 */
function phaseSplit(records: readonly ConnRecord[], ratio: number): number {
  const total = records.reduce((sum, r) => sum + r.requests, 0);
  let before = 0;
  let best = -1;
  let bestScore = Math.log(ratio);
  for (let i = 1; i < records.length; i++) {
    before += records[i - 1].requests;
    const after = total - before;
    if (before < total / 10 || after < total / 10) continue;
    const score = Math.abs(Math.log((before / i) / (after / (records.length - i))));
    if (score >= bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

/** humanSeconds, with sub-millisecond handshakes still readable. */
function duration(seconds: number): string {
  return seconds > 0 && seconds < 0.001 ? `${(seconds * 1000).toFixed(2)} ms` : humanSeconds(seconds);
}

function isoTime(epoch: number): string {
  const date = new Date(Math.round(epoch * 1000));
  // A hostile capture's timestamp can lie outside the range Date can show (toISOString throws).
  return Number.isNaN(date.getTime()) ? `${epoch} s since 1970` : date.toISOString();
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
    connections: 'connections judged (the churn phase when there are phases, else all): opened in the capture (SYN seen), with at least one request',
    requests: 'requests on those connections (a request: client payload at the start or after server payload)',
    requestsPerConnectionMedian: 'median requests per connection',
    oneRequestShare: 'share of connections that carried exactly one request',
    opensPerSecond: 'connections opened per second, first SYN to last',
    peakOpensPerSecond: 'most connections opened within one second (sliding window)',
    peakWindowStart: 'when that second began (seconds since the epoch)',
    medianOpensPerSecond: 'median connections opened per second, over the seconds from the first SYN to the last',
    shortLivedShare: 'share of connections closed within shortLivedSeconds of their SYN',
    finsPerDataSegment: 'FIN segments divided by payload segments on these connections: close to 1 when every request gets its own connection',
    handshakeRttMedianMs: 'median SYN to handshake ACK: the latency every request pays again',
    totalConnections: 'all connections to this server opened in the capture with at least one request',
    totalRequests: 'requests on all of them',
    totalRequestsPerConnectionMedian: 'median requests per connection over all of them',
    clients: 'distinct client addresses',
    topClients: 'clients with the most connections to this server, with the number of distinct servers (ip:port) each opened connections to (fan-out)',
    timeWaitAtPeak: `sockets left in TIME_WAIT (${LINUX_TIME_WAIT_SECONDS} s each) at the peak open rate`,
    ephemeralPortShareAtPeak: 'that number as a share of the default Linux ephemeral port range (28232) of one client address',
    phases: 'when the capture has both, the reuse phase and the churn phase: first and last SYN, first SYN frame, connections, requests, requests per connection, opens per second',
    sampled: 'true when not every connection could be kept for the per-connection figures (memory cap)',
  },
  thresholds: {
    minConnections: { default: 50, unit: 'connections', description: 'connections to one server before anything is said' },
    oneRequestShare: { default: 0.8, unit: 'ratio', description: 'share of connections with a single request that makes it churn' },
    minOpensPerSecond: { default: 5, unit: 'connections/s', description: 'peak open rate for a warning (below: info)' },
    shortLivedSeconds: { default: 1, unit: 's', description: 'a connection closed this soon after its SYN is short-lived' },
    phaseRatio: { default: 3, unit: 'ratio', description: 'requests per new connection between two phases that makes them a reuse phase and a churn phase' },
    maxServers: maxServersThreshold('servers (ip:port) receiving connections'),
  },
  advice: [
    'Reuse connections: HTTP keep-alive with a connection pool, e.g. Node.js `new http.Agent({ keepAlive: true, maxSockets })` (the default agent before Node 19 did not keep connections alive), Python `requests.Session()` instead of `requests.get()`, Java `HttpClient` / Apache `PoolingHttpClientConnectionManager` shared across requests, Go a single shared `http.Client` with the response body read and closed; for databases a connection pool (HikariCP, pgbouncer, SQLAlchemy pool).',
    'Why it matters: every new connection costs a handshake round trip (and a TLS handshake) before the request, and leaves a TIME_WAIT socket for 60 s; at a few hundred connections per second to one ip:port the 28232 default ephemeral ports (net.ipv4.ip_local_port_range) and the SNAT ports of NAT gateways or cloud load balancers run out (EADDRNOTAVAIL, SYN timeouts, resets).',
    'If connections must be short, let the client close first only when it can afford TIME_WAIT, widen `net.ipv4.ip_local_port_range`, enable `net.ipv4.tcp_tw_reuse=1` on the client, and spread load across more destination addresses.',
  ],
  create({ thresholds, slot, report, cap }) {
    const servers = new CappedGroups<ServerState>(cap(thresholds.maxServers, 'servers receiving connections followed', 'connections to further servers not analysed'));
    /** Distinct servers (ip:port) each client address opened connections to. */
    const fanOut = new CappedGroups<Set<string>>(cap(MAX_FANOUT, 'client addresses whose fan-out is counted', 'connections from further client addresses left out of fan-out'));
    const clientsKept = cap(MAX_CLIENTS, 'client addresses counted per server', 'connections from client addresses past that count not told apart');
    const fanOutKept = cap(MAX_FANOUT, 'servers counted per client address (fan-out)', 'connections to servers past that count left out of fan-out');
    const recordsKept = cap(MAX_RECORDS, 'per-connection records kept', 'connections left out of phases and rates (findings say sampled)');

    const entryFor = (conv: Conversation): ServerState | null => {
      const { server } = endpointsOf(conv);
      const key = hostPort(server);
      return servers.obtain(key, () => new ServerState(server, key));
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

    const phaseJson = (g: GroupStats) => ({
      from: round(g.from),
      to: round(g.to),
      firstSynFrame: g.firstSynFrame,
      connections: g.connections,
      requests: g.requests,
      requestsPerConnection: round(g.requests / g.connections),
      opensPerSecond: round(g.opensPerSecond),
    });

    const judge = (entry: ServerState): void => {
      if (entry.connections < thresholds.minConnections || entry.records.length === 0) return;
      const records = [...entry.records].sort((a, b) => a.synTime - b.synTime || a.id - b.id);
      const split = entry.sampled ? -1 : phaseSplit(records, thresholds.phaseRatio);
      let reuse: GroupStats | null = null;
      let churnRecords = records;
      if (split > 0) {
        const first = records.slice(0, split);
        const second = records.slice(split);
        const rpc = (g: ConnRecord[]) => g.reduce((sum, r) => sum + r.requests, 0) / g.length;
        const churnFirst = rpc(first) < rpc(second);
        churnRecords = churnFirst ? first : second;
        reuse = groupStats(churnFirst ? second : first);
      }
      const churn = groupStats(churnRecords);
      if (churn.connections < thresholds.minConnections || churn.oneRequestShare < thresholds.oneRequestShare) return;
      const all = reuse === null ? churn : groupStats(records);

      const clients = [...entry.clients.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      const topClients = clients.slice(0, 5).map(([ip, connections]) => ({ ip, connections, servers: fanOut.get(ip)?.size ?? 1 }));
      const timeWait = churn.peakOpensPerSecond * LINUX_TIME_WAIT_SECONDS;
      const severity = churn.peakOpensPerSecond >= thresholds.minOpensPerSecond ? 'warning' : 'info';
      const pct = (x: number) => `${Math.round(x * 100)}%`;
      const parts: string[] = [];
      if (reuse !== null) {
        const stopped = churn.from > reuse.from;
        parts.push(`Connections to ${entry.key} ${stopped ? 'stopped' : 'started'} being reused at ${isoTime(stopped ? churn.from : reuse.from)}:`,
          `${plural(reuse.connections, 'connection')} carried ${reuse.requests} requests (${round(reuse.requests / reuse.connections)} each) ${stopped ? 'before' : 'after'},`,
          `against ${churn.connections} connections for ${churn.requests} requests (${round(churn.requests / churn.connections)} each, ${pct(churn.oneRequestShare)} with exactly one) ${stopped ? `from frame ${churn.firstSynFrame} on` : 'before'}.`);
      } else {
        parts.push(`${churn.connections} connections to ${entry.key} carried ${churn.requests} requests: ${round(churn.requestsPerConnectionMedian)} per connection (median), ${pct(churn.oneRequestShare)} with exactly one.`);
      }
      parts.push(`New connections opened at ${churn.opensPerSecond.toFixed(1)}/s on average and up to ${churn.peakOpensPerSecond} within one second (median ${round(churn.medianOpensPerSecond)} per calendar second);`,
        `${pct(churn.shortLivedShare)} closed within ${humanSeconds(thresholds.shortLivedSeconds)} of their SYN${Number.isFinite(churn.finsPerDataSegment) ? `, with ${churn.finsPerDataSegment.toFixed(2)} FINs per payload segment (near 1 when every request has its own connection)` : ''}.`);
      if (Number.isFinite(churn.handshakeRtt)) parts.push(`Each request paid a new handshake (${duration(churn.handshakeRtt)} here, a full round trip on a real network, plus TLS if any) before it could be sent.`);
      parts.push(`At the peak rate ${timeWait} sockets sit in TIME_WAIT (${LINUX_TIME_WAIT_SECONDS} s each) on the side that closes first: ${pct(timeWait / LINUX_EPHEMERAL_PORTS)} of one client address's default ephemeral port range towards this server.`);
      report({
        key: entry.key,
        severity,
        title: `${churn.connections} connections for ${churn.requests} requests (${round(churn.requests / churn.connections)} per connection, up to ${churn.peakOpensPerSecond} opens/s)${reuse !== null ? ` after ${plural(reuse.connections, 'reused connection')}` : ''}: ${entry.key}`,
        conversations: churnRecords.slice(0, 10).map((r) => r.id),
        // One client address: the first judged connection's endpoint stands for it (ports vary).
        client: clients.length === 1 ? { ip: clients[0][0], port: churnRecords[0].clientPort } : null,
        server: entry.server,
        start: churn.from,
        end: churn.to,
        evidence: {
          connections: churn.connections,
          requests: churn.requests,
          requestsPerConnectionMedian: round(churn.requestsPerConnectionMedian),
          oneRequestShare: round(churn.oneRequestShare),
          opensPerSecond: round(churn.opensPerSecond),
          peakOpensPerSecond: churn.peakOpensPerSecond,
          peakWindowStart: round(churn.peakWindowStart),
          medianOpensPerSecond: round(churn.medianOpensPerSecond),
          shortLivedShare: round(churn.shortLivedShare),
          finsPerDataSegment: Number.isFinite(churn.finsPerDataSegment) ? round(churn.finsPerDataSegment) : null,
          handshakeRttMedianMs: Number.isFinite(churn.handshakeRtt) ? round(churn.handshakeRtt * 1000) : null,
          totalConnections: entry.connections,
          totalRequests: entry.totalRequests,
          totalRequestsPerConnectionMedian: round(all.requestsPerConnectionMedian),
          clients: entry.clients.size,
          topClients,
          timeWaitAtPeak: timeWait,
          ephemeralPortShareAtPeak: round(timeWait / LINUX_EPHEMERAL_PORTS),
          phases: reuse === null ? null : { reuse: phaseJson(reuse), churn: phaseJson(churn) },
          sampled: entry.sampled,
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
        if (recordsKept.take()) {
          entry.records.push({
            id: conv.id,
            clientPort: conv.client.port,
            synTime: conv.synTime,
            synFrame: conv.synFrame,
            requests: state.requests,
            fins: conv.client.fins + conv.server.fins,
            dataSegments: conv.client.payloadPackets + conv.server.payloadPackets,
            shortLived: conv.closeTime >= 0 && conv.closeTime - conv.synTime < thresholds.shortLivedSeconds,
            rtt: conv.establishedTime >= 0 && conv.lastSynTime >= 0 ? conv.establishedTime - conv.lastSynTime : -1,
          });
        } else {
          entry.sampled = true;
        }
        const { client } = endpointsOf(conv);
        if (entry.clients.has(client.ip) || entry.clients.size < MAX_CLIENTS) {
          entry.clients.set(client.ip, (entry.clients.get(client.ip) ?? 0) + 1);
        } else {
          clientsKept.refuse();
        }
        const reached = fanOut.obtain(client.ip, () => new Set());
        if (reached !== null && !reached.has(entry.key)) {
          if (reached.size < MAX_FANOUT) reached.add(entry.key);
          else fanOutKept.refuse();
        }
      },
      finish() {
        for (const entry of servers.values()) judge(entry);
      },
    };
  },
};
