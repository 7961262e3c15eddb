import type { Command } from 'commander';
import { AffectError } from '../errors.js';

/** Registers `circumplex models`. Placeholder until its issue lands: fails loudly, never pretends. */
export function register(program: Command): void {
  program
    .command('models')
    .description('(models: not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new AffectError('AFFECT_ERR_INTERNAL', '"models" is not implemented yet');
    });
}
