import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type Command, Option } from 'commander';
import { analyzeFilesParallel, defaultJobs } from '../core/parallel.js';
import { applyBaseline, baselineFor, parseBaseline } from '../core/baseline.js';
import { TimelineRecorder } from '../core/timeline.js';
import type { AnalysisResult } from '../core/session.js';
import type { Severity } from '../detect/finding.js';
import { DETECTORS } from '../detect/registry.js';
import { renderHtml } from '../report/html/report.js';
import { writeJsonReport } from '../report/json.js';
import { renderJunit } from '../report/junit.js';
import { writeNdjsonReport } from '../report/ndjson.js';
import { type FlowSelection, renderText } from '../report/text.js';
import { UsageError } from './errors.js';
import { ProgressBar } from './progress.js';
import {
  addPolicyOptions,
  chalkFor,
  findingsExitCode,
  parseNonNegativeInteger,
  policyFromOptions,
  type PolicyCliOptions,
} from './shared-options.js';

type Format = 'text' | 'json' | 'ndjson' | 'junit';

interface AnalyzeCliOptions extends PolicyCliOptions {
  json?: boolean;
  format: Format;
  flows?: FlowSelection;
  limit: number;
  host?: string[];
  port?: number[];
  quiet?: boolean;
  merge?: boolean;
  maxConversations?: number;
  baseline?: string;
  writeBaseline?: string;
  html?: string;
  jobs?: number;
}

function collect<T>(parse: (value: string) => T) {
  return (value: string, previous: T[] = []): T[] => [...previous, parse(value)];
}

export function registerAnalyze(program: Command, setCode: (code: number) => void): void {
  const command = program
    .command('analyze')
    .description('analyse capture files (pcap, pcapng, gzip-compressed; - for stdin) and report findings')
    .argument('<capture...>', 'capture files; - reads stdin (tcpdump -U -w - | connscope analyze -)')
    .option('--json', 'JSON report (shorthand for --format json)')
    .addOption(new Option('--format <format>', 'report format').choices(['text', 'json', 'ndjson', 'junit']).default('text'))
    .addOption(new Option('--flows <which>', 'conversations to list (default: text the 20 most interesting, JSON all)')
      .choices(['all', 'flagged', 'none', 'interesting']))
    .option('--limit <n>', 'conversations listed when --flows is interesting', parseNonNegativeInteger, 20)
    .option('--host <ip>', 'only packets to or from this address (repeatable)', collect(String))
    .option('--port <port>', 'only packets to or from this TCP port (repeatable)', collect(parseNonNegativeInteger))
    .option('-q, --quiet', 'text: findings and summary line only')
    .option('--merge', 'the files are one capture split in parts (tcpdump -C/-G): track conversations across them')
    .option('--max-conversations <n>', 'conversations tracked at once before the most idle are evicted', parseNonNegativeInteger)
    .option('--baseline <file>', 'findings listed in this file are reported but do not count for --fail-on')
    .option('--write-baseline <file>', 'write the current findings as a baseline file')
    .option('--html <file>', 'also write a self-contained HTML report (findings, timeline, time-sequence graphs, ladders)')
    .option('--jobs <n>', 'separate captures analysed at once on worker threads (default: one per CPU; 1: one after another)',
      parsePositiveJobs);
  addPolicyOptions(command).action(async (paths: string[], options: AnalyzeCliOptions) => {
    setCode(await runAnalyze(paths, options));
  });
}

function parsePositiveJobs(value: string): number {
  const n = parseNonNegativeInteger(value);
  if (n < 1) throw new UsageError(`--jobs: expected 1 or more, got "${value}"`);
  return n;
}

function writeHtml(path: string, html: string): void {
  try {
    writeFileSync(path, html);
  } catch (error) {
    throw new UsageError(`cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function readBaseline(path: string) {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read baseline ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return parseBaseline(text, path);
}

/** Findings that count for --fail-on: all of them, less those a baseline accepted. */
function countedFindings(result: AnalysisResult) {
  const accepted = new Set(result.baseline?.suppressed ?? []);
  return result.findings.filter((f) => !accepted.has(f.id));
}

function selectFlows(result: AnalysisResult, flows: FlowSelection): AnalysisResult {
  if (flows === 'all' || flows === 'interesting') return result;
  const flagged = new Set(result.findings.flatMap((f) => f.conversations));
  return { ...result, conversations: flows === 'none' ? [] : result.conversations.filter((c) => flagged.has(c.id)) };
}

async function runAnalyze(paths: string[], options: AnalyzeCliOptions): Promise<number> {
  const format: Format = options.json === true ? 'json' : options.format;
  const policy = policyFromOptions(options);
  const baseline = options.baseline !== undefined ? readBaseline(options.baseline) : null;
  const progress = new ProgressBar();
  // The HTML report's data is gathered during the same pass (so the analysis runs in this thread).
  const timeline = options.html !== undefined ? new TimelineRecorder({ merge: options.merge === true }) : null;
  const { result, errors } = await analyzeFilesParallel(paths, {
    ...(timeline !== null ? { segmentObserver: timeline, onFinding: timeline.onFinding } : {}),
    policy,
    merge: options.merge === true,
    filter: { hosts: options.host, ports: options.port },
    tracker: options.maxConversations !== undefined ? { maxConversations: options.maxConversations } : {},
    onProgress: (path, read, total) => progress.update(path, read, total),
  }, options.jobs ?? defaultJobs());
  progress.clear();
  if (baseline !== null && options.baseline !== undefined) {
    const outcome = applyBaseline(result.findings, baseline);
    result.baseline = { path: options.baseline, suppressed: outcome.suppressed.map((f) => f.id), stale: outcome.stale };
  }
  if (options.writeBaseline !== undefined) {
    writeFileSync(options.writeBaseline, `${JSON.stringify(baselineFor(result.findings), null, 2)}\n`);
  }
  for (const error of errors) process.stderr.write(`connscope: error: ${error}\n`);
  if (errors.length === paths.length) return 2;
  if (timeline !== null && options.html !== undefined) writeHtml(options.html, renderHtml(result, timeline.data(result.findings), { generatedAt: new Date() }));
  // The text report's header shows warnings; every other output keeps stdout clean data.
  if (format !== 'text' || options.quiet === true) {
    for (const input of result.inputs) for (const warning of input.warnings) process.stderr.write(`connscope: warning: ${input.path}: ${warning}\n`);
  }
  const flows = options.flows ?? (format === 'text' ? 'interesting' : 'all');
  switch (format) {
    case 'json':
      await writeJsonReport(selectFlows(result, flows), process.stdout);
      break;
    case 'ndjson':
      await writeNdjsonReport(selectFlows(result, flows), process.stdout);
      break;
    case 'junit':
      process.stdout.write(renderJunit(result, {
        detectors: DETECTORS.filter((d) => !policy.disabled.includes(d.id)).map((d) => d.id),
        failOn: (options.failOn as Severity | undefined) ?? 'warning',
        timestamp: new Date(),
        hostname: hostname() || 'localhost',
      }));
      break;
    case 'text':
      process.stdout.write(renderText(result, {
        chalk: chalkFor(process.stdout, options), flows, limit: options.limit, quiet: options.quiet === true,
      }));
  }
  return errors.length > 0 ? 2 : findingsExitCode(countedFindings(result), options.failOn as Severity | undefined);
}
