import assert from 'node:assert/strict';
import { test } from 'node:test';
import { combineClockEstimates, estimateClockOffset } from '../../src/correlate/clock.js';
import { correlatePrints } from '../../src/correlate/correlate.js';
import { Script, Vantage } from './vantage.js';

const close = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);

test('clock: two directions give the offset and the one-way delay, stray queueing ignored by the median', () => {
  // B's clock is 12.5 s ahead; packets take 3 ms between the points; one packet each way queued 50 ms.
  const offset = 12.5;
  const forward = [0.003, 0.003, 0.0031, 0.0029, 0.053].map((d) => offset + d);
  const backward = [0.003, 0.003, 0.0029, 0.0031, 0.053].map((d) => offset - d);
  const e = estimateClockOffset(forward, backward);
  assert.equal(e.method, 'two-way');
  close(e.offset, offset, 1e-9, 'offset');
  close(e.oneWayDelay as number, 0.003, 1e-9, 'one-way delay');
  assert.equal(e.direction1From, 'A', 'direction-1 packets reach B later: they travel from A to B');
  assert.deepEqual(e.samples, [5, 5]);
  close(e.spread[0] as number, 0.053 - 0.0029, 1e-9, 'spread of direction 1');
});

test('clock: packets in one direction only: the offset carries the one-way delay, which is not separable', () => {
  const e = estimateClockOffset([-7 + 0.002, -7 + 0.002, -7 + 0.004], []);
  assert.equal(e.method, 'one-way');
  close(e.offset, -7 + 0.002, 1e-9, 'offset');
  assert.equal(e.oneWayDelay, null);
  assert.equal(e.direction1From, null);
});

test('clock: nothing seen at both points: no estimate', () => {
  const e = estimateClockOffset([], []);
  assert.equal(e.method, 'none');
  assert.equal(e.offset, 0);
});

test('clock: several connections: the median of the two-way estimates; one-way estimates are ignored when two-way exist', () => {
  const a = estimateClockOffset([1.008], [0.988]); // 0.998, delay 0.01
  const b = estimateClockOffset([1.012], [0.992]); // 1.002, delay 0.01
  const c = estimateClockOffset([1.024], [0.984]); // 1.004, delay 0.02
  const oneWay = estimateClockOffset([9], []);
  const e = combineClockEstimates([a, oneWay, b, c]);
  assert.equal(e.method, 'two-way');
  close(e.offset, 1.002, 1e-9, 'median of 0.998, 1.002, 1.004');
  close(e.oneWayDelay as number, 0.01, 1e-9, 'median of 0.01, 0.01, 0.02');
});

/**
 * A client host and a server host whose clocks differ by an hour, two routers (4 ms) apart: the
 * estimate comes out of the packets both captured, whatever the hosts' clocks say.
 */
function twoHosts(serverClock: number): { client: Vantage; server: Vantage } {
  const client = new Vantage('client.pcap', 0);
  const server = new Vantage('server.pcap', serverClock);
  for (let i = 0; i < 3; i++) {
    const s = new Script(1_000_000 + i * 7_777_777, 3_000_000_000 + i * 11_111, true).handshake(i * 0.3, 0.008).exchanges(i * 0.3 + 0.02, 4, 0.05).close(i * 0.3 + 0.25);
    const tuple = { script: s, client: `10.1.0.5:${41000 + i}`, server: '10.9.0.7:443' };
    client.see({ ...tuple, ttl: { client: 64, server: 62 }, delay: { client: 0, server: 0.004 } });
    server.see({ ...tuple, ttl: { client: 62, server: 64 }, delay: { client: 0.004, server: 0 } });
  }
  return { client, server };
}

test('clock: an hour between the hosts\' clocks is estimated from matched packets, with the 4 ms one-way delay', () => {
  const { client, server } = twoHosts(3600);
  const { report } = correlatePrints(client.fingerprints(), server.fingerprints(), 3);
  assert.equal(report.clock.source, 'matched packets');
  close(report.clock.offset, 3600, 1e-6, 'offset');
  close(report.clock.estimate?.oneWayDelay as number, 0.004, 1e-6, 'one-way delay');
  assert.equal(report.totals.sameConnection, 3);
  for (const pair of report.pairs) {
    assert.equal(pair.path?.clientSide, 'A');
    close(pair.path?.oneWayDelay as number, 0.004, 1e-6, 'per-pair one-way delay');
    assert.deepEqual(pair.path?.changes.hops, { c2s: 2, s2c: 2 });
    assert.equal(pair.path?.complete, true);
  }
  // Nothing is lost because the clocks differ: every packet is inside the other capture's span on its clock.
  assert.equal(report.totals.lost + report.totals.outside + report.totals.appeared, 0);
});

test('clock: the same captures with B as the client side: the offset changes sign', () => {
  const { client, server } = twoHosts(-42);
  const { report } = correlatePrints(server.fingerprints(), client.fingerprints(), 3);
  close(report.clock.offset, 42, 1e-6, 'offset of the client capture relative to the server capture');
  assert.ok(report.pairs.every((p) => p.path?.clientSide === 'B'));
});

test('clock: --clock-offset overrides the estimate, which is still reported', () => {
  const { client, server } = twoHosts(3600);
  const { report } = correlatePrints(client.fingerprints(), server.fingerprints(), 3, { clockOffset: 3599.5 });
  assert.equal(report.clock.source, 'given');
  assert.equal(report.clock.offset, 3599.5);
  close(report.clock.estimate?.offset as number, 3600, 1e-6, 'estimate');
});
