/**
 * RAVDESS clips for the escalation checks on real speech (bench/escalation-speech.ts and the tests
 * that run calm-then-angry calls): which clips an actor has for given emotion codes, and how long
 * a list of audio files plays (sox's soxi).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * RAVDESS speech clips (`03-01-<emotion>-…-<actor>.flac` in `flacDir`) of `actor` whose emotion code
 * is one of `codes` (01 neutral, 02 calm, 03 happy, 05 angry, …), in name order.
 */
export function ravdessClips(flacDir: string, actor: string, codes: readonly string[]): string[] {
  return readdirSync(flacDir)
    .filter((f) => codes.some((c) => f.startsWith(`03-01-${c}-`)) && f.endsWith(`-${actor}.flac`))
    .sort()
    .map((f) => path.join(flacDir, f));
}

/** Seconds the audio files play one after another (soxi -D per file, summed). */
export function audioSeconds(files: readonly string[]): number {
  return execFileSync('soxi', ['-D', ...files])
    .toString()
    .trim()
    .split('\n')
    .reduce((s, x) => s + Number(x), 0);
}
