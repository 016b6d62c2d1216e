import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { capture, CLI, facts, type LabConversationFacts } from '../helpers/paths.js';

/**
 * The HTML report rendered for real: `connscope analyze --html` on lab captures, opened in headless
 * Chromium (Debian's package, never a downloaded browser) with the network off, then checked on the
 * DOM against the captures' tshark facts: findings, graph series and their points, ladders, the
 * capture timeline, the sortable table, and a console free of errors. Screenshots are kept for
 * people to look at (their paths are printed as test diagnostics).
 */

const CHROMIUM = process.env.CONNSCOPE_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const STORM = 'idle-timeout-storm';
const ZERO = 'zero-window-stall';

function skipUnless(...names: string[]): { skip: string | false } {
  if (!existsSync(CHROMIUM)) return { skip: `chromium not installed at ${CHROMIUM} (apt-get install chromium): HTML report not rendered` };
  const missing = names.filter((n) => !existsSync(capture(`${n}.pcap`)));
  return { skip: missing.length > 0 ? `${missing.join(', ')} not generated yet (fixtures/lab)` : false };
}

interface StormFacts {
  first_frame_epoch: number;
  duration: number;
  conversations: LabConversationFacts[];
  storm: {
    stream: number;
    client: string;
    retransmission_count: number;
    retransmissions: { frame: number }[];
    original: { frame: number };
    idle_gap_before: number;
  };
  counts: { rst: number; retransmissions_tshark: number };
}

interface ZeroFacts {
  conversations: LabConversationFacts[];
  sender: string;
  zero_window_count: number;
  zero_window_frames: { frame: number }[];
  persist_probe_count: number;
  persist_probes: { frame: number }[];
  retransmissions: { frame: number }[];
  window_reopened: { frame: number };
  counts: { rst: number; retransmissions_tshark: number; fin: number };
}

// ---- what the page shows, read in the browser ----------------------------------------------------

interface SeriesInfo {
  points: number;
  /** Subpaths (`M`) and vertical steps (`V`) in the series' path. */
  moves: number;
  verticals: number;
  values: number[] | null;
}

interface PageInfo {
  findings: { detector: string; severity: string; id: string; text: string }[];
  conversations: {
    id: number;
    heading: string;
    panels: { direction: string; series: Record<string, SeriesInfo> }[];
    ladder: { frame: number; notes: string[] }[];
    idleBefore: number[];
  }[];
  timelines: { caption: string; bucketSeconds: number; series: Record<string, SeriesInfo> }[];
  tableIds: number[];
  tiles: Record<string, string>;
}

/** Runs in the page (plain JS: the test's TypeScript has no DOM types). */
const READ_PAGE = `(() => {
  const count = (text, re) => (text.match(re) || []).length;
  const series = (root) => {
    const out = {};
    for (const g of root.querySelectorAll('g.series')) {
      const d = g.querySelector('path').getAttribute('d') || '';
      const values = g.getAttribute('data-values');
      out[g.getAttribute('data-series')] = {
        points: Number(g.getAttribute('data-points')),
        moves: count(d, /M/g),
        verticals: count(d, /V/g),
        values: values === null ? null : values.split(' ').filter(Boolean).map(Number),
      };
    }
    return out;
  };
  return {
    findings: [...document.querySelectorAll('article.finding')].map((a) => ({
      detector: a.dataset.detector, severity: a.dataset.severity, id: a.dataset.findingId, text: a.textContent,
    })),
    conversations: [...document.querySelectorAll('article.conversation')].map((a) => {
      const rows = [...a.querySelectorAll('table.ladder tbody tr')];
      const idleBefore = [];
      rows.forEach((row, i) => {
        if (row.classList.contains('idle') && rows[i + 1]) idleBefore.push(Number(rows[i + 1].dataset.frame));
      });
      return {
        id: Number(a.dataset.conversation),
        heading: a.querySelector('h3').textContent,
        panels: [...a.querySelectorAll('svg.seq-panel')].map((svg) => ({ direction: svg.dataset.direction, series: series(svg) })),
        ladder: rows.filter((r) => r.classList.contains('pkt')).map((r) => ({
          frame: Number(r.dataset.frame), notes: [...r.querySelectorAll('.note')].map((n) => n.textContent),
        })),
        idleBefore,
      };
    }),
    timelines: [...document.querySelectorAll('figure.timeline-figure')].map((f) => ({
      caption: f.querySelector('figcaption').textContent,
      bucketSeconds: Number(f.querySelector('svg').dataset.bucketSeconds),
      series: series(f),
    })),
    tableIds: [...document.querySelectorAll('#conversations tbody tr')].map((r) => Number(r.dataset.id)),
    tiles: Object.fromEntries([...document.querySelectorAll('.tile')].map((t) => [t.dataset.tile, t.querySelector('.v').textContent])),
  };
})()`;

