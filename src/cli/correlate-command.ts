import type { Command } from 'commander';
import { Option } from 'commander';
import { CORRELATION_SPECS } from '../correlate/catalogue.js';
import { correlateFiles, DEFAULT_MAX_FORWARD_DELAY } from '../correlate/correlate.js';
import type { Severity } from '../detect/finding.js';
import { DETECTORS } from '../detect/registry.js';
import { renderCorrelateText, writeCorrelateJson } from '../report/correlate.js';
import type { FlowSelection } from '../report/text.js';
import { UsageError } from './errors.js';
import { addPolicyOptions, chalkFor, findingsExitCode, parseNonNegativeInteger, parseNumber, parsePositiveNumber, policyFromOptions, type PolicyCliOptions } from './shared-options.js';

interface CorrelateCliOptions extends PolicyCliOptions {
  json?: boolean;
  clockOffset?: number;
  maxForwardDelay?: number;
  flows?: FlowSelection;
  limit: number;
  quiet?: boolean;
}

export function registerCorrelate(program: Command, setCode: (code: number) => void): void {
  const command = program
    .command('correlate')
    .description('correlate two captures of the same traffic (both ends of a path, or both legs of a proxy): lost, forged and unforwarded packets')
    .argument('<captureA>', 'first capture (e.g. taken on the client host, or the proxy\'s front leg)')
    .argument('<captureB>', 'second capture (e.g. taken on the server host, or the proxy\'s back leg)')
    .option('--json', 'JSON report: analyze\'s schema plus a "correlation" section')
    .option('--clock-offset <seconds>', 'B\'s clock minus A\'s, in seconds (overrides the estimate; --clock-offset=-1.5 for negative values)', parseNumber)
    .option('--max-forward-delay <seconds>', `longest delay through a proxy when pairing by payload (default ${DEFAULT_MAX_FORWARD_DELAY})`, parsePositiveNumber)
    .addOption(new Option('--flows <which>', 'conversations to list (default: text those with findings, JSON all)').choices(['all', 'flagged', 'none', 'interesting']))
    .option('--limit <n>', 'conversations listed when --flows is interesting', parseNonNegativeInteger, 20)
    .option('-q, --quiet', 'text: findings and summary line only');
  addPolicyOptions(command).action(async (pathA: string, pathB: string, options: CorrelateCliOptions) => {
    setCode(await runCorrelate(pathA, pathB, options));
  });
}

async function runCorrelate(pathA: string, pathB: string, options: CorrelateCliOptions): Promise<number> {
  if (pathA === '-' || pathB === '-') throw new UsageError('correlate reads two capture files; stdin (-) is not supported');
  const policy = policyFromOptions(options, [...DETECTORS, ...CORRELATION_SPECS]);
  const outcome = await correlateFiles(pathA, pathB, {
    policy,
    clockOffset: options.clockOffset ?? null,
    maxForwardDelay: options.maxForwardDelay,
  });
  for (const error of outcome.errors) process.stderr.write(`connscope: error: ${error}\n`);
  if (outcome.errors.length > 0) return 2;
  const json = options.json === true;
  if (json || options.quiet === true) {
    for (const input of outcome.result.inputs) for (const warning of input.warnings) process.stderr.write(`connscope: warning: ${input.path}: ${warning}\n`);
  }
  const flows = options.flows ?? (json ? 'all' : 'flagged');
  if (json) {
    const result = outcome.result;
    const flagged = new Set(result.findings.flatMap((f) => f.conversations));
    const conversations = flows === 'none' ? [] : flows === 'flagged' ? result.conversations.filter((c) => flagged.has(c.id)) : result.conversations;
    await writeCorrelateJson({ ...outcome, result: { ...result, conversations } }, process.stdout);
  } else {
    process.stdout.write(renderCorrelateText(outcome, {
      chalk: chalkFor(process.stdout, options), flows, limit: options.limit, quiet: options.quiet === true,
    }));
  }
  return findingsExitCode(outcome.result.findings, options.failOn as Severity | undefined);
}
