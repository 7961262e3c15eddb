import type { Command } from 'commander';
import { AffectError } from '../errors.js';

/** Registers `circumplex serve`. Placeholder until its issue lands: fails loudly, never pretends. */
export function register(program: Command): void {
  program
    .command('serve')
    .description('(serve: not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new AffectError('AFFECT_ERR_INTERNAL', '"serve" is not implemented yet');
    });
}
