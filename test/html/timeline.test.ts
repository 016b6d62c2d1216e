import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateCapture } from '../../bench/generate.js';
import { analyzeFiles } from '../../src/core/analyze.js';
import { TimelineRecorder } from '../../src/core/timeline.js';
import type { Finding } from '../../src/detect/finding.js';
import { Note } from '../../src/flow/segment.js';
import { renderHtml } from '../../src/report/html/report.js';
import { capture, facts, type LabConversationFacts } from '../helpers/paths.js';
import { scratchDir, splitPcap } from '../perf/helpers.js';

/**
 * The data core gathers for the HTML report, checked against the lab captures' tshark facts and
 * against a large generated capture for the bounds. (html.test.ts renders it in Chromium.)
 */

interface StormFacts {
  first_frame_epoch: number;
  duration: number;
  conversations: LabConversationFacts[];
  storm: { stream: number; retransmission_count: number; retransmissions: { frame: number; epoch: number }[] };
  counts: { rst: number; retransmissions_tshark: number };
}

const STORM = 'idle-timeout-storm';
const ZERO = 'zero-window-stall';
const have = (...names: string[]) => ({ skip: names.every((n) => existsSync(capture(`${n}.pcap`))) ? false : 'lab capture not generated yet' });

async function record(paths: string[], merge = false) {
  const recorder = new TimelineRecorder({ merge });
  const { result } = await analyzeFiles(paths, { merge, segmentObserver: recorder, onFinding: recorder.onFinding });
  return { result, data: recorder.data(result.findings) };
}

/** Per-second bins of the capture, computed from the facts alone. */
function expectedBins(f: StormFacts) {
  const epoch = (t: number) => f.first_frame_epoch + t;
  const firstTcp = Math.min(...f.conversations.map((c) => c.start));
  const origin = Math.floor(epoch(firstTcp));
  const last = Math.floor(epoch(f.duration));
  const size = last - origin + 1;
  const bin = (t: number) => Math.floor(epoch(t)) - origin;
  const newConnections = new Array(size).fill(0);
  const open = new Array(size).fill(0);
  for (const c of f.conversations) {
    if (c.syn > 0) newConnections[bin(c.start)]++;
    // Closed (both FINs, or an RST) around its last packet; otherwise open to the end of the capture.
    const closed = c.fin >= 2 || c.rst > 0;
    for (let b = bin(c.start); b <= bin(closed ? c.end : f.duration); b++) open[b]++;
  }
  return { origin, size, newConnections, open };
}

test('storm timeline: per-second connections, retransmissions and open conversations as tshark measured them', have(STORM), async () => {
  const f = facts<StormFacts>(STORM);
  const { data } = await record([capture(`${STORM}.pcap`)]);
  assert.equal(data.timelines.length, 1);
  const t = data.timelines[0];
  const expected = expectedBins(f);
  assert.equal(t.binSeconds, 1);
  assert.equal(t.origin, expected.origin);
  assert.equal(t.open.length, expected.size);
  assert.deepEqual(t.newConnections, expected.newConnections);
  assert.deepEqual(t.open, expected.open);
  const retransmissions = new Array(expected.size).fill(0);
  for (const r of f.storm.retransmissions) retransmissions[Math.floor(r.epoch) - expected.origin]++;
  assert.deepEqual(t.retransmissions, retransmissions);
  assert.equal(t.resets.reduce((a, b) => a + b, 0), f.counts.rst);
});

test('storm conversation: every packet recorded, retransmissions at the frames tshark named', have(STORM), async () => {
  const f = facts<StormFacts>(STORM);
  const { result, data } = await record([capture(`${STORM}.pcap`)]);
  const stormFacts = f.conversations.find((c) => c.stream === f.storm.stream) as LabConversationFacts;
  const conv = result.conversations.find((c) => `${c.client.ip}:${c.client.port}` === stormFacts.client);
  assert.ok(conv, 'the storm conversation is in the report');
  assert.ok(result.findings.some((x) => x.conversations.includes(conv.id)), 'a finding names it');
  const rec = data.sequence(conv.id);
  assert.ok(rec);
  const packets = stormFacts.frames_client_to_server + stormFacts.frames_server_to_client;
  assert.equal(rec.packets, packets);
  assert.equal(rec.points.length, packets);
  assert.deepEqual(rec.points.map((p) => p.index), [...Array(packets).keys()]);
  assert.equal(rec.points[0].frame, stormFacts.first_frame);
  assert.equal(rec.points[packets - 1].frame, stormFacts.last_frame);
  assert.deepEqual(rec.points.filter((p) => (p.notes & Note.Retransmission) !== 0).map((p) => p.frame), f.storm.retransmissions.map((r) => r.frame));
  assert.deepEqual(rec.sampling, { plain: 1, trouble: 1, marks: 1 });
  // The unflagged conversation is not kept.
  const other = result.conversations.find((c) => c.id !== conv.id);
  assert.ok(other);
  assert.equal(data.sequence(other.id), null);
});

