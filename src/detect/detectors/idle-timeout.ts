import type { Conversation } from '../../flow/conversation.js';
import type { Segment } from '../../flow/segment.js';
import { hostPort } from '../../flow/summary.js';
import type { DetectorSpec } from '../detector.js';
import {
  bracketOf,
  DEFAULT_FAIL_RETRIES,
  DEFAULT_MIN_GAP_SECONDS,
  DEFAULT_MIN_SURVIVED_GAP_SECONDS,
  type GapGroup,
  type GapResult,
  GapState,
  IDLE_GAP_INTEREST,
  IdleGapBook,
} from '../idle-gaps.js';
import { maxServersThreshold } from '../capped.js';
import { humanSeconds, round } from '../util.js';

type Thresholds = {
  minGapSeconds: number;
  minSurvivedGapSeconds: number;
  failRetries: number;
  maxServers: number;
};

function gapEvidence(result: GapResult): Record<string, unknown> {
  return {
    conversation: result.conversation,
    gapSeconds: round(result.gapSeconds),
    direction: result.direction,
    probe: result.probe,
    frame: result.frame,
    time: round(result.time),
    outcome: result.how,
    retries: result.retries,
    resetBy: result.resetBy,
    resolvedFrame: result.resolvedFrame > 0 ? result.resolvedFrame : null,
    resolvedTime: round(result.resolvedTime),
    lastTime: round(result.lastTime),
  };
}

function failureText(result: GapResult): string {
  const what = result.probe ? 'a keep-alive probe' : 'data';
  const after = `after ${humanSeconds(result.gapSeconds)} of silence, the ${result.direction} sent ${what} (frame ${result.frame})`;
  if (result.how === 'reset') {
    return `${after} and got an RST from the ${result.resetBy === result.direction ? `${result.direction} itself` : result.resetBy ?? 'peer'} (frame ${result.resolvedFrame}) instead of an answer`;
  }
  if (result.how === 'unanswered-probes') return `${after} and ${result.retries} further probes went unanswered`;
  return `${after} and retransmitted it ${result.retries} times without an answer`;
}

