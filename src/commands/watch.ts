import type { Command } from 'commander';
import { AffectError } from '../errors.js';

/** Registers `circumplex watch`. Placeholder until its issue lands: fails loudly, never pretends. */
export function register(program: Command): void {
  program
    .command('watch')
    .description('(watch: not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new AffectError('AFFECT_ERR_INTERNAL', '"watch" is not implemented yet');
    });
}
