import { basename } from 'node:path';
import type { AnalysisResult } from '../core/session.js';
import { type Finding, type Severity, severityRank } from '../detect/finding.js';
import { formatEvidence } from './text.js';

export interface JunitOptions {
  /** Detector ids that ran: each is one test case per capture. */
  detectors: readonly string[];
  /** A finding at or above this severity fails its test case (default: warning). */
  failOn: Severity;
  /** When the report was made: JUnit wants a local time without zone. */
  timestamp: Date;
  hostname: string;
}

function escape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    // XML 1.0 cannot carry most control characters, even escaped.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

function isoWithoutZone(date: Date): string {
  return date.toISOString().slice(0, 19);
}

function describe(finding: Finding): string {
  return `${finding.severity.toUpperCase()} ${finding.title}\n` +
    `evidence: ${formatEvidence(finding.evidence)}\nwhy: ${finding.explanation}\n` +
    finding.advice.map((a) => `- ${a}`).join('\n');
}

/**
 * JUnit XML in the Apache Ant format that CI systems read (Jenkins, GitLab, GitHub actions): one
 * <testsuite> per capture, one <testcase> per detector, failing where that detector found something
 * at or above the fail-on severity; findings below it are listed in the suite's system-out.
 */
export function renderJunit(result: AnalysisResult, options: JunitOptions): string {
  const inputOf = new Map(result.conversations.map((c) => [c.id, c.input]));
  const limit = severityRank(options.failOn);
  const suites = result.inputs.map((input, index) => {
    const findings = result.findings.filter((f) => (inputOf.get(f.conversations[0]) ?? 0) === index);
    const name = escape(basename(input.path) || input.path);
    const header = (tests: number, failures: number, errors: number) =>
      `  <testsuite name="${name}" package="connscope" id="${index}" timestamp="${isoWithoutZone(options.timestamp)}" ` +
      `hostname="${escape(options.hostname)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="0" time="0">`;
    const properties = [
      `      <property name="path" value="${escape(input.path)}"/>`,
      `      <property name="packets" value="${input.packets}"/>`,
      `      <property name="tcpPackets" value="${input.tcpPackets}"/>`,
      ...input.warnings.map((w, i) => `      <property name="warning.${i + 1}" value="${escape(w)}"/>`),
    ];
    if (input.error !== null) {
      return [
        header(1, 0, 1),
        '    <properties>', ...properties, '    </properties>',
        `    <testcase name="read" classname="connscope.${name}" time="0">`,
        `      <error message="${escape(input.error)}" type="unreadable-capture">${escape(input.error)}</error>`,
        '    </testcase>',
        '    <system-out></system-out>',
        '    <system-err></system-err>',
        '  </testsuite>',
      ].join('\n');
    }
    let failures = 0;
    const cases = options.detectors.map((detector) => {
      const mine = findings.filter((f) => f.detector === detector);
      const failing = mine.filter((f) => severityRank(f.severity) <= limit);
      const open = `    <testcase name="${escape(detector)}" classname="connscope.${name}" time="0">`;
      // Findings below the threshold do not fail the case; the suite's system-out lists them.
      if (failing.length === 0) return `${open.slice(0, -1)}/>`;
      failures++;
      const worst = failing[0].severity;
      const message = `${failing.length} finding${failing.length > 1 ? 's' : ''} at ${options.failOn} or above (worst: ${worst})`;
      return `${open}\n      <failure message="${escape(message)}" type="${worst}">${escape(failing.map(describe).join('\n\n'))}</failure>\n    </testcase>`;
    });
    const below = findings.filter((f) => severityRank(f.severity) > limit);
    return [
      header(options.detectors.length, failures, 0),
      '    <properties>', ...properties, '    </properties>',
      ...cases,
      `    <system-out>${escape(below.map(describe).join('\n\n'))}</system-out>`,
      '    <system-err></system-err>',
      '  </testsuite>',
    ].join('\n');
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n${suites.join('\n')}\n</testsuites>\n`;
}
