import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { DetectorSpec } from '../detect/detector.js';
import { type Severity, SEVERITIES, severityRank, type Finding } from '../detect/finding.js';
import { applySetting, emptyPolicy, type Policy, policyFromJson } from '../detect/policy.js';
import { DETECTORS } from '../detect/registry.js';
import { chooseColorLevel, makeChalk } from '../report/color.js';
import { UsageError } from './errors.js';

/** Options every command that reports findings shares (analyze, live, correlate, check). */
export interface PolicyCliOptions {
  set?: string[];
  config?: string;
  failOn?: Severity;
  color: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addPolicyOptions(command: Command, failOnMeaning = 'exit 1 when a finding at or above this severity exists'): Command {
  return command
    .addOption(new Option('--fail-on <severity>', failOnMeaning).choices(SEVERITIES))
    .option('--set <detector.name=value>', 'override a threshold, severity or enabled flag (repeatable)', collect)
    .option('--config <file>', 'policy file: {"thresholds": {...}, "severity": {...}, "disabled": [...]}')
    .option('--no-color', 'no colour (also: NO_COLOR=1)');
}

/** --config then --set, validated against the finding kinds the command can produce. */
export function policyFromOptions(options: PolicyCliOptions, specs: readonly DetectorSpec[] = DETECTORS): Policy {
  let policy = emptyPolicy();
  if (options.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.config, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read policy file ${options.config}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    policy = policyFromJson(text, options.config, specs);
  }
  for (const assignment of options.set ?? []) applySetting(policy, assignment, specs);
  return policy;
}

export function chalkFor(stream: { isTTY?: boolean }, options: { color: boolean }) {
  return makeChalk(chooseColorLevel(stream, options.color));
}

/** Exit code from findings: 1 when --fail-on is given and met, else 0. */
export function findingsExitCode(findings: readonly Finding[], failOn: Severity | undefined): number {
  if (failOn === undefined) return 0;
  const limit = severityRank(failOn);
  return findings.some((f) => severityRank(f.severity) <= limit) ? 1 : 0;
}

/** Any finite number (an offset may be negative); an empty argument is not 0. */
export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`expected a number, got "${value}"`);
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = parseNumber(value);
  if (n <= 0) throw new UsageError(`expected a positive number, got "${value}"`);
  return n;
}

export function parseNonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`expected a whole number, got "${value}"`);
  return n;
}
