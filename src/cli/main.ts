import { Command, CommanderError, Option } from 'commander';
import { TOOL } from '../version.js';
import { registerAnalyze } from './analyze-command.js';
import { registerCheck } from './check-command.js';
import { registerCorrelate } from './correlate-command.js';
import { registerExplain } from './explain-command.js';
import { registerFlow } from './flow-command.js';
import { registerInterfaces, registerLive } from './live-command.js';
import { isUserError } from './errors.js';

/** Exit codes, one meaning each (documented in the README). */
export const EXIT = { ok: 0, findings: 1, error: 2 } as const;

/**
 * `connscope analyze x.pcap --json | head`: the reader closing the pipe is not a crash (without a
 * listener, Node throws the EPIPE as an unhandled 'error' event, stack trace and all). The rest of
 * the output is dropped (the report writers stop at a destroyed stream) and the exit code stays the
 * command's own. Live capture adds its own listener, which stops the capture.
 */
function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
}

function toleratePipeClose(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (!stream.listeners('error').includes(ignoreClosedPipe)) stream.on('error', ignoreClosedPipe);
  }
}

/**
 * Parses argv and runs one command. Every command returns its exit code; nothing below the CLI
 * layer calls process.exit or prints, so the core stays usable as a library and in tests.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const debug = argv.includes('--debug');
  toleratePipeClose();
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
  registerCorrelate(program, setCode);
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
