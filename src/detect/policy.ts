import { SEVERITIES, type Severity } from './finding.js';
import type { DetectorSpec } from './detector.js';

/**
 * Policy is everything about findings that is a decision rather than an observation: the numbers a
 * detector compares against, which severity a detector's findings carry, which detectors run. It is
 * kept apart from detection (as Zeek keeps notice policy apart from its analyzers) so a team can tune
 * it in a config file without touching how failures are recognised.
 */
export interface Policy {
  thresholds: Record<string, Record<string, number>>;
  severity: Record<string, Severity>;
  disabled: string[];
}

export function emptyPolicy(): Policy {
  return { thresholds: {}, severity: {}, disabled: [] };
}

export class PolicyError extends Error {}

/** Thresholds of one detector: its defaults with the policy's overrides applied. */
export function thresholdsFor(spec: DetectorSpec, policy: Policy): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [name, threshold] of Object.entries(spec.thresholds)) values[name] = threshold.default;
  return { ...values, ...policy.thresholds[spec.id] };
}

/**
 * Applies one `--set detector.name=value` assignment. `name` is a threshold, or `severity`
 * (critical|warning|info), or `enabled` (true|false).
 */
export function applySetting(policy: Policy, assignment: string, specs: readonly DetectorSpec[]): void {
  const match = /^([a-z0-9-]+)\.([A-Za-z0-9]+)=(.+)$/.exec(assignment.trim());
  if (!match) throw new PolicyError(`--set expects detector.name=value, got "${assignment}"`);
  const [, detector, name, value] = match;
  const spec = specs.find((s) => s.id === detector);
  if (!spec) throw new PolicyError(`unknown detector "${detector}" in --set (see: connscope explain)`);
  if (name === 'severity') {
    if (!(SEVERITIES as readonly string[]).includes(value)) {
      throw new PolicyError(`severity must be one of ${SEVERITIES.join(', ')}, got "${value}"`);
    }
    policy.severity[detector] = value as Severity;
  } else if (name === 'enabled') {
    if (value !== 'true' && value !== 'false') throw new PolicyError(`enabled must be true or false, got "${value}"`);
    policy.disabled = policy.disabled.filter((d) => d !== detector);
    if (value === 'false') policy.disabled.push(detector);
  } else {
    if (!(name in spec.thresholds)) {
      const known = Object.keys(spec.thresholds).join(', ') || 'none';
      throw new PolicyError(`unknown threshold "${name}" for ${detector} (thresholds: ${known})`);
    }
    const number = Number(value);
    if (!Number.isFinite(number)) throw new PolicyError(`${detector}.${name} must be a number, got "${value}"`);
    (policy.thresholds[detector] ??= {})[name] = number;
  }
}

/**
 * Reads a policy file: `{"thresholds": {"retransmit-storm": {"minRetransmits": 3}},
 * "severity": {"reset-ratio": "info"}, "disabled": ["conn-churn"]}`, validated like --set.
 */
export function policyFromJson(text: string, source: string, specs: readonly DetectorSpec[]): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new PolicyError(`${source}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null) throw new PolicyError(`${source}: expected a JSON object`);
  const policy = emptyPolicy();
  const { thresholds = {}, severity = {}, disabled = [] } = raw as Record<string, unknown>;
  for (const [detector, values] of Object.entries(thresholds as Record<string, Record<string, unknown>>)) {
    for (const [name, value] of Object.entries(values)) applySetting(policy, `${detector}.${name}=${String(value)}`, specs);
  }
  for (const [detector, value] of Object.entries(severity as Record<string, unknown>)) {
    applySetting(policy, `${detector}.severity=${String(value)}`, specs);
  }
  if (!Array.isArray(disabled)) throw new PolicyError(`${source}: "disabled" must be a list of detector ids`);
  for (const detector of disabled) applySetting(policy, `${String(detector)}.enabled=false`, specs);
  return policy;
}
