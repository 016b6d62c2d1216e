import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { Chalk } from 'chalk';
import type { AnalysisSession } from '../../src/core/session.js';
import type { Finding } from '../../src/detect/finding.js';
import type { LiveStart, LiveStats } from '../../src/live/capture.js';
import { JsonView, LineView, SafeOutput, ScreenView } from '../../src/live/views.js';

/** A stand-in for process.stdout that records what is written. */
class FakeStream extends EventEmitter {
  written = '';
  isTTY = true;
  columns = 100;
  rows = 24;
  failWith: NodeJS.ErrnoException | null = null;

  write(text: string): boolean {
    if (this.failWith !== null) {
      const error = this.failWith;
      process.nextTick(() => this.emit('error', error));
      return false;
    }
    this.written += text;
    return true;
  }
}

const chalk = new Chalk({ level: 0 });

function finding(overrides: Partial<Finding> = {}): Finding {
  return {
    id: 'retransmit-storm/4/client/301',
    detector: 'retransmit-storm',
    severity: 'critical',
    title: 'Data retransmitted 3 times with backoff: 198.18.0.1:50392 -> 198.18.0.2:8080',
    conversations: [4],
    client: { ip: '198.18.0.1', port: 50392 },
    server: { ip: '198.18.0.2', port: 8080 },
    start: 1_795_464_332.5,
    end: 1_795_464_333.4,
    evidence: { retransmissions: 3 },
    explanation: 'x',
    advice: [],
    ...overrides,
  };
}

const START: LiveStart = { iface: 'eth9', backend: 'cap', filter: 'tcp port 8080', linkType: 1, writePath: null, droppedTo: 'nobody' };

function stats(packets: number): LiveStats {
  return {
    time: 1_795_464_340, elapsedSeconds: 5, packets, tcpPackets: packets, bytes: packets * 60, packetsPerSecond: 10, bytesPerSecond: 600,
    conversationsOpen: 1, findings: 1, segmentsNotCaptured: 0, sequenceGaps: 0, ackedUnseen: 0, kernelDrops: null, queueDrops: 0,
    queuedBytes: 0, written: null,
  };
}

/** A session with no live conversations (the screen only reads them). */
const emptySession = { forEachLiveConversation: () => undefined } as unknown as AnalysisSession;

function output(): { stream: FakeStream; out: SafeOutput } {
  const stream = new FakeStream();
  return { stream, out: new SafeOutput(stream as unknown as NodeJS.WriteStream) };
}

describe('line view (stdout not a terminal)', () => {
  it('prints a new finding at once and its updates once per tick, latest only, never unchanged', () => {
    const { stream, out } = output();
    const view = new LineView(out, chalk);
    view.finding(finding(), false);
    assert.equal(stream.written.split('\n').filter(Boolean).length, 1, 'the new finding is printed when it fires');
    assert.match(stream.written, / new retransmit-storm: Data retransmitted 3 times/);
    view.finding(finding({ title: 'Data retransmitted 4 times with backoff: 198.18.0.1:50392 -> 198.18.0.2:8080' }), true);
    view.finding(finding({ title: 'Data retransmitted 5 times with backoff: 198.18.0.1:50392 -> 198.18.0.2:8080' }), true);
    assert.equal(stream.written.split('\n').filter(Boolean).length, 1, 'updates wait for the tick');
    view.tick();
    const lines = stream.written.split('\n').filter(Boolean);
    assert.equal(lines.length, 2);
    assert.match(lines[1], / updated retransmit-storm: Data retransmitted 5 times/);
    // The same version again (as the end of the capture re-reports it) is not an update.
    view.finding(finding({ title: 'Data retransmitted 5 times with backoff: 198.18.0.1:50392 -> 198.18.0.2:8080' }), true);
    view.close();
    assert.equal(stream.written.split('\n').filter(Boolean).length, 2);
  });

  it('names the endpoints when the title does not', () => {
    const { stream, out } = output();
    new LineView(out, chalk).finding(finding({ title: 'Zero window stall' }), false);
    assert.match(stream.written, /198\.18\.0\.1:50392 -> 198\.18\.0\.2:8080: Zero window stall/);
  });
});

describe('JSON view', () => {
  it('emits start, finding, update and stats events, one JSON document per line', () => {
    const { stream, out } = output();
    const view = new JsonView(out);
    view.started(START);
    view.finding(finding(), false);
    view.finding(finding({ end: 1_795_464_334.2 }), true);
    view.tick(stats(42));
    view.warning('interface eth9 went down');
    view.close();
    const events = stream.written.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(events.map((e) => [e.type, e.update]), [['start', undefined], ['finding', false], ['finding', true], ['stats', undefined], ['warning', undefined]]);
    assert.equal(events[0].iface, 'eth9');
    assert.equal(events[1].id, 'retransmit-storm/4/client/301');
    assert.equal(events[2].end, 1_795_464_334.2);
    assert.equal(events[3].packets, 42);
  });
});

describe('screen view (terminal)', () => {
  it('draws in the alternate screen, one write per frame, and restores the terminal on close', () => {
    const { stream, out } = output();
    const view = new ScreenView(out, chalk);
    view.started(START);
    assert.ok(stream.written.startsWith('\x1b[?1049h\x1b[?25l'), 'alternate screen, cursor hidden');
    view.finding(finding(), false);
    const before = stream.written.length;
    view.tick(stats(42), emptySession);
    const frame = stream.written.slice(before);
    assert.ok(frame.startsWith('\x1b[H') && frame.endsWith('\x1b[J'), 'a frame homes the cursor and clears below it');
    assert.equal(frame.split('\x1b[H').length, 2, 'one frame per write');
    const lines = frame.slice(3, -3).split('\n');
    assert.equal(lines.length, stream.rows, 'fills the terminal height exactly');
    for (const line of lines) assert.ok(line.replace(/\x1b\[K$/, '').length < stream.columns, 'no line wraps');
    assert.match(frame, /connscope live — eth9 \(cap, ETHERNET\)/);
    assert.match(frame, /packets 42/);
    assert.match(frame, /CRITICAL retransmit-storm +Data retransmitted 3 times/);
    view.close();
    assert.ok(stream.written.endsWith('\x1b[?25h\x1b[?1049l'), 'cursor shown, main screen back');
  });
});

describe('standard output closed', () => {
  it('the first write error marks it closed and tells the capture to stop; later writes are dropped', async () => {
    const { stream, out } = output();
    let stopped = 0;
    out.onClose(() => stopped++);
    stream.failWith = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    out.write('a\n');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(out.closed, true);
    assert.equal(stopped, 1);
    out.write('b\n');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stopped, 1);
    assert.equal(stream.written, '');
  });
});
