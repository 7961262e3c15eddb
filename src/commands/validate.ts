import type { Command } from 'commander';
import { AffectError } from '../errors.js';

/** Registers `circumplex validate`. Placeholder until its issue lands: fails loudly, never pretends. */
export function register(program: Command): void {
  program
    .command('validate')
    .description('(validate: not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new AffectError('AFFECT_ERR_INTERNAL', '"validate" is not implemented yet');
    });
}
