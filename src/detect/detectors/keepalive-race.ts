import type { Conversation } from '../../flow/conversation.js';
import { Note, type Segment } from '../../flow/segment.js';
import { hostPort } from '../../flow/summary.js';
import type { DetectorSpec } from '../detector.js';
import type { EndpointRef } from '../finding.js';
import { CappedGroups, maxServersThreshold } from '../capped.js';
import { idleTimeoutsBetween } from '../knowledge.js';
import { endpointsOf, humanSeconds, median, round, scratchState } from '../util.js';
import { plural } from '../../english.js';

type Thresholds = {
  minIdleSeconds: number;
  crossSlackSeconds: number;
  maxServers: number;
};

/** Races listed in a finding's evidence (all are counted). */
const MAX_LISTED_RACES = 50;
/** Idle gaps kept per server for the timeout inference. */
const MAX_GAPS = 1000;

interface Race {
  conversation: number;
  client: string;
  clientRef: EndpointRef;
  /** From the end of the last exchange to the request. */
  idleBeforeSeconds: number;
  /** The server's idle gap before its FIN (end of last exchange to FIN). */
  serverIdleSeconds: number;
  /** Request time minus FIN time: negative when the request left before the FIN arrived (crossed). */
  requestAfterFinSeconds: number;
  finFrame: number;
  requestFrame: number;
  rstFrame: number;
  finTime: number;
  requestTime: number;
  rstTime: number;
}

/** Per server (ip:port): the races seen and the idle gaps after which it closed connections. */
class ServerState {
  readonly races: Race[] = [];
  raceCount = 0;
  readonly raceIdles: number[] = [];
  /** Idle gaps (end of the last exchange to the server's FIN) of every idle close, races included. */
  readonly gaps: number[] = [];
  gapCount = 0;
  readonly conversations: number[] = [];
  readonly clients = new Set<string>();
  start = Infinity;
  end = -Infinity;
  constructor(readonly server: EndpointRef, readonly key: string) {}
}

/** Per conversation. */
class State {
  /** Time of the last payload in either direction (end of the last exchange), -1 before any. */
  lastPayloadTime = -1;
  /** Server payload seen (the connection carried at least one response). */
  answeredOnce = false;
  /** Start of the client's current request: first client payload after server payload or idle. */
  requestTime = -1;
  requestFrame = 0;
  /** Quiet start before that request (lastPayloadTime when it began). */
  requestQuietSince = -1;
  requestAnswered = false;
  /** Whether the last payload was the client's (a request in progress). */
  clientSpeaking = false;
  /** The server's FIN: time, frame and the idle gap before it. */
  finTime = -1;
  finFrame = 0;
  finGap = -1;
  /** The request that crossed or followed the FIN, once known. */
  raceRequestTime = -1;
  raceRequestFrame = 0;
  raceQuietSince = -1;
  done = false;
}

/**
 * The state of every conversation that is done: ended by the server before any payload, or decided.
 * Never written; a decided conversation drops its own state for it (it may linger in the tracker).
 */
const DONE = new State();
DONE.done = true;

