import type { Command } from 'commander';
import { CORRELATION_SPECS } from '../correlate/catalogue.js';
import { DETECTORS } from '../detect/registry.js';
import { renderCatalogue, renderDetector } from '../report/explain.js';
import { UsageError } from './errors.js';
import { chalkFor } from './shared-options.js';

export function registerExplain(program: Command, setCode: (code: number) => void): void {
  program
    .command('explain')
    .description('what each detector (and each correlate finding) looks for, its evidence, thresholds and advice')
    .argument('[detector]', 'detector or correlate finding id')
    .option('--no-color', 'no colour (also: NO_COLOR=1)')
    .action((id: string | undefined, options: { color: boolean }) => {
      const chalk = chalkFor(process.stdout, options);
      if (id === undefined) {
        process.stdout.write(
          renderCatalogue(
            [
              { heading: 'Detectors (connscope explain <id> for details):', specs: DETECTORS },
              { heading: 'Found only by connscope correlate (two captures):', specs: CORRELATION_SPECS },
            ],
            chalk,
          ),
        );
      } else {
        const known = [...DETECTORS, ...CORRELATION_SPECS];
        const spec = known.find((s) => s.id === id);
        if (!spec) throw new UsageError(`unknown detector "${id}"; known: ${known.map((s) => s.id).join(', ')}`);
        process.stdout.write(renderDetector(spec, chalk));
      }
      setCode(0);
    });
}
