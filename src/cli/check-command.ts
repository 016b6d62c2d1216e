import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { analyzeFiles } from '../core/analyze.js';
import { checkExpectations, parseExpectFile } from '../core/expect.js';
import { hostPort } from '../report/format.js';
import { UsageError } from './errors.js';
import { addPolicyOptions, chalkFor, policyFromOptions, type PolicyCliOptions } from './shared-options.js';

interface CheckCliOptions extends PolicyCliOptions {
  expect: string;
  merge?: boolean;
}

export function registerCheck(program: Command, setCode: (code: number) => void): void {
  const command = program
    .command('check')
    .description('CI: pass when a capture shows exactly the expected findings (an expect file), exit 1 otherwise')
    .argument('<capture...>', 'capture files')
    .requiredOption('--expect <file>', 'expect file: {"findings": [{"detector", "client", "server", "severity", "evidence": {...}}]}')
    .option('--merge', 'the files are parts of one capture');
  addPolicyOptions(command, 'unexpected findings at or above this severity fail the check (default: the expect file\'s failOn, else warning)').action(async (paths: string[], options: CheckCliOptions) => {
    let text: string;
    try {
      text = readFileSync(options.expect, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read expect file ${options.expect}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const expect = parseExpectFile(text, options.expect);
    const { result, errors } = await analyzeFiles(paths, { policy: policyFromOptions(options), merge: options.merge === true });
    for (const error of errors) process.stderr.write(`connscope: error: ${error}\n`);
    if (errors.length > 0) {
      setCode(2);
      return;
    }
    const outcome = checkExpectations(result.findings, { ...expect, failOn: options.failOn ?? expect.failOn });
    const chalk = chalkFor(process.stdout, options);
    const lines: string[] = [];
    for (const { expected, matched, reasons } of outcome.expectations) {
      const what = `${expected.detector} client=${expected.client ?? '*'} server=${expected.server ?? '*'}`;
      if (matched !== null) lines.push(`${chalk.green('✔ present ')} ${what} → ${matched.id} (${matched.severity}) ${matched.title}`);
      else lines.push(`${chalk.red('✘ missing ')} ${what}: ${reasons.join(' | ')}`);
    }
    for (const finding of outcome.unexpected) {
      const where = finding.server ? ` ${hostPort(finding.server)}` : '';
      lines.push(`${chalk.red('✘ unexpected')} ${finding.detector}${where} (${finding.severity}) ${finding.title}`);
    }
    lines.push(chalk.bold(`check ${outcome.passed ? 'passed' : 'failed'}: ${outcome.expectations.filter((e) => e.matched).length}/${outcome.expectations.length} expected findings present, ${outcome.unexpected.length} unexpected`));
    process.stdout.write(`${lines.join('\n')}\n`);
    setCode(outcome.passed ? 0 : 1);
  });
}
