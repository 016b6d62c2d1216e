import { type Command, Option } from 'commander';
import { analyzeFiles } from '../core/analyze.js';
import type { Severity } from '../detect/finding.js';
import { writeJsonReport } from '../report/json.js';
import { type FlowSelection, renderText } from '../report/text.js';
import { ProgressBar } from './progress.js';
import {
  addPolicyOptions,
  chalkFor,
  findingsExitCode,
  parseNonNegativeInteger,
  policyFromOptions,
  type PolicyCliOptions,
} from './shared-options.js';

interface AnalyzeCliOptions extends PolicyCliOptions {
  json?: boolean;
  format: 'text' | 'json';
  flows?: FlowSelection;
  limit: number;
  host?: string[];
  port?: number[];
  quiet?: boolean;
  merge?: boolean;
  maxConversations?: number;
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
    .addOption(new Option('--format <format>', 'report format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--flows <which>', 'conversations to list (default: text the 20 most interesting, JSON all)')
      .choices(['all', 'flagged', 'none', 'interesting']))
    .option('--limit <n>', 'conversations listed when --flows is interesting', parseNonNegativeInteger, 20)
    .option('--host <ip>', 'only packets to or from this address (repeatable)', collect(String))
    .option('--port <port>', 'only packets to or from this TCP port (repeatable)', collect(parseNonNegativeInteger))
    .option('-q, --quiet', 'text: findings and summary line only')
    .option('--merge', 'the files are one capture split in parts (tcpdump -C/-G): track conversations across them')
    .option('--max-conversations <n>', 'conversations tracked at once before the most idle are evicted', parseNonNegativeInteger);
  addPolicyOptions(command).action(async (paths: string[], options: AnalyzeCliOptions) => {
    setCode(await runAnalyze(paths, options));
  });
}

async function runAnalyze(paths: string[], options: AnalyzeCliOptions): Promise<number> {
  const format = options.json === true ? 'json' : options.format;
  const policy = policyFromOptions(options);
  const progress = new ProgressBar();
  const { result, errors } = await analyzeFiles(paths, {
    policy,
    merge: options.merge === true,
    filter: { hosts: options.host, ports: options.port },
    tracker: options.maxConversations !== undefined ? { maxConversations: options.maxConversations } : {},
    onProgress: (path, read, total) => progress.update(path, read, total),
  });
  progress.clear();
  for (const error of errors) process.stderr.write(`connscope: error: ${error}\n`);
  for (const input of result.inputs) {
    for (const warning of input.warnings) {
      if (format !== 'text') process.stderr.write(`connscope: warning: ${input.path}: ${warning}\n`);
    }
  }
  const flows = options.flows ?? (format === 'json' ? 'all' : 'interesting');
  if (format === 'json') {
    const shown = flows === 'all' || flows === 'interesting' ? result : {
      ...result,
      conversations: flows === 'none' ? [] : result.conversations.filter((c) => result.findings.some((f) => f.conversations.includes(c.id))),
    };
    await writeJsonReport(shown, process.stdout);
  } else {
    const chalk = chalkFor(process.stdout, options);
    process.stdout.write(renderText(result, { chalk, flows, limit: options.limit, quiet: options.quiet === true }));
  }
  return errors.length > 0 ? 2 : findingsExitCode(result.findings, options.failOn as Severity | undefined);
}
