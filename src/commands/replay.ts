import type { Command } from 'commander';
import { AffectError } from '../errors.js';

/** Registers `circumplex replay`. Placeholder until its issue lands: fails loudly, never pretends. */
export function register(program: Command): void {
  program
    .command('replay')
    .description('(replay: not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new AffectError('AFFECT_ERR_INTERNAL', '"replay" is not implemented yet');
    });
}
