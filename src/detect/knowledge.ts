/**
 * Facts about real network equipment and kernels that findings quote. Each value is a documented
 * default; findings say "matches X" only as a lead, since every one of them can be configured.
 */

export interface IdleTimeoutDefault {
  name: string;
  seconds: number;
  /** Whether TCP keepalive probes (no payload) refresh it; L7 balancers need real bytes. */
  refreshedByKeepalive: boolean;
}

export const MIDDLEBOX_IDLE_TIMEOUTS: readonly IdleTimeoutDefault[] = [
  { name: 'AWS ALB / classic ELB', seconds: 60, refreshedByKeepalive: false },
  { name: 'nginx keepalive_timeout', seconds: 75, refreshedByKeepalive: false },
  { name: 'Azure Load Balancer', seconds: 240, refreshedByKeepalive: true },
  { name: 'AWS NLB / NAT gateway', seconds: 350, refreshedByKeepalive: true },
  { name: 'GCP Cloud NAT (established TCP)', seconds: 1200, refreshedByKeepalive: true },
  { name: 'Linux conntrack (nf_conntrack_tcp_timeout_established)', seconds: 432000, refreshedByKeepalive: true },
];

/** Known defaults whose timeout lies in [low, high] seconds. */
export function idleTimeoutsBetween(low: number, high: number): IdleTimeoutDefault[] {
  return MIDDLEBOX_IDLE_TIMEOUTS.filter((d) => d.seconds >= low && d.seconds <= high);
}

/** Linux's cap on the retransmission timeout (TCP_RTO_MAX). */
export const LINUX_RTO_MAX_SECONDS = 120;
/** Linux default net.ipv4.tcp_retries2. */
export const LINUX_TCP_RETRIES2 = 15;
/** Linux's TIME_WAIT length (TCP_TIMEWAIT_LEN), fixed at compile time. */
export const LINUX_TIME_WAIT_SECONDS = 60;

/**
 * Seconds from the first transmission until Linux gives up on unacknowledged data: the sum of
 * `retries + 1` RTOs doubling from `initialRto`, each capped at TCP_RTO_MAX (tcp_retries2 = 15 with
 * a 200 ms RTO gives 924.6 s, the "15 minute" hang).
 */
export function linuxGiveUpSeconds(initialRto: number, retries = LINUX_TCP_RETRIES2): number {
  let total = 0;
  for (let i = 0; i <= retries; i++) total += Math.min(initialRto * 2 ** i, LINUX_RTO_MAX_SECONDS);
  return total;
}
