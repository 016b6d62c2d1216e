import type { Command } from 'commander';
import { ladderOf } from '../core/analyze.js';
import { parseSelector } from '../core/ladder.js';
import { noteLabels, renderLadder } from '../report/ladder.js';
import { UsageError } from './errors.js';
import { chalkFor } from './shared-options.js';

interface FlowCliOptions {
  json?: boolean;
  color: boolean;
}

export function registerFlow(program: Command, setCode: (code: number) => void): void {
  program
    .command('flow')
    .description('the ladder of one conversation: every packet with relative seq/ack and annotations')
    .argument('<capture>', 'capture file (- for stdin)')
    .argument('<conversation>', 'conversation id (from analyze) or client:port-server:port')
    .option('--json', 'rows as JSON')
    .option('--no-color', 'no colour (also: NO_COLOR=1)')
    .action(async (path: string, which: string, options: FlowCliOptions) => {
      const selector = parseSelector(which);
      const { ladders, errors } = await ladderOf(path, selector);
      if (errors.length > 0) throw new UsageError(errors[0]);
      if (ladders.size === 0) throw new UsageError(`no conversation ${which} in ${path} (run \`connscope analyze ${path} --flows all\` to list them)`);
      if (options.json === true) {
        const out = [...ladders.values()].map(({ summary, rows, truncated }) => ({
          conversation: summary,
          truncated,
          packets: rows.map((row) => ({ ...row, notes: noteLabels(row.notes) })),
        }));
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else {
        const chalk = chalkFor(process.stdout, options);
        process.stdout.write([...ladders.values()].map(({ summary, rows, truncated }) => renderLadder(summary, rows, truncated, chalk)).join('\n'));
      }
      setCode(0);
    });
}
