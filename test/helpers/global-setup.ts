/** Integration-suite setup: nothing global yet beyond making sure the results folder exists. */
import { mkdirSync } from 'node:fs';

export default function setup(): void {
  mkdirSync('test-results', { recursive: true });
}
