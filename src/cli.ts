/**
 * The `circumplex` command line. Each subcommand lives in src/commands/<name>.ts and registers itself.
 * Errors are printed with their code and hint, and the process exits non-zero; never a stack dump
 * for an expected failure.
 */
import { Command, CommanderError } from 'commander';
import { AffectError } from '../core/errors.js';
import { getLogger } from '../core/log.js';
import { register as registerRun } from './commands/run.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerModels } from './commands/models.js';
import { register as registerWatch } from './commands/watch.js';
import { register as registerReplay } from './commands/replay.js';
import { register as registerValidate } from './commands/validate.js';
import { register as registerEvaluate } from './commands/evaluate.js';

/** Builds the program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command('circumplex')
    .description("Streaming affect tracker: live speech to valence/arousal on Russell's circumplex")
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerRun(program);
  registerServe(program);
  registerModels(program);
  registerWatch(program);
  registerReplay(program);
  registerValidate(program);
  registerEvaluate(program);
  return program;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof AffectError) {
      process.stderr.write(`circumplex: ${err.describe()}\n`);
      return 2;
    }
    reportUnexpected(err);
    return 1;
  }
}

/**
 * An error nobody expected (a bug), on stderr where the logs go: one JSON log line at `fatal` with
 * the stack as a field, then one plain line. Node's own report, and the `unexpected error` line this
 * replaced, spread the stack over many plain lines, which a JSON log pipeline splits into as many
 * unparsable records, losing the crash's cause. With logging silenced, the plain line alone.
 */
export function reportUnexpected(err: unknown): void {
  const log = getLogger();
  if (log.isLevelEnabled('fatal')) log.fatal({ err }, 'unexpected error; exiting');
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`circumplex: unexpected error: ${message.split('\n')[0] ?? ''}\n`);
}

// Only run when executed directly (the bin shim or `tsx src/cli.ts`), not when imported by tests.
const entry = process.argv[1] ?? '';
if (entry.endsWith('cli.ts') || entry.endsWith('cli.js') || entry.endsWith('circumplex.mjs') || entry.endsWith('circumplex')) {
  // A crash of a running command (serve), unhandled rejections included, reported as above.
  process.on('uncaughtException', (err) => {
    reportUnexpected(err);
    process.exit(1);
  });
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`circumplex: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