export const keepaliveRace: DetectorSpec<Thresholds> = {
  id: 'keepalive-race',
  title: 'Request on a pooled connection the server was closing',
  severity: 'warning',
  summary: 'A client reused an idle keep-alive connection just as the server closed it: the request met a FIN and then an RST.',
  explanation: [
    'HTTP clients and database drivers keep idle connections in a pool and reuse them for the next',
    'request. The server (or a proxy in between) closes connections that stay idle longer than its own',
    'timeout: it sends a FIN. If the client picks the connection from its pool at about that moment, its',
    'request crosses the FIN on the wire (or follows it before the client noticed it); the server\'s',
    'socket is already closed, so the request is answered with an RST, and the client sees ECONNRESET or',
    '"socket hang up" on a request that was never processed. It happens whenever the client\'s pool idle',
    'timeout is longer than (or equal to) the server\'s, and looks random because it needs the two to',
    'coincide. This detector finds conversations where the server sent the first FIN after an idle gap',
    '(at least minIdleSeconds since the last payload), the client sent a request that crossed it (sent',
    'less than max(2 x handshake RTT, crossSlackSeconds) before the FIN was seen) or followed it, the',
    'request got no payload back, and the server then reset the connection. Races are reported once per',
    'server (ip:port), since the mismatch is between one client pool setting and one server setting;',
    'the server\'s idle timeout is inferred from the gaps after which it closed idle connections, races',
    'or not.',
  ].join(' '),
  evidence: {
    races: 'number of conversations where a request met the server\'s FIN and was reset',
    conversations: 'those conversations (ids, up to 50 listed in raceList)',
    raceList: 'per race: conversation, client, idle before the request, server idle before its FIN, request time minus FIN time, FIN, request and RST frames',
    clientIdleBeforeReuseSeconds: 'median idle time before the racing requests (end of the last exchange to the request)',
    inferredServerIdleTimeoutSeconds: 'median idle gap after which this server closed idle connections (races and clean idle closes)',
    minServerIdleGapSeconds: 'shortest of those gaps',
    idleClosesObserved: 'idle closes by this server the inference is based on',
    matchingKnownTimeouts: 'documented idle-timeout defaults within 10% of the inferred timeout',
    clients: 'distinct client addresses that hit the race',
  },
  thresholds: {
    minIdleSeconds: { default: 1, unit: 's', description: 'idle gap before the server\'s FIN for it to count as an idle-timeout close' },
    crossSlackSeconds: { default: 0.1, unit: 's', description: 'a request sent this long (or 2 x handshake RTT) before the FIN was seen still crossed it' },
    maxServers: maxServersThreshold('servers (ip:port) closing idle connections'),
  },
  advice: [
    'Make the client pool\'s idle timeout shorter than the server\'s and every proxy\'s on the path (nginx `keepalive_timeout` 75 s by default, AWS ALB idle timeout 60 s, Node.js `http.Server.keepAliveTimeout` 5 s for years): e.g. Node `new http.Agent({ keepAlive: true, timeout: 4000 })` (the agent timeout also closes idle pooled sockets) or agentkeepalive `freeSocketTimeout`, undici `keepAliveTimeout`, Go `http.Transport.IdleConnTimeout`, Apache HttpClient `evictIdleConnections`, HikariCP `idleTimeout`/`maxLifetime` below the database\'s `wait_timeout`.',
    'Or raise the server\'s keep-alive timeout above the client\'s (Node: `server.keepAliveTimeout` above the client pool\'s idle timeout and `server.headersTimeout` above that; behind a load balancer, above the balancer\'s idle timeout).',
    'Retry idempotent requests once on ECONNRESET / "socket hang up" from a reused connection (most HTTP clients do this only for requests they know are idempotent).',
  ],
  create({ thresholds, slot, report, cap }) {
    const servers = new CappedGroups<ServerState>(cap(thresholds.maxServers, 'servers closing idle connections followed', 'idle closes and races at further servers not analysed'));

    const stateOf = (conv: Conversation): State => scratchState(conv, slot, State);

    const serverOf = (conv: Conversation): ServerState | null => {
      const { server } = endpointsOf(conv);
      const key = hostPort(server);
      return servers.obtain(key, () => new ServerState(server, key));
    };

    const crossWindow = (conv: Conversation): number => {
      const rtt = conv.establishedTime >= 0 && conv.lastSynTime >= 0 ? conv.establishedTime - conv.lastSynTime : 0;
      return Math.max(2 * rtt, thresholds.crossSlackSeconds);
    };

    const emit = (entry: ServerState): void => {
      if (entry.raceCount === 0) return;
      const timeout = median(entry.gaps);
      const minGap = entry.gaps.length > 0 ? Math.min(...entry.gaps) : NaN;
      const clientIdle = median(entry.raceIdles);
      const matching = Number.isFinite(timeout) ? idleTimeoutsBetween(timeout * 0.9, timeout * 1.1) : [];
      const first = entry.races[0];
      const crossed = entry.races.filter((r) => r.requestAfterFinSeconds < 0).length;
      const listed = entry.races.length;
      const idles = entry.raceIdles;
      const idleRange = `${secs(Math.min(...idles))} to ${secs(Math.max(...idles))}`;
      const many = entry.raceCount !== 1;
      const parts = [
        `${entry.raceCount} request${many ? 's' : ''} to ${entry.key} went out on ${many ? 'connections' : 'a connection'} the server was closing:`,
        `the client reused ${many ? 'pooled connections' : 'a pooled connection'} after ${many ? `${idleRange} idle (median ${secs(clientIdle)})` : `${secs(clientIdle)} idle`},`,
        crossed === listed
          ? `the server's FIN crossed ${many ? 'each request' : 'the request'} on the wire,`
          : crossed === 0
            ? `the server's FIN had arrived just before ${many ? 'each request' : 'the request'},`
            : `the server's FIN crossed the request on the wire in ${crossed} of ${listed} cases and arrived just before it in the others,`,
        `no response came, and the server answered with an RST (the client sees ECONNRESET or "socket hang up" on a request the server never processed).`,
        `In conversation ${first.conversation}: request at frame ${first.requestFrame}, FIN at frame ${first.finFrame} after ${secs(first.serverIdleSeconds)} of server idle, RST at frame ${first.rstFrame}.`,
      ];
      if (Number.isFinite(timeout)) {
        parts.push(`This server closed ${plural(entry.gapCount, 'idle connection')} after ${secs(timeout)} of idle (median; shortest ${secs(minGap)}): its keep-alive timeout is about ${secs(timeout)}${matching.length > 0 ? ` (matches ${matching.map((m) => m.name).join(', ')})` : ''}, and the client's pool keeps idle connections ${clientIdle >= timeout ? 'longer than that' : 'almost as long'}, so some reuses are bound to meet the close.`);
      }
      report({
        key: entry.key,
        severity: 'warning',
        title: `${plural(entry.raceCount, 'request')} raced the server's idle close (reused after ${secs(clientIdle)} idle${Number.isFinite(timeout) ? `, server closes after ${secs(timeout)}` : ''}): ${entry.key}`,
        conversations: [...entry.conversations],
        client: first.clientRef,
        server: entry.server,
        start: entry.start,
        end: entry.end,
        evidence: {
          races: entry.raceCount,
          conversations: [...entry.conversations],
          raceList: entry.races.map((r) => ({
            conversation: r.conversation,
            client: r.client,
            idleBeforeSeconds: round(r.idleBeforeSeconds),
            serverIdleSeconds: round(r.serverIdleSeconds),
            requestAfterFinSeconds: round(r.requestAfterFinSeconds),
            finFrame: r.finFrame,
            requestFrame: r.requestFrame,
            rstFrame: r.rstFrame,
          })),
          clientIdleBeforeReuseSeconds: round(clientIdle),
          inferredServerIdleTimeoutSeconds: Number.isFinite(timeout) ? round(timeout) : null,
          minServerIdleGapSeconds: Number.isFinite(minGap) ? round(minGap) : null,
          idleClosesObserved: entry.gapCount,
          matchingKnownTimeouts: matching.map((m) => m.name),
          clients: entry.clients.size,
        },
        explanation: parts.join(' '),
        advice: keepaliveRace.advice,
      });
    };

    const recordGap = (conv: Conversation, gap: number): void => {
      const entry = serverOf(conv);
      if (entry === null) return;
      entry.gapCount++;
      if (entry.gaps.length < MAX_GAPS) entry.gaps.push(gap);
    };

    return {
      interest: Note.NewData | Note.Fin | Note.Reset,
      onSegment(conv: Conversation, seg: Segment) {
        const notes = seg.notes;
        const payload = (notes & Note.NewData) !== 0 && seg.payloadLength > 0 && (notes & Note.AfterReset) === 0;
        let state = conv.scratch[slot] as State | undefined;
        if (state === undefined) {
          // Until the first payload only the server's RST or FIN changes the state, and it ends it
          // (nothing answered yet): no state for handshakes (a SYN flood, a scan).
          if (!payload) {
            if (!seg.fromClient && (notes & (Note.Reset | Note.Fin)) !== 0) conv.scratch[slot] = DONE;
            return;
          }
          state = stateOf(conv);
        }
        if (state.done) return;
        if (seg.fromClient) {
          if (!payload) return;
          if (state.finTime >= 0) {
            // Data after the server's FIN: the client wrote on a connection the server had closed.
            if (state.raceRequestTime < 0 && state.answeredOnce) {
              state.raceRequestTime = seg.time;
              state.raceRequestFrame = seg.frame;
              state.raceQuietSince = state.lastPayloadTime;
            }
          } else if (!state.clientSpeaking) {
            state.requestTime = seg.time;
            state.requestFrame = seg.frame;
            state.requestQuietSince = state.lastPayloadTime;
            state.requestAnswered = false;
          }
          state.clientSpeaking = true;
          if (state.finTime < 0) state.lastPayloadTime = seg.time;
          return;
        }
        // From the server.
        if ((notes & Note.Reset) !== 0) {
          conv.scratch[slot] = DONE;
          if (state.raceRequestTime < 0 || state.finTime < 0) return;
          const quietSince = state.raceQuietSince;
          const idleBefore = state.raceRequestTime - quietSince;
          if (quietSince < 0 || idleBefore < thresholds.minIdleSeconds) return;
          const entry = serverOf(conv);
          if (entry === null) return;
          const { client } = endpointsOf(conv);
          const race: Race = {
            conversation: conv.id,
            client: hostPort(client),
            clientRef: client,
            idleBeforeSeconds: idleBefore,
            serverIdleSeconds: state.finGap,
            requestAfterFinSeconds: state.raceRequestTime - state.finTime,
            finFrame: state.finFrame,
            requestFrame: state.raceRequestFrame,
            rstFrame: seg.frame,
            finTime: state.finTime,
            requestTime: state.raceRequestTime,
            rstTime: seg.time,
          };
          entry.raceCount++;
          if (entry.raceIdles.length < MAX_GAPS) entry.raceIdles.push(idleBefore);
          if (entry.races.length < MAX_LISTED_RACES) {
            entry.races.push(race);
            entry.conversations.push(conv.id);
          }
          entry.clients.add(client.ip);
          entry.start = Math.min(entry.start, race.requestTime, race.finTime);
          entry.end = Math.max(entry.end, race.rstTime);
          emit(entry);
          return;
        }
        if (payload) {
          state.answeredOnce = true;
          state.clientSpeaking = false;
          state.requestAnswered = true;
          if (state.finTime >= 0) {
            // The server answered after its FIN (a half-close): whatever came before was served.
            conv.scratch[slot] = DONE;
            return;
          }
          state.lastPayloadTime = seg.time;
        }
        if ((notes & Note.Fin) !== 0 && state.finTime < 0) {
          state.finTime = seg.time;
          state.finFrame = seg.frame;
          if (payload || !state.answeredOnce) {
            // A response that closes (Connection: close), or a close before any exchange.
            conv.scratch[slot] = DONE;
            return;
          }
          // A client request still unanswered that left shortly before the FIN crossed it.
          const crossing = state.clientSpeaking && !state.requestAnswered && state.requestTime >= 0 &&
            seg.time - state.requestTime <= crossWindow(conv);
          const quietSince = crossing ? state.requestQuietSince : state.lastPayloadTime;
          if (quietSince < 0) return;
          const gap = seg.time - quietSince;
          state.finGap = gap;
          if (gap >= thresholds.minIdleSeconds) recordGap(conv, gap);
          if (crossing) {
            state.raceRequestTime = state.requestTime;
            state.raceRequestFrame = state.requestFrame;
            state.raceQuietSince = state.requestQuietSince;
          } else if (state.clientSpeaking) {
            // The server closed while a request was outstanding for a while: not a pool race.
            conv.scratch[slot] = DONE;
          }
        }
      },
      finish() {
        for (const entry of servers.values()) emit(entry);
      },
    };
  },
};

/** Seconds with millisecond precision: the race is about a few milliseconds around a timeout. */
function secs(seconds: number): string {
  return seconds < 60 ? `${seconds.toFixed(3)} s` : humanSeconds(seconds);
}