export const idleTimeout: DetectorSpec<Thresholds> = {
  id: 'idle-timeout',
  title: 'Middlebox idle timeout',
  severity: 'warning',
  summary: 'Connections that sat idle fail on their next packet: a NAT, firewall or load balancer forgot them; the bracket says after how long.',
  explanation: [
    'Stateful devices on the path (NAT gateways, firewalls, conntrack, L4 and L7 load balancers) drop the',
    'state of a connection that stays silent longer than their idle timeout. The endpoints are not told:',
    'the next packet either vanishes (the sender retransmits with backoff into the void) or is answered',
    'by an RST from the device or from a server that never saw the flow. This detector looks at every',
    'idle gap on a connection nobody had started closing, and at the fate of the first packet after it',
    'that needs an answer (data, a FIN, a keep-alive or persist probe): it survived when the peer',
    'acknowledged it (counted from minSurvivedGapSeconds of silence); it failed when an RST came back',
    'first or it was retransmitted failRetries times unanswered (counted from minGapSeconds, so that',
    'ordinary loss after a short pause is not taken for a timeout). Per server address, the longest gap that survived and',
    'the shortest gap that failed bracket the idle timeout, which is then compared with known defaults',
    '(AWS ALB 60 s, NLB/NAT gateway 350 s, Azure LB 240 s, GCP Cloud NAT 1200 s, conntrack 5 days).',
    'It needs at least one failure; with no surviving gap the bracket is open below.',
  ].join(' '),
  evidence: {
    serverIp: 'server address the gap tests were made against',
    lowerBoundSeconds: 'longest idle gap after which the next packet was answered (null: open below)',
    upperBoundSeconds: 'shortest idle gap after which the next packet failed',
    matchingDefaults: 'known middlebox idle-timeout defaults inside the bracket',
    failedGaps: 'number of gap tests that failed',
    survivedGaps: 'number of gap tests (gaps of at least minSurvivedGapSeconds) that survived',
    contradictingSurvivals: 'gaps at least as long as the shortest failure that still survived (not explained by one timeout)',
    shortestFailure: 'the failed gap test that sets the upper bound: conversation, gap, first frame after it, outcome, retries, RST sender',
    longestSurvival: 'the surviving gap test that sets the lower bound',
    failures: 'every failed gap test (up to 16)',
  },
  thresholds: {
    minGapSeconds: { default: DEFAULT_MIN_GAP_SECONDS, unit: 's', description: 'silence before a packet whose failure counts as an idle-timeout failure' },
    minSurvivedGapSeconds: { default: DEFAULT_MIN_SURVIVED_GAP_SECONDS, unit: 's', description: 'silence before an answered packet that counts towards the lower bound' },
    failRetries: { default: DEFAULT_FAIL_RETRIES, unit: 'segments', description: 'unanswered retransmissions (or further probes) of the first packet after a gap that make it a failure' },
    maxServers: maxServersThreshold('server addresses with idle-gap tests'),
  },
  advice: [
    'Keep the connection from going idle for that long: TCP keepalive (SO_KEEPALIVE with TCP_KEEPIDLE, or net.ipv4.tcp_keepalive_time system-wide, default 7200 s) or application heartbeats with an interval below the lower bound. L7 balancers (AWS ALB, nginx) are refreshed only by payload bytes: use application pings there.',
    'Or raise the device\'s idle timeout above the longest idle period the application needs: AWS ALB `idle_timeout.timeout_seconds`, AWS NLB `tcp.idle_timeout.seconds`, Azure LB `idleTimeoutInMinutes`, GCP Cloud NAT `tcpEstablishedIdleTimeoutSec`, Linux `net.netfilter.nf_conntrack_tcp_timeout_established`.',
    'Make clients fail fast and reconnect rather than hang in retransmissions: TCP_USER_TIMEOUT on the socket, connection-pool validation or max idle time below the bound.',
  ],
  create({ thresholds, slot, report, live, cap }) {
    const emit = (group: GapGroup): void => {
      const shortest = group.shortestFailed;
      if (shortest === null) return;
      const bracket = bracketOf(group);
      const high = bracket.high as number;
      const low = bracket.low;
      const failures = [...group.failed].sort((a, b) => a.gapSeconds - b.gapSeconds);
      const conversations = [...new Set([...failures.map((f) => f.conversation), ...group.conversations])];
      const matching = bracket.matches.map((d) => `${d.name} (${humanSeconds(d.seconds)})`);
      const range = low === null ? `of at most ${humanSeconds(high)}` : `between ${humanSeconds(low)} and ${humanSeconds(high)}`;
      const parts = [
        `Connections to ${group.serverIp}: ${failureText(shortest)}.`,
        group.failedCount > 1 ? `${group.failedCount} idle gaps in all ended this way (shortest ${humanSeconds(high)}).` : '',
        group.longestSurvived !== null && low !== null
          ? `The longest idle gap that survived was ${humanSeconds(low)} (conversation ${group.longestSurvived.conversation}, frame ${group.longestSurvived.frame}${group.longestSurvived.probe ? ', a keep-alive probe' : ''}), so a device on the path has an idle timeout ${range}.`
          : `No idle gap of ${humanSeconds(thresholds.minSurvivedGapSeconds)} or more survived in this capture, so the bracket is open below: a device on the path has an idle timeout ${range}.`,
        matching.length > 0 ? `Known defaults in that range: ${matching.join(', ')}.` : 'No known default lies in that range: look for a configured timeout.',
        bracket.contradicting > 0 ? `${bracket.contradicting} gaps at least ${humanSeconds(high)} long survived, so not every path (or not every failure) is explained by one idle timeout.` : '',
      ];
      const safe = low !== null ? low : high / 2;
      const advice = [
        `Send keepalives or heartbeats more often than every ${humanSeconds(safe)} (e.g. TCP_KEEPIDLE=${Math.max(1, Math.floor(safe * 0.8))}, TCP_KEEPINTVL=${Math.max(1, Math.floor(safe * 0.2))}): ${low !== null ? 'gaps that long survived here' : 'half the shortest failed gap, as nothing survived'}.${bracket.matches.some((d) => !d.refreshedByKeepalive) ? ' An L7 balancer matches the bracket: TCP keepalive does not refresh it, send application-level pings.' : ''}`,
        ...idleTimeout.advice.slice(1),
      ];
      report({
        key: group.serverIp,
        severity: 'warning',
        title: `Idle connections to ${group.serverIp} fail after ${humanSeconds(high)}: middlebox idle timeout ${range}`,
        conversations,
        client: shortest.client,
        server: shortest.server,
        start: shortest.time - shortest.gapSeconds,
        end: Math.max(...failures.map((f) => f.lastTime)),
        evidence: {
          serverIp: group.serverIp,
          server: hostPort(shortest.server),
          lowerBoundSeconds: low === null ? null : round(low),
          upperBoundSeconds: round(high),
          bracketOpenBelow: low === null,
          matchingDefaults: bracket.matches.map((d) => ({ name: d.name, seconds: d.seconds, refreshedByKeepalive: d.refreshedByKeepalive })),
          failedGaps: group.failedCount,
          survivedGaps: group.survivedCount,
          contradictingSurvivals: bracket.contradicting,
          shortestFailure: gapEvidence(shortest),
          longestSurvival: group.longestSurvived !== null && low !== null ? gapEvidence(group.longestSurvived) : null,
          failures: failures.map(gapEvidence),
        },
        explanation: parts.filter((p) => p !== '').join(' '),
        advice,
      });
    };

    const book = new IdleGapBook(thresholds.minGapSeconds, thresholds.minSurvivedGapSeconds, thresholds.failRetries, thresholds.maxServers, cap, (outcome, group) => {
      // Report as soon as a gap fails (live capture); survivals only refine a bracket already shown,
      // and are worth a report (which costs as much as the group's evidence) only when watched live:
      // finish() reports every group.
      if (outcome === 'failed' || (live && group.failedCount > 0)) emit(group);
    });

    return {
      interest: IDLE_GAP_INTEREST,
      onSegment(conv: Conversation, seg: Segment) {
        let state = conv.scratch[slot] as GapState | undefined;
        if (state === undefined) {
          // Only a gap makes state worth keeping; most conversations never have one.
          if (seg.idleBefore < book.minimumGap) return;
          state = new GapState();
          conv.scratch[slot] = state;
        }
        book.onSegment(state, conv, seg);
        // Each think time of a busy conversation is a gap: state lives only while a test is open.
        if (state.idle) conv.scratch[slot] = undefined;
      },
      onFinalize(conv: Conversation) {
        const state = conv.scratch[slot] as GapState | undefined;
        if (state !== undefined) book.onFinalize(state, conv);
      },
      finish() {
        for (const group of book.groups.values()) emit(group);
      },
    };
  },
};
