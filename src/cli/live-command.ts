import { constants as osConstants } from 'node:os';
import { type Command, Option } from 'commander';
import type { Severity } from '../detect/finding.js';
import { linkTypeName } from '../decode/link-types.js';
import { writeJsonReport } from '../report/json.js';
import { formatBytes, formatCount, formatDuration } from '../report/format.js';
import { type FlowSelection, renderText } from '../report/text.js';
import { DEFAULT_BUFFER_MIB, LiveCapture, type LiveOutcome } from '../live/capture.js';
import { LiveError } from '../live/errors.js';
import { formatInterfaceList, listInterfaces } from '../live/interfaces.js';
import { JsonView, LineView, type LiveView, SafeOutput, ScreenView } from '../live/views.js';
import { plural } from '../english.js';
import { UsageError } from './errors.js';
import {
  addPolicyOptions,
  chalkFor,
  findingsExitCode,
  parseNonNegativeInteger,
  parsePositiveNumber,
  policyFromOptions,
  type PolicyCliOptions,
} from './shared-options.js';

interface LiveCliOptions extends PolicyCliOptions {
  interface?: string;
  filter?: string;
  backend: 'cap' | 'tcpdump';
  duration?: number;
  count?: number;
  json?: boolean;
  write?: string;
  timePrecision: 'micro' | 'nano';
  bufferSize: number;
  dropPrivileges: boolean;
  flows?: FlowSelection;
  limit: number;
  quiet?: boolean;
  maxConversations?: number;
}

function parsePositiveInteger(value: string): number {
  const n = parseNonNegativeInteger(value);
  if (n === 0) throw new UsageError(`expected a positive whole number, got "${value}"`);
  return n;
}

function parseBufferSize(value: string): number {
  const n = parsePositiveInteger(value);
  // cap takes the size in bytes as a signed 32-bit integer.
  if (n > 2047) throw new UsageError(`--buffer-size is in MiB, at most 2047, got ${value}`);
  return n;
}

export function registerLive(program: Command, setCode: (code: number) => void): void {
  const command = program
    .command('live')
    .description('capture on an interface and report findings as they happen; the same final report as analyze')
    .argument('[filter...]', 'BPF capture filter, as for tcpdump (or -f)')
    .option('-i, --interface <iface>', 'interface to capture on (`connscope interfaces` lists them; "any" for all)')
    .option('-f, --filter <expr>', 'BPF capture filter (man 7 pcap-filter), e.g. "tcp port 443"')
    .addOption(new Option('--backend <backend>', 'capture with libpcap through the cap module, or through a tcpdump process').choices(['cap', 'tcpdump']).default('cap'))
    .option('--duration <seconds>', 'stop after this many seconds', parsePositiveNumber)
    .option('-c, --count <packets>', 'stop after this many packets', parsePositiveInteger)
    .option('--json', 'NDJSON events (start, finding, stats, warning), then the JSON report of analyze --json as the last line')
    .option('-w, --write <file>', 'also write every captured packet to this pcap file (for analyze, tshark)')
    .addOption(new Option('--time-precision <precision>', 'timestamp resolution of the -w file').choices(['micro', 'nano']).default('micro'))
    .option('--buffer-size <MiB>', 'kernel capture buffer (libpcap -B): larger survives longer stalls (max 2047)', parseBufferSize, DEFAULT_BUFFER_MIB)
    .option('--no-drop-privileges', 'keep root after opening the capture (default: become the sudo user, or nobody)')
    .addOption(new Option('--flows <which>', 'final report: conversations to list (as for analyze)').choices(['all', 'flagged', 'none', 'interesting']))
    .option('--limit <n>', 'final report: conversations listed when --flows is interesting', parseNonNegativeInteger, 20)
    .option('-q, --quiet', 'final report: findings and summary line only')
    .option('--max-conversations <n>', 'conversations tracked at once before the most idle are evicted', parseNonNegativeInteger);
  addPolicyOptions(command).action(async (filterWords: string[], options: LiveCliOptions) => {
    setCode(await runLive(filterWords, options));
  });
}

export function registerInterfaces(program: Command, setCode: (code: number) => void): void {
  program
    .command('interfaces')
    .description('list the interfaces live can capture on, with their addresses (like tcpdump -D)')
    .option('--json', 'JSON list')
    .action(async (options: { json?: boolean }) => {
      const list = await listInterfaces();
      process.stdout.write(options.json === true ? `${JSON.stringify(list)}\n` : formatInterfaceList(list));
      setCode(0);
    });
}

