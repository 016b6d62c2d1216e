import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connChurn } from '../../src/detect/detectors/conn-churn.js';
import type { Finding } from '../../src/detect/finding.js';
import { SyntheticCapture } from '../helpers/synthetic.js';

const SERVER = '10.0.0.2:8080';

function ours(findings: Finding[]): Finding[] {
  return findings.filter((f) => f.detector === 'conn-churn');
}

/** One connection carrying `requests` request/response exchanges `gap` apart, closed by the client. */
function connection(cap: SyntheticCapture, client: string, t: number, requests: number, gap = 0.01): number {
  const c = cap.flow(client, SERVER);
  c.handshake(t, 0.0004);
  let at = t + 0.001;
  for (let i = 0; i < requests; i++) {
    c.data(at, 'client', 100);
    c.data(at + 0.002, 'server', 500);
    c.ack(at + 0.0022, 'client');
    at += gap;
  }
  c.close(at, 'client');
  return at;
}

test('conn-churn: one request per connection at 20 connections/s', () => {
  const cap = new SyntheticCapture([connChurn]);
  // 100 connections, 20 per second, each one request; ports cycle through two client addresses.
  for (let i = 0; i < 100; i++) connection(cap, `10.0.0.${1 + (i % 2)}:${40000 + i}`, 1000 + i * 0.05, 1);
  const findings = ours(cap.finish());
  assert.equal(findings.length, 1);
  const f = findings[0];
  assert.equal(f.severity, 'warning');
  assert.deepEqual(f.server, { ip: '10.0.0.2', port: 8080 });
  assert.equal(f.evidence.connections, 100);
  assert.equal(f.evidence.requests, 100);
  assert.equal(f.evidence.requestsPerConnectionMedian, 1);
  assert.equal(f.evidence.oneRequestShare, 1);
  assert.equal(f.evidence.peakOpensPerSecond, 20);
  assert.equal(f.evidence.medianOpensPerSecond, 20);
  assert.equal(f.evidence.shortLivedShare, 1);
  assert.equal(f.evidence.clients, 2);
  // Per connection: 2 payload segments and 2 FINs.
  assert.equal(f.evidence.finsPerDataSegment, 1);
  assert.equal(f.evidence.timeWaitAtPeak, 20 * 60);
  assert.equal(f.evidence.phases, null);
});

test('conn-churn: silent below minConnections', () => {
  const cap = new SyntheticCapture([connChurn]);
  for (let i = 0; i < 49; i++) connection(cap, `10.0.0.1:${40000 + i}`, 1000 + i * 0.05, 1);
  assert.deepEqual(ours(cap.finish()), []);
});

test('conn-churn: silent when connections are reused', () => {
  const cap = new SyntheticCapture([connChurn]);
  // 60 connections with 20 requests each.
  for (let i = 0; i < 60; i++) connection(cap, `10.0.0.1:${40000 + i}`, 1000 + i * 0.5, 20, 0.02);
  assert.deepEqual(ours(cap.finish()), []);
});

test('conn-churn: a slow trickle of single-request connections is only info', () => {
  const cap = new SyntheticCapture([connChurn]);
  for (let i = 0; i < 60; i++) connection(cap, `10.0.0.1:${40000 + i}`, 1000 + i * 2, 1);
  const [f] = ours(cap.finish());
  assert.equal(f.severity, 'info');
  assert.equal(f.evidence.peakOpensPerSecond, 1);
});

test('conn-churn: a reuse phase followed by a churn phase is compared', () => {
  const cap = new SyntheticCapture([connChurn]);
  // Reuse: 4 connections opened at t=1000, each carrying 50 requests over 10 s.
  const pooled = [0, 1, 2, 3].map((i) => {
    const c = cap.flow(`10.0.0.1:${30000 + i}`, SERVER);
    c.handshake(1000 + i * 0.01, 0.0004);
    return c;
  });
  for (let k = 0; k < 50; k++) {
    for (let i = 0; i < 4; i++) {
      const at = 1000.1 + k * 0.2 + i * 0.01;
      pooled[i].data(at, 'client', 100).data(at + 0.002, 'server', 500).ack(at + 0.0022, 'client');
    }
  }
  for (let i = 0; i < 4; i++) pooled[i].close(1010.5 + i * 0.01, 'client');
  // Churn: from t=1020, 100 connections at 10 per second, one request each.
  for (let i = 0; i < 100; i++) connection(cap, `10.0.0.1:${40000 + i}`, 1020 + i * 0.1, 1);
  const [f, ...rest] = ours(cap.finish());
  assert.equal(rest.length, 0);
  assert.equal(f.severity, 'warning');
  assert.equal(f.evidence.connections, 104);
  const phases = f.evidence.phases as { reuse: Record<string, number>; churn: Record<string, number> };
  assert.equal(phases.reuse.opens, 4);
  assert.equal(phases.reuse.requests, 200);
  assert.equal(phases.reuse.requestsPerConnection, 50);
  assert.equal(phases.churn.opens, 100);
  assert.equal(phases.churn.requestsPerConnection, 1);
  assert.equal(phases.churn.from, 1020);
});

test('conn-churn: connections whose SYN the capture missed are not counted', () => {
  const cap = new SyntheticCapture([connChurn]);
  for (let i = 0; i < 80; i++) {
    const c = cap.flow(`10.0.0.1:${40000 + i}`, SERVER);
    const t = 1000 + i * 0.05;
    c.data(t, 'client', 100).data(t + 0.002, 'server', 500).close(t + 0.003, 'client');
  }
  assert.deepEqual(ours(cap.finish()), []);
});
