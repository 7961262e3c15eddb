/**
 * Escalation alerts configured from the command line and the environment: `run` and `serve` take
 * --escalation on|off, --escalation-method, --escalation-sustain-ms, --escalation-min-z,
 * --escalation-min-blocks, --escalation-min-rate and --escalation-min-change
 * (usage errors naming the flag), CIRCUMPLEX_ESCALATION(_METHOD, _SUSTAIN_MS) are the
 * fallbacks, and the options reach the escalation detector (a longer sustain alerts later, off
 * alerts never).
 */
import { Command } from 'commander';
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli.js';
import { loadConfig } from '../../core/config.js';
import { createEngine } from '../../src/engine.js';
import { AffectError } from '../../core/errors.js';
import { escalationFromFlags, type EscalationFlags } from '../../src/commands/options.js';
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { createFilter } from '../../streams/smoothing.js';
import { deriveStreamEvents, resolveEscalationOptions, type EscalationOptions } from '../../streams/turns.js';
import type { PipelineEvent } from '../../core/types.js';
import { affectFrame } from '../helpers/affect-frame.js';
import { seededRandom } from '../../core/seeded-random.js';

/** Parses argv with the real program but captures the command's options instead of running it. */
async function parsed(cmd: 'run' | 'serve', args: string[]): Promise<EscalationFlags> {
  const program = buildProgram();
  let got: EscalationFlags | undefined;
  for (const c of program.commands) {
    c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    if (c.name() === cmd) c.action((o: EscalationFlags) => void (got = o));
  }
  await program.parseAsync(['node', 'circumplex', cmd, '--input', 'x.wav', ...args]);
  return got!;
}

const noEnv = { escalation: undefined, escalationMethod: undefined, escalationSustainMs: undefined };

