import { defineDetector, type DetectorSpec } from '../detect/detector.js';

/**
 * Findings only a correlation of two captures can make, documented like detectors so that policy
 * (--set id.severity=..., --config, disabled) applies to them the same way. They are not run on
 * single captures: `create` does nothing. `injected-rst` and `blackhole` findings of the correlation
 * use the ids of the single-capture detectors (same failure, stronger proof) and their policy.
 */

const inert = () => ({ interest: 0 });

export const pathLoss = defineDetector<{ minLostPackets: number }>({
  id: 'path-loss',
  title: 'Packets lost between two capture points',
  severity: 'warning',
  summary: 'Packets that left one capture point and never reached the other (correlate only).',
  explanation: [
    'With the same connection captured at two points (client host and server host, or either side of a',
    'router, NAT or firewall), every packet that passes both points appears in both captures. A packet',
    'seen at the point nearer its sender and missing at the point nearer its receiver, while that capture',
    'was running, was dropped between the two points. A packet the receiver acknowledged although the',
    'downstream capture lacks it was missed by that capture (not counted). The finding names the',
    'connection at both points, the direction, the frames and times, and how many routers lie between the',
    'points (the TTL decrement of the packets seen at both); a drop that is never recovered (no later copy',
    'of the bytes arrived) makes it critical.',
  ].join(' '),
  evidence: {
    lost: 'packets lost between the points (both directions)',
    lostBytes: 'payload bytes in them',
    clientToServer: 'lost packets sent by the client',
    serverToClient: 'lost packets sent by the server',
    unrecovered: 'lost payload packets whose bytes never reached the downstream point in any copy',
    hopsBetweenPoints: 'routers between the capture points (TTL decrement)',
    'packets[]': 'the lost packets: capture, frame, time, direction, flags, relative seq/ack, length, TTL, IP ID, recovered',
  },
  thresholds: {
    minLostPackets: { default: 1, unit: 'packets', description: 'lost packets on one connection before it is reported' },
  },
  advice: [
    'The drop happened on the path between the two capture points: look at the devices there (routers, firewalls, NAT, load balancers) for drop counters, conntrack INVALID drops (`conntrack -S`, `iptables -vnL`), ACL denies or interface errors at the times given.',
    'If the packets were dropped by a stateful device, compare its idle/state timeouts with the connection\'s idle time and its rules with the dropped payload.',
  ],
  create: inert,
});

export const inFlightChange = defineDetector({
  id: 'in-flight-change',
  title: 'TCP header rewritten between two capture points',
  severity: 'info',
  summary: 'A middlebox changes TCP options or windows in flight: MSS clamping, timestamps or window scaling stripped (correlate only).',
  explanation: [
    'The same packet seen at two points should carry the same TCP header apart from what routing and NAT',
    'legitimately change (TTL, addresses, ports, checksums). Differences in the SYN options (MSS clamped,',
    'window scaling, SACK or timestamps removed), in the advertised windows or in flags (ECN bits cleared)',
    'are the work of a middlebox. Stripped timestamps matter: without them Linux cannot use PAWS, and',
    'tcp_tw_reuse / TIME_WAIT acceptance of a reused port depends on them; stripped window scaling caps',
    'throughput at 64 KiB per round trip. One finding per distinct set of changes, listing every connection',
    'that shows it.',
  ].join(' '),
  evidence: {
    changes: 'what changed: option (mss, windowScale, sackPermitted, timestamps) and side with the value at the sender\'s point and at the far point; timestampsStripped, windowChanged, flagsChanged counts',
    connections: 'connections showing exactly these changes',
  },
  thresholds: {},
  advice: [
    'Find the device between the points that rewrites TCP (firewall "TCP normalisation", WAN optimiser, `iptables -j TCPMSS`, a load balancer in layer-4 mode) and check whether the rewrite is intended.',
    'Keep TCP timestamps end to end where connections are short-lived and ports are reused (TIME_WAIT assassination / tcp_tw_reuse depend on them).',
  ],
  create: inert,
});

export const unpropagatedFailure = defineDetector<{ minSilentSeconds: number }>({
  id: 'unpropagated-failure',
  title: 'Back-leg failure not passed on to the client',
  severity: 'warning',
  summary: 'A proxy\'s backend connection failed (reset, unacknowledged data, failed connect) and the client was not told (correlate only).',
  explanation: [
    'A proxy that terminates TCP has two connections per client: the front leg to the client and the back',
    'leg to the backend. When the back leg fails, a well-behaved proxy resets (or answers) the front leg so',
    'the client fails fast and retries. When it does not, the client waits on a connection that can no',
    'longer deliver anything: it is left half-open, or it is closed with a FIN that makes the loss look like',
    'an orderly end. With both legs captured, the failure on the back leg (the first data the backend never',
    'acknowledged, an RST, an unanswered SYN) and what the proxy sent the client afterwards are compared;',
    'no RST or answer to the client within minSilentSeconds is reported.',
  ].join(' '),
  evidence: {
    backFailure: 'kind (unacknowledged, reset-by-backend, reset-by-proxy, connect-failed), first packet of the failure, retransmissions, the RST',
    frontOutcome: 'what the client got afterwards: reset, answered, fin, client-closed (it gave up first), open (half-open at the end of the captures)',
    silentSeconds: 'from the failure to the proxy\'s reaction on the front leg (or to the end of the captures)',
  },
  thresholds: {
    minSilentSeconds: { default: 1, unit: 's', description: 'time without a reset or answer to the client after the back leg failed' },
  },
  advice: [
    'Make the proxy reset or fail client connections whose backend connection failed: HAProxy `option abortonclose` and `on-marked-down shutdown-sessions`, server `check` health checks; Envoy outlier detection; for AWS NLB `deregistration_delay.connection_termination.enabled=true`.',
    'Bound how long the proxy waits on a backend: HAProxy `timeout server`, `timeout connect`, `tcp-ut` (TCP_USER_TIMEOUT) on the server line, so the failure is detected in seconds, not minutes.',
    'Give clients request timeouts and application heartbeats that expect an answer.',
  ],
  create: inert,
});

/** Correlation-only finding kinds (injected-rst and blackhole are the registry's). */
export const CORRELATION_SPECS: readonly DetectorSpec[] = [pathLoss, inFlightChange, unpropagatedFailure];

/** A correlation blackhole: undelivered bytes stuck at least this long (seconds). */
export const BLACKHOLE_MIN_STUCK_SECONDS = 1;
