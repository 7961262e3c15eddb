import type { Command } from 'commander';
import { AffectError } from '../errors.js';

/** Registers `circumplex run`. Placeholder until its issue lands: fails loudly, never pretends. */
export function register(program: Command): void {
  program
    .command('run')
    .description('(run: not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new AffectError('AFFECT_ERR_INTERNAL', '"run" is not implemented yet');
    });
}