async function runLive(filterWords: string[], options: LiveCliOptions): Promise<number> {
  if (options.filter !== undefined && filterWords.length > 0) {
    throw new UsageError('give the capture filter either with -f or after the options, not both');
  }
  const filter = (options.filter ?? filterWords.join(' ')).trim();
  const iface = options.interface ?? '';
  const format = options.json === true ? 'json' : 'text';
  const policy = policyFromOptions(options);
  const out = new SafeOutput(process.stdout);
  const chalk = chalkFor(process.stdout, options);
  const screen = format === 'text' && process.stdout.isTTY === true;
  const view: LiveView = format === 'json' ? new JsonView(out) : screen ? new ScreenView(out, chalk) : new LineView(out, chalk);
  const capture = new LiveCapture({
    iface,
    filter,
    backend: options.backend,
    durationSeconds: options.duration ?? null,
    count: options.count ?? null,
    writePath: options.write ?? null,
    nanosecond: options.timePrecision === 'nano',
    bufferBytes: options.bufferSize * 2 ** 20,
    dropPrivileges: options.dropPrivileges,
    session: {
      policy,
      tracker: options.maxConversations !== undefined ? { maxConversations: options.maxConversations } : {},
    },
  }, {
    started(info) {
      const link = info.linkType !== null ? `, link ${linkTypeName(info.linkType)}` : '';
      const parts = [`capturing on ${info.iface} (${info.backend}${link})`];
      if (info.filter !== '') parts.push(`filter "${info.filter}"`);
      if (info.writePath !== null) parts.push(`writing ${info.writePath}`);
      if (info.droppedTo !== null) parts.push(`running as ${info.droppedTo}`);
      if (!screen) process.stderr.write(`connscope: ${parts.join(', ')}; Ctrl-C stops\n`);
      view.started(info);
    },
    finding: (finding, isUpdate) => view.finding(finding, isUpdate),
    tick: (stats, session) => view.tick(stats, session),
    warning(message) {
      if (!screen) process.stderr.write(`connscope: warning: ${message}\n`);
      view.warning(message);
    },
  });
  out.onClose(() => capture.stop('output-closed'));

  // First signal: stop capturing, then the report. A second one while the capture winds down: no
  // report, but the -w file is still completed (run() resolves to null once it is). Once the -w file
  // is closed, a signal only cuts the report short: nothing is left to lose. The handlers stay
  // installed to the end: the report may still be on its way to a slow reader after we return.
  let interrupts = 0;
  let reportPhase = false;
  let abortSignal: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (reportPhase) {
      process.stderr.write(`connscope: ${signal}: report cut short\n`);
      process.exit(signalExitCode(signal));
    }
    if (interrupts === 1) {
      capture.stop(`signal ${signal}`);
      return;
    }
    abortSignal ??= signal;
    capture.abort();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);

  let outcome: LiveOutcome | null;
  try {
    outcome = await capture.run();
  } catch (error) {
    if (error instanceof LiveError) throw new UsageError(error.message);
    throw error;
  } finally {
    view.close();
  }
  reportPhase = true;
  if (outcome === null) {
    const written = capture.written !== null ? `; ${formatCount(capture.written)} packets written to ${options.write}` : '';
    process.stderr.write(`connscope: interrupted again: exiting without a report${written}\n`);
    return signalExitCode(abortSignal ?? 'SIGINT');
  }

  const { result, stats, errors, endReason } = outcome;
  const drops = stats.kernelDrops !== null ? `kernel drops ${formatCount(stats.kernelDrops)} (tcpdump)` : 'kernel drops not counted (cap)';
  const queue = (stats.queueDrops ?? 0) > 0 ? `, ${formatCount(stats.queueDrops ?? 0)} dropped by connscope (analysis behind)` : '';
  process.stderr.write(
    `connscope: ${plural(stats.packets, 'packet')} (${formatBytes(stats.bytes)}) captured on ${iface} in ${formatDuration(stats.elapsedSeconds)} ` +
      `(ended by ${endReason}); ` +
      `TCP segments not captured ${formatCount(stats.segmentsNotCaptured)}; ${drops}${queue}` +
      (stats.written !== null ? `; ${formatCount(stats.written)} written to ${options.write}` : '') + '\n',
  );
  for (const error of errors) process.stderr.write(`connscope: error: ${error}\n`);
  if (!out.closed) {
    if (format === 'json') {
      for (const input of result.inputs) for (const warning of input.warnings) process.stderr.write(`connscope: warning: ${input.path}: ${warning}\n`);
      const flows = options.flows ?? 'all';
      const shown = flows === 'all' || flows === 'interesting' ? result : {
        ...result,
        conversations: flows === 'none' ? [] : result.conversations.filter((c) => result.findings.some((f) => f.conversations.includes(c.id))),
      };
      // A reader that goes away mid-report must not leave us waiting for 'drain' forever.
      const closed = new Promise<void>((resolve) => out.onClose(resolve));
      await Promise.race([writeJsonReport(shown, process.stdout).catch(() => undefined), closed]);
    } else {
      out.write(renderText(result, { chalk, flows: options.flows ?? 'interesting', limit: options.limit, quiet: options.quiet === true }));
    }
  }
  return errors.length > 0 ? 2 : findingsExitCode(result.findings, options.failOn as Severity | undefined);
}

/** The shell's convention for a command ended by a signal: 128 + its number (130 for Ctrl-C). */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + osConstants.signals[signal];
}