// ---- browser and CLI plumbing ------------------------------------------------------------------

let context: BrowserContext | null = null;
let userDataDir = '';
/** Reports and screenshots stay here for people to look at. */
const outDir = mkdtempSync(join(tmpdir(), 'connscope-html-report-'));

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  userDataDir = mkdtempSync(join(tmpdir(), 'connscope-chromium-'));
  // An empty profile, the system's Chromium, no network: what someone opening the file offline gets.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    offline: true,
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  if (userDataDir !== '') rmSync(userDataDir, { recursive: true, force: true });
});

function connscope(args: string[]) {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

interface JsonFinding { id: string; detector: string; severity: string; conversations: number[] }

/** Writes the HTML report of `paths` and returns its path with the JSON report of the same run. */
function report(name: string, paths: string[]): { html: string; findings: JsonFinding[] } {
  const html = join(outDir, `${name}.html`);
  const run = connscope(['analyze', ...paths, '--json', '--html', html]);
  assert.equal(run.code, 0, run.stderr);
  return { html, findings: (JSON.parse(run.stdout) as { findings: JsonFinding[] }).findings };
}

interface Opened {
  page: Page;
  info: PageInfo;
  /** Console errors and warnings, uncaught exceptions. */
  problems: string[];
  /** Requests for anything but the report file itself. */
  requests: string[];
}

async function open(html: string): Promise<Opened> {
  assert.ok(context, 'browser started');
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  const self = pathToFileURL(html).href;
  page.on('request', (r) => {
    if (r.url() !== self) requests.push(r.url());
  });
  await page.goto(self, { waitUntil: 'load' });
  return { page, info: (await page.evaluate(READ_PAGE)) as PageInfo, problems, requests };
}

async function screenshot(page: Page, name: string, diagnostic: (message: string) => void): Promise<void> {
  const path = join(outDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  diagnostic(`screenshot: ${path}`);
}

function series(info: PageInfo['conversations'][number], direction: string): Record<string, SeriesInfo> {
  const panel = info.panels.find((p) => p.direction === direction);
  assert.ok(panel, `${direction} panel drawn`);
  return panel.series;
}

/** Points of a series, after checking that the drawing has as many (one M per mark or bar, M + Vs for a step line). */
function drawn(all: Record<string, SeriesInfo>, name: string): number {
  const s = all[name];
  if (s === undefined) return 0;
  // ACK and window lines, and the timeline's series (they carry their values), are step lines.
  const step = /-(ack|window)$/.test(name) || s.values !== null;
  assert.equal(step ? s.moves + s.verticals : s.moves, s.points, `${name}: points drawn`);
  return s.points;
}

function clientOf(heading: string): string {
  return heading.split(' ')[1];
}

// ---- tests -------------------------------------------------------------------------------------

test('idle-timeout-storm: findings, Stevens graph, ladder, timeline and sortable table in Chromium', skipUnless(STORM), async (t) => {
  const f = facts<StormFacts>(STORM);
  const stormConv = f.conversations.find((c) => c.stream === f.storm.stream) as LabConversationFacts;
  const { html, findings } = report(STORM, [capture(`${STORM}.pcap`)]);
  const { page, info, problems, requests } = await open(html);
  try {
    await screenshot(page, STORM, (m) => t.diagnostic(m));
    assert.deepEqual(problems, [], 'no console errors');
    assert.deepEqual(requests, [], 'nothing fetched: the file is self-contained');

    // Findings: the scenario's retransmission storm, and every finding of the analysis, in order.
    assert.ok(info.findings.some((x) => x.detector === 'retransmit-storm'), 'retransmit-storm reported');
    assert.deepEqual(info.findings.map((x) => [x.id, x.detector, x.severity]), findings.map((x) => [x.id, x.detector, x.severity]));
    const storm = info.findings.find((x) => x.detector === 'retransmit-storm');
    assert.match(storm?.text ?? '', new RegExp(`retransmissions=${f.storm.retransmission_count}\\b`));
    assert.match(storm?.text ?? '', /what to change/);

    // The storm conversation's graph: both directions, the series tshark's counts predict.
    const conv = info.conversations.find((c) => clientOf(c.heading) === f.storm.client);
    assert.ok(conv, 'storm conversation drawn');
    assert.deepEqual(conv.panels.map((p) => p.direction), ['client', 'server']);
    const c2s = series(conv, 'client');
    const s2c = series(conv, 'server');
    assert.equal(drawn(c2s, 'client-retrans'), f.storm.retransmission_count);
    assert.equal(drawn(c2s, 'client-syn'), 1);
    assert.equal(drawn(s2c, 'server-syn'), 1);
    // Every server packet carries an ACK (its first is the SYN-ACK); every client packet but the SYN.
    assert.equal(drawn(c2s, 'server-ack'), stormConv.frames_server_to_client);
    assert.equal(drawn(c2s, 'server-window'), stormConv.frames_server_to_client);
    assert.equal(drawn(s2c, 'client-ack'), stormConv.frames_client_to_server - 1);
    assert.ok(drawn(c2s, 'client-data') > 0 && drawn(s2c, 'server-data') > 0);
    for (const name of [...Object.keys(c2s), ...Object.keys(s2c)]) {
      assert.doesNotMatch(name, /rst|zero-window|fin/, `no ${name}: the storm conversation has no RST, FIN or zero window`);
    }

    // Its ladder: every packet, the retransmissions where tshark saw them, the idle gap before the lost request.
    assert.equal(conv.ladder.length, stormConv.frames_client_to_server + stormConv.frames_server_to_client);
    assert.equal(conv.ladder[0].frame, stormConv.first_frame);
    assert.equal(conv.ladder[conv.ladder.length - 1].frame, stormConv.last_frame);
    assert.deepEqual(conv.ladder.filter((r) => r.notes.includes('retransmission')).map((r) => r.frame), f.storm.retransmissions.map((r) => r.frame));
    assert.ok(conv.idleBefore.includes(f.storm.original.frame), `silence shown before frame ${f.storm.original.frame}`);

    // Timeline: one point per second of the capture, totals as measured.
    assert.equal(info.timelines.length, 1);
    const tl = info.timelines[0];
    assert.equal(tl.bucketSeconds, 1);
    assert.deepEqual(Object.keys(tl.series).sort(), ['new-connections', 'open', 'resets', 'retransmissions']);
    const firstTcp = f.first_frame_epoch + Math.min(...f.conversations.map((c) => c.start));
    const seconds = Math.floor(f.first_frame_epoch + f.duration) - Math.floor(firstTcp) + 1;
    const sum = (name: string) => (tl.series[name].values ?? []).reduce((a, b) => a + b, 0);
    for (const name of Object.keys(tl.series)) {
      assert.equal(drawn(tl.series, name), seconds, `${name}: one point per second`);
      assert.equal(tl.series[name].values?.length, seconds);
    }
    assert.equal(sum('new-connections'), f.conversations.filter((c) => c.syn > 0).length);
    assert.equal(sum('retransmissions'), f.counts.retransmissions_tshark);
    assert.equal(sum('resets'), f.counts.rst);
    assert.equal(Math.max(...(tl.series.open.values ?? [])), 2, 'the reconnect overlaps the storm conversation, still open');

    assert.equal(info.tiles.retransmissions, String(f.counts.retransmissions_tshark));
    assert.equal(info.tiles.conversations, String(f.conversations.length));

    // The conversations table sorts by a click on a header, both ways.
    assert.equal(info.tableIds.length, f.conversations.length);
    const header = '#conversations thead th[data-key="packets-client"]';
    const index = await page.$$eval('#conversations thead th', (ths) => ths.findIndex((th) => (th as unknown as { dataset: { key: string } }).dataset.key === 'packets-client'));
    assert.ok(index >= 0, 'a column of client packets');
    const column = async () => page.$$eval('#conversations tbody tr', (rows, i) => rows.map((r) => Number((r as unknown as { cells: { dataset: { v: string } }[] }).cells[i].dataset.v)), index);
    const ids = async () => page.$$eval('#conversations tbody tr', (rows) => rows.map((r) => Number((r as unknown as { dataset: { id: string } }).dataset.id)));
    const byClientPackets = f.conversations.map((c) => c.frames_client_to_server);
    assert.deepEqual(await ids(), f.conversations.map((_, i) => i + 1), 'listed by id at first');
    await page.click(`${header} button`);
    assert.equal(await page.getAttribute(header, 'aria-sort'), 'ascending');
    assert.deepEqual(await column(), [...byClientPackets].sort((a, b) => a - b));
    // The reconnect sent fewer packets than the storm conversation: sorting moved it first.
    assert.notDeepEqual(await ids(), f.conversations.map((_, i) => i + 1), 'the order changed');
    await page.click(`${header} button`);
    assert.equal(await page.getAttribute(header, 'aria-sort'), 'descending');
    assert.deepEqual(await column(), [...byClientPackets].sort((a, b) => b - a));
    assert.deepEqual(problems, [], 'no console errors after sorting');
  } finally {
    await page.close();
  }
});

test('zero-window-stall: zero-window marks, persist probes and the ladder\'s notes at tshark\'s frames', skipUnless(ZERO), async (t) => {
  const f = facts<ZeroFacts>(ZERO);
  const conversation = f.conversations[0];
  const { html, findings } = report(ZERO, [capture(`${ZERO}.pcap`)]);
  const { page, info, problems, requests } = await open(html);
  try {
    await screenshot(page, ZERO, (m) => t.diagnostic(m));
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, []);
    assert.ok(info.findings.some((x) => x.detector === 'zero-window'), 'zero-window reported');
    assert.deepEqual(info.findings.map((x) => x.id), findings.map((x) => x.id));

    const conv = info.conversations.find((c) => clientOf(c.heading) === f.sender);
    assert.ok(conv, 'the stalled conversation is drawn');
    const c2s = series(conv, 'client');
    const s2c = series(conv, 'server');
    assert.equal(drawn(c2s, 'server-zero-window'), f.zero_window_count);
    assert.equal(drawn(c2s, 'client-probe'), f.persist_probe_count);
    assert.equal(drawn(c2s, 'client-retrans'), f.counts.retransmissions_tshark);
    assert.equal(drawn(c2s, 'client-fin') + drawn(s2c, 'server-fin'), f.counts.fin);
    assert.equal(drawn(c2s, 'server-ack'), conversation.frames_server_to_client);
    assert.equal(drawn(s2c, 'client-ack'), conversation.frames_client_to_server - 1);
    assert.equal(drawn(c2s, 'client-rst') + drawn(s2c, 'server-rst'), f.counts.rst);

    assert.equal(conv.ladder.length, conversation.frames_client_to_server + conversation.frames_server_to_client);
    const framesWith = (note: string) => conv.ladder.filter((r) => r.notes.includes(note)).map((r) => r.frame);
    assert.deepEqual(framesWith('zero window'), f.zero_window_frames.map((z) => z.frame));
    assert.deepEqual(framesWith('zero-window probe'), f.persist_probes.map((p) => p.frame));
    assert.deepEqual(framesWith('retransmission'), f.retransmissions.map((r) => r.frame));
    assert.deepEqual(framesWith('window reopened'), [f.window_reopened.frame]);
  } finally {
    await page.close();
  }
});

test('two captures in one report: one timeline each, graphs under the report\'s conversation numbers', skipUnless(STORM, ZERO), async (t) => {
  const storm = facts<StormFacts>(STORM);
  const zero = facts<ZeroFacts>(ZERO);
  const { html } = report('two-captures', [capture(`${STORM}.pcap`), capture(`${ZERO}.pcap`)]);
  const { page, info, problems } = await open(html);
  try {
    await screenshot(page, 'two-captures', (m) => t.diagnostic(m));
    assert.deepEqual(problems, []);
    assert.equal(info.timelines.length, 2);
    assert.match(info.timelines[0].caption, new RegExp(`${STORM}\\.pcap`));
    assert.match(info.timelines[1].caption, new RegExp(`${ZERO}\\.pcap`));
    // Conversations are numbered on across captures: the zero-window one comes after the storm's.
    const conv = info.conversations.find((c) => clientOf(c.heading) === zero.sender);
    assert.ok(conv);
    assert.equal(conv.id, storm.conversations.length + 1);
    assert.equal(drawn(series(conv, 'client'), 'server-zero-window'), zero.zero_window_count);
    const stormConv = info.conversations.find((c) => clientOf(c.heading) === storm.storm.client);
    assert.ok(stormConv);
    assert.equal(drawn(series(stormConv, 'client'), 'client-retrans'), storm.storm.retransmission_count);
    assert.equal(info.tableIds.length, storm.conversations.length + zero.conversations.length);
  } finally {
    await page.close();
  }
});

test('the report file loads nothing: no external scripts, styles, fonts or images', { skip: existsSync(capture(`${STORM}.pcap`)) ? false : 'capture not generated' }, () => {
  const html = readFileSync(report(`${STORM}-static`, [capture(`${STORM}.pcap`)]).html, 'utf8');
  assert.doesNotMatch(html, /<(link|img|iframe|object|embed)\b/i);
  assert.doesNotMatch(html, /<script[^>]+src=/i);
  assert.doesNotMatch(html, /url\((?!#)|@import|https?:\/\//i);
});
