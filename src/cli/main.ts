import { Command, CommanderError, Option } from 'commander';
import { TOOL } from '../version.js';
import { registerAnalyze } from './analyze-command.js';
import { registerCheck } from './check-command.js';
import { registerExplain } from './explain-command.js';
import { registerFlow } from './flow-command.js';
import { registerInterfaces, registerLive } from './live-command.js';
import { isUserError } from './errors.js';

/** Exit codes, one meaning each (documented in the README). */
export const EXIT = { ok: 0, findings: 1, error: 2 } as const;

/**
 * Parses argv and runs one command. Every command returns its exit code; nothing below the CLI
 * layer calls process.exit or prints, so the core stays usable as a library and in tests.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const program = new Command()
    .name('connscope')
    .description('Diagnose TCP connection failures from packets: what broke, on which connection, why, and what to change.')
    .version(TOOL.version, '-V, --version')
    .addOption(new Option('--debug', 'print stack traces of internal errors'))
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`connscope: ${text}`) })
    .showHelpAfterError('(run `connscope --help` for usage)');
  let code: number = EXIT.ok;
  const setCode = (value: number) => {
    code = value;
  };
  registerAnalyze(program, setCode);
  registerFlow(program, setCode);
  registerCheck(program, setCode);
  registerExplain(program, setCode);
  registerLive(program, setCode);
  registerInterfaces(program, setCode);
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.error;
    if (isUserError(error)) {
      process.stderr.write(`connscope: error: ${error.message}\n`);
      return EXIT.error;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`connscope: error: ${message}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return EXIT.error;
  }
  return code;
}
