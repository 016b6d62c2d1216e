import type { ChalkInstance } from 'chalk';
import type { DetectorSpec } from '../detect/detector.js';

export interface CatalogueSection {
  heading: string;
  specs: readonly DetectorSpec[];
}

/** `connscope explain`: one line per finding kind, in sections sharing one id column. */
export function renderCatalogue(sections: readonly CatalogueSection[], chalk: ChalkInstance): string {
  const width = Math.max(...sections.flatMap((section) => section.specs.map((s) => s.id.length)));
  const blocks = sections.map((section) =>
    [
      chalk.bold(section.heading),
      ...section.specs.map((s) => `  ${chalk.bold(s.id.padEnd(width))}  ${s.severity.padEnd(8)} ${s.summary}`),
    ].join('\n'),
  );
  return blocks.join('\n\n') + '\n';
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
