import type { ChalkInstance } from 'chalk';
import type { DetectorSpec } from '../detect/detector.js';

/** `connscope explain`: one line per detector. */
export function renderCatalogue(specs: readonly DetectorSpec[], chalk: ChalkInstance): string {
  const width = Math.max(...specs.map((s) => s.id.length));
  const lines = specs.map((s) => `  ${chalk.bold(s.id.padEnd(width))}  ${s.severity.padEnd(8)} ${s.summary}`);
  return [chalk.bold('Detectors (connscope explain <id> for details):'), ...lines].join('\n') + '\n';
}

function wrap(text: string, width = 96, indent = '  '): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line !== '' && line.length + word.length + 1 > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

/** `connscope explain <id>`: the whole story of one detector. */
export function renderDetector(spec: DetectorSpec, chalk: ChalkInstance): string {
  const out = [chalk.bold(`${spec.id} — ${spec.title}`), `  default severity: ${spec.severity}`, '', wrap(spec.explanation), ''];
  out.push(chalk.bold('Evidence fields'));
  for (const [name, meaning] of Object.entries(spec.evidence)) out.push(`  ${name.padEnd(24)} ${meaning}`);
  out.push('', chalk.bold('Thresholds (override with --set ' + spec.id + '.<name>=<value> or a --config file)'));
  const thresholds = Object.entries(spec.thresholds);
  if (thresholds.length === 0) out.push('  none');
  for (const [name, t] of thresholds) out.push(`  ${name.padEnd(24)} ${String(t.default).padStart(8)} ${t.unit.padEnd(10)} ${t.description}`);
  out.push('', chalk.bold('Advice'));
  for (const advice of spec.advice) out.push(wrap(advice, 96, '    ').replace(/^ {4}/, '  - '));
  return out.join('\n') + '\n';
}