test('separate captures: one timeline each, conversations numbered on as the report numbers them', have(STORM, ZERO), async () => {
  const storm = facts<StormFacts>(STORM);
  const zero = facts<{ conversations: LabConversationFacts[]; zero_window_frames: { frame: number }[] }>(ZERO);
  const { result, data } = await record([capture(`${STORM}.pcap`), capture(`${ZERO}.pcap`)]);
  assert.deepEqual(data.timelines.map((t) => t.inputs), [[0], [1]]);
  const zeroConv = result.conversations.find((c) => `${c.client.ip}:${c.client.port}` === zero.conversations[0].client);
  assert.ok(zeroConv);
  assert.equal(zeroConv.id, storm.conversations.length + 1);
  const rec = data.sequence(zeroConv.id);
  assert.ok(rec, 'the zero-window conversation is recorded under its report id');
  assert.deepEqual(rec.points.filter((p) => (p.notes & Note.ZeroWindow) !== 0).map((p) => p.frame), zero.zero_window_frames.map((z) => z.frame));
  assert.equal(data.timelines[1].newConnections.reduce((a, b) => a + b, 0), zero.conversations.length);
});

test('a capture split in files and merged: one timeline, the same conversation recorded whole', have(STORM), async () => {
  const f = facts<StormFacts>(STORM);
  const scratch = scratchDir('connscope-timeline-');
  try {
    const parts = splitPcap(capture(`${STORM}.pcap`), 3, scratch.dir);
    const { result, data } = await record(parts, true);
    assert.equal(data.timelines.length, 1);
    assert.deepEqual(data.timelines[0].inputs, [0, 1, 2]);
    assert.equal(data.timelines[0].open.length, expectedBins(f).size);
    const stormFacts = f.conversations.find((c) => c.stream === f.storm.stream) as LabConversationFacts;
    const conv = result.conversations.find((c) => `${c.client.ip}:${c.client.port}` === stormFacts.client);
    assert.ok(conv);
    assert.equal(data.sequence(conv.id)?.points.length, stormFacts.frames_client_to_server + stormFacts.frames_server_to_client);
  } finally {
    scratch.remove();
  }
});

test('large capture: recordings stay bounded, keep their head, every retransmission and RST', async () => {
  const scratch = scratchDir('connscope-timeline-big-');
  try {
    const path = join(scratch.dir, 'long.pcap');
    // Four long conversations of ~100k packets each, 1% of data segments retransmitted.
    generateCapture({ output: path, packets: 400_000, flows: 4, flowPackets: 200_000, seed: 7 });
    const cap = 2000;
    const recorder = new TimelineRecorder({ maxPointsPerConversation: cap });
    const { result } = await analyzeFiles([path], { segmentObserver: recorder, onFinding: recorder.onFinding });
    // Name every conversation in a finding so that all of them are handed out.
    const all: Finding = {
      id: 'test/all', detector: 'test', severity: 'info', title: 'all', conversations: result.conversations.map((c) => c.id),
      client: null, server: null, start: 0, end: 0, evidence: {}, explanation: '', advice: [],
    };
    const data = recorder.data([all]);
    let thinned = 0;
    for (const conv of result.conversations) {
      const rec = data.sequence(conv.id);
      assert.ok(rec, `conversation ${conv.id} recorded`);
      const packets = conv.packets.client + conv.packets.server;
      assert.equal(rec.packets, packets);
      assert.ok(rec.points.length <= cap, `${rec.points.length} points <= ${cap}`);
      if (rec.points.length < packets) thinned++;
      // The head of the conversation is whole, the order is the capture's.
      assert.deepEqual(rec.points.slice(0, 12).map((p) => p.index), [...Array(Math.min(12, packets)).keys()]);
      for (let i = 1; i < rec.points.length; i++) assert.ok(rec.points[i].index > rec.points[i - 1].index);
      const kept = (mask: number) => rec.points.filter((p) => (p.notes & mask) !== 0).length;
      if (rec.sampling.trouble === 1) assert.equal(kept(Note.Retransmission), conv.retransmissions.client + conv.retransmissions.server);
      assert.equal(kept(Note.Reset), conv.resets.client + conv.resets.server);
      assert.equal(rec.points.filter((p) => (p.flags & 0x02) !== 0).length > 0, !conv.midstream);
    }
    assert.ok(thinned > 0, 'the long conversations were thinned');
    const html = renderHtml(result, data, { graphsPerFinding: 10, maxGraphs: 10 });
    assert.ok(html.length < 3_000_000, `report of ${html.length} bytes`);
  } finally {
    scratch.remove();
  }
});
