/**
 * Small file-system checks shared by the commands.
 */
import { statSync } from 'node:fs';

/**
 * True when both paths exist and are the same file (same device and inode: a hard or symbolic link,
 * or another spelling of the path, counts). A path that does not exist is never the same file.
 */
export function sameFile(a: string, b: string): boolean {
  const x = statSync(a, { throwIfNoEntry: false });
  const y = statSync(b, { throwIfNoEntry: false });
  return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
}