describe('escalation flags on run and serve', () => {
  it.each(['run', 'serve'] as const)('%s parses the flags into escalation options', async (cmd) => {
    const o = await parsed(cmd, ['--escalation', 'on', '--escalation-sustain-ms', '3500', '--escalation-min-rate', '0.05', '--escalation-min-change', '0.2']);
    expect(escalationFromFlags(o, noEnv)).toEqual({ enabled: true, sustainMs: 3500, minRatePerS: 0.05, minChange: 0.2 });
    const m = await parsed(cmd, ['--escalation-method', 'velocity', '--escalation-min-z', '3.5']);
    expect(escalationFromFlags(m, noEnv)).toEqual({ method: 'velocity', minZ: 3.5 });
    expect(escalationFromFlags(await parsed(cmd, ['--escalation-min-blocks', '3']), noEnv)).toEqual({ minBlocks: 3 });
    expect(escalationFromFlags(await parsed(cmd, ['--escalation', 'off']), noEnv)).toEqual({ enabled: false });
    // No flag: nothing set, so the detector's defaults apply.
    expect(escalationFromFlags(await parsed(cmd, []), noEnv)).toEqual({});
  });

  it.each(['run', 'serve'] as const)('%s refuses bad values as usage errors naming the flag', async (cmd) => {
    for (const [args, msg] of [
      [['--escalation-sustain-ms', '0'], '--escalation-sustain-ms must be a number in [1, 600000], got "0"'],
      [['--escalation-sustain-ms', 'soon'], '--escalation-sustain-ms must be a number'],
      [['--escalation-min-rate', '-0.1'], '--escalation-min-rate must be a number in [0, 100], got "-0.1"'],
      [['--escalation-min-change', '3'], '--escalation-min-change must be a number in [0, 2], got "3"'],
      [['--escalation', 'maybe'], "option '--escalation <on|off>' argument 'maybe' is invalid"],
      [['--escalation-method', 'slope'], "option '--escalation-method <method>' argument 'slope' is invalid"],
      [['--escalation-min-z', '0'], '--escalation-min-z must be a number in [0.5, 100], got "0"'],
      [['--escalation-min-blocks', '1'], '--escalation-min-blocks must be an integer in [2, 1000], got "1"'],
      [['--escalation-min-blocks', '4.5'], '--escalation-min-blocks must be an integer in [2, 1000], got "4.5"'],
    ] as const) {
      await expect(parsed(cmd, [...args]), args.join(' ')).rejects.toThrow(msg);
    }
  });

  it.each(['run', 'serve'] as const)('%s --help documents the flags', (cmd) => {
    const program = buildProgram();
    const help = (program.commands.find((c) => c.name() === cmd) as Command).helpInformation();
    for (const flag of [
      '--escalation <on|off>',
      '--escalation-method <method>',
      '--escalation-sustain-ms <ms>',
      '--escalation-min-z <z>',
      '--escalation-min-blocks <n>',
      '--escalation-min-rate <per-s>',
      '--escalation-min-change <x>',
    ])
      expect(help).toContain(flag);
  });

  it('the environment is the fallback and flags override it; bad environment values are an AffectError naming the variable', () => {
    const env = loadConfig({ CIRCUMPLEX_ESCALATION: 'off', CIRCUMPLEX_ESCALATION_METHOD: 'velocity', CIRCUMPLEX_ESCALATION_SUSTAIN_MS: '4000' });
    expect(escalationFromFlags({}, env)).toEqual({ enabled: false, method: 'velocity', sustainMs: 4000 });
    expect(escalationFromFlags({ escalation: 'on', escalationMethod: 'shift', escalationSustainMs: 1500 }, env)).toEqual({
      enabled: true,
      method: 'shift',
      sustainMs: 1500,
    });
    for (const bad of [
      { CIRCUMPLEX_ESCALATION_SUSTAIN_MS: '0' },
      { CIRCUMPLEX_ESCALATION_SUSTAIN_MS: 'later' },
      { CIRCUMPLEX_ESCALATION: 'yes' },
      { CIRCUMPLEX_ESCALATION_METHOD: 'slope' },
    ]) {
      let err: unknown;
      try {
        loadConfig(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AffectError);
      expect((err as AffectError).message).toContain(Object.keys(bad)[0]);
    }
  });

  it('the engine refuses bad escalation options with a RangeError naming the option, before loading any model', async () => {
    await expect(createEngine({ escalation: { sustainMs: 0 } })).rejects.toThrow('escalation: sustainMs must be > 0, got 0');
    await expect(createEngine({ escalation: { minRatePerS: -1 } })).rejects.toThrow(RangeError);
    expect(() => resolveEscalationOptions({ minChange: Number.NaN })).toThrow('escalation: minChange must be >= 0, got NaN');
  });
});

describe('the options reach the escalation detector', () => {
  /**
   * `calmMs` (default 70 s) calm with seeded noise (uniform, ±0.1), then arousal +0.2/s and valence
   * -0.15/s for 4 s, then held for 20 s, through the Kalman-CV filter as the pipeline runs it.
   */
  async function alertsWith(escalation: Partial<EscalationOptions>, calmMs = 70_000): Promise<number[]> {
    const f = createFilter({ filter: 'kalman-cv' });
    const rand = seededRandom(21);
    const events: PipelineEvent[] = [];
    for (let t = 250; t <= calmMs + 24_000; t += 250) {
      const r = Math.min(4, Math.max(0, t - calmMs) / 1000);
      const s = f.update({ tMs: t, valence: 0.2 - 0.15 * r + 0.2 * (rand() - 0.5), arousal: -0.3 + 0.2 * r + 0.2 * (rand() - 0.5), confidence: 1 });
      events.push(affectFrame({ tMs: t, valence: s.valence, arousal: s.arousal, velocity: s.velocity! }));
    }
    const out = await lastValueFrom(
      from(events).pipe(deriveStreamEvents({ terms: RUSSELL_1980_TERMS, escalation, minVoicedFraction: 0.2, windowMs: 1000 }), toArray()),
    );
    return out.flatMap((e) => (e.kind === 'alert' ? [e.alert.tMs] : []));
  }

  it('a longer sustain alerts later, a higher z later still, off never alerts, each method its own way', async () => {
    const [dflt, ...more] = await alertsWith(escalationFromFlags({}, noEnv));
    const [long] = await alertsWith(escalationFromFlags({ escalationSustainMs: 6000 }, noEnv));
    const [strict] = await alertsWith(escalationFromFlags({ escalationMinZ: 7 }, noEnv));
    expect(more).toEqual([]);
    expect(dflt).toBeGreaterThan(70_000);
    // The shift needs a longer span of raised arousal before its mean stands out.
    expect(long).toBeGreaterThan(dflt! + 500);
    expect(strict).toBeGreaterThan(dflt!);
    expect(await alertsWith(escalationFromFlags({ escalationMinZ: 100 }, noEnv))).toEqual([]);
    expect(await alertsWith(escalationFromFlags({ escalation: 'off' }, noEnv))).toEqual([]);
    // The velocity method: a high minimum rate never alerts; a large min change never alerts for either.
    expect(await alertsWith(escalationFromFlags({ escalationMethod: 'velocity', escalationMinRate: 0.5 }, noEnv))).toEqual([]);
    expect(await alertsWith(escalationFromFlags({ escalationMinChange: 1 }, noEnv))).toEqual([]);
  });

  it('--escalation-min-blocks sets how much of the stream must be heard first', async () => {
    // The same escalation 15 s into the stream: the default 6 blocks of 3 s (the oldest may be half full) before
    // the 3 s span allow an alert once about 19.5 s are heard...
    const [early, ...rest] = await alertsWith(escalationFromFlags({}, noEnv), 15_000);
    expect(rest).toEqual([]);
    expect(early).toBeGreaterThanOrEqual(19_500);
    // ...8 (the earlier default: about 25.5 s heard) miss it here, as do 20; 2 catch it no later than 6.
    expect(await alertsWith(escalationFromFlags({ escalationMinBlocks: 8 }, noEnv), 15_000)).toEqual([]);
    expect(await alertsWith(escalationFromFlags({ escalationMinBlocks: 20 }, noEnv), 15_000)).toEqual([]);
    const [two] = await alertsWith(escalationFromFlags({ escalationMinBlocks: 2 }, noEnv), 15_000);
    expect(two).toBeLessThanOrEqual(early!);
  });
});
