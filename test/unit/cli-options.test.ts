import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { loadConfig, REPO_ROOT } from '../../core/config.js';
import { numberOption, openRecorderAndEngine, type ModelFlags } from '../../src/commands/options.js';
import { AffectError } from '../../core/errors.js';
import { pino } from 'pino';
import { buildProgram } from '../../src/cli.js';
import { defaultValidateOut } from '../../src/commands/validate.js';
import { writeWav } from '../helpers/vad-audio.js';

describe('watch --stream', () => {
  /** Parses a watch command line, capturing what the action would get. */
  async function parseWatch(args: string[]): Promise<{ url: string; stream?: string[] }> {
    const program = buildProgram();
    let got: { url: string; stream?: string[] } | undefined;
    const watch = program.commands.find((c) => c.name() === 'watch');
    watch?.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    watch?.action((url: string, opts: { stream?: string[] }) => {
      got = { url, ...(opts.stream ? { stream: opts.stream } : {}) };
    });
    await program.parseAsync(['node', 'circumplex', 'watch', ...args]);
    if (!got) throw new Error('watch did not run');
    return got;
  }

  it('takes several ids after the URL, as docs/clients.md writes it', async () => {
    expect(await parseWatch(['ws://host:8787', '--stream', 'mic', 'call-1:inbound', '--count', '20'])).toEqual({
      url: 'ws://host:8787',
      stream: ['mic', 'call-1:inbound'],
    });
    expect(await parseWatch(['-s', 'mic', '-s', 'stage'])).toEqual({ url: 'ws://127.0.0.1:8787', stream: ['mic', 'stage'] });
  });

  it('refuses a server address after --stream instead of watching the default server for a stream named like it', async () => {
    // commander's variadic --stream swallowed the URL: `watch -s mic ws://h:1` watched ws://127.0.0.1:8787.
    await expect(parseWatch(['-s', 'mic', 'ws://127.0.0.1:1'])).rejects.toThrow(
      /"ws:\/\/127\.0\.0\.1:1" is a server address, not a stream id: put the URL before --stream/,
    );
    await expect(parseWatch(['-s', 'bad id'])).rejects.toThrow('--stream must be 1-128 letters, digits and . _ : -');
  });
});

describe('the cached-streaming flags without --speech-streaming cached', () => {
  const base: ModelFlags = { speechModel: 'speech-va', fusion: 'late', windowMs: 1000, hopMs: 250 };
  it.each([
    ['--speech-cached-head on', { speechCachedHead: 'on' }],
    ['--speech-recompute-frames 13', { speechRecomputeFrames: 13 }],
    ['--speech-step-workers 2', { speechStepWorkers: 2 }],
    ['--speech-cached-head on', { speechStreaming: 'frames', speechCachedHead: 'on' }],
  ] as const)('%s is a config error naming the flag, before any model loads (it was ignored)', async (flag, extra) => {
    const err: unknown = await openRecorderAndEngine({ ...base, ...extra }, loadConfig({}), pino({ level: 'silent' })).then(
      // Loaded anyway (the flag ignored): close what it opened, then fail below.
      async ({ engine }) => (await engine.close(), undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_CONFIG');
    expect((err as AffectError).message).toContain(`${flag} only applies to --speech-streaming cached`);
  });
});

describe('--help', () => {
  it('shows every default as it is typed on the command line, never as a JSON object', () => {
    const walk = (c: Command): Command[] => [c, ...c.commands.flatMap(walk)];
    for (const c of walk(buildProgram())) expect(c.helpInformation(), `circumplex ${c.name()} --help`).not.toMatch(/default: [{[]/);
    const evaluate = buildProgram().commands.find((c) => c.name() === 'evaluate');
    expect(evaluate?.helpInformation().replace(/\s+/g, ' ')).toContain('(default: -1,1)');
  });
});

describe('every flag of every command is documented', () => {
  // Where a user looks a command's flags up (run shares the engine and trajectory flags with serve).
  const DOCS: Record<string, readonly string[]> = {
    run: ['README.md', 'docs/server.md'],
    serve: ['docs/server.md'],
    watch: ['docs/clients.md'],
    replay: ['docs/clients.md'],
    evaluate: ['docs/models.md'],
    models: ['docs/models.md'],
    validate: ['docs/bench.md'],
  };
  it.each(Object.entries(DOCS))('circumplex %s: in %s', (name, docs) => {
    const text = docs.map((d) => readFileSync(path.join(REPO_ROOT, d), 'utf8')).join('\n');
    const command = buildProgram().commands.find((c) => c.name() === name);
    expect(command, name).toBeDefined();
    const flags = [command!, ...command!.commands].flatMap((c) => c.options.map((o) => o.long ?? ''));
    expect(flags.length).toBeGreaterThan(0);
    expect(flags.filter((f) => f && f !== '--help' && !text.includes(f))).toEqual([]);
  });
});

/** `circumplex …` command lines of the sh code blocks of README.md and docs/*.md (synopses made concrete). */
function documentedCommandLines(): { where: string; args: string[] }[] {
  const out: { where: string; args: string[] }[] = [];
  const files = ['README.md', ...readdirSync(path.join(REPO_ROOT, 'docs')).map((f) => path.join('docs', f))].filter((f) => f.endsWith('.md'));
  for (const file of files) {
    let block: string[] | undefined;
    let shell = false;
    const blocks: string[] = [];
    for (const line of readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n')) {
      if (!line.startsWith('```')) block?.push(line);
      else if (block) {
        if (shell) blocks.push(block.join('\n'));
        block = undefined;
      } else {
        block = [];
        shell = ['sh', 'bash', ''].includes(line.slice(3).trim());
      }
    }
    for (const body of blocks) {
      for (const line of body.replace(/\\\n\s*/g, ' ').split('\n')) {
        // The command up to a pipe or a comment; `npx circumplex …` or `circumplex …`, also after a pipe.
        const m = /(?:^|\s|\|\s*)(?:npx )?circumplex ((?:run|serve|replay|watch|evaluate|validate|models)\b[^|#]*)/.exec(line);
        if (!m) continue;
        // Synopses: [--flag X] → --flag X, a|b → a, <ids...> → x, [ids...] dropped.
        const words = [...(m[1] ?? '').replace(/[[\]]/g, ' ').matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((w) => w[1] ?? w[2] ?? w[3] ?? '');
        const args = words
          .filter((w) => !w.endsWith('...'))
          .map((w) => (w.startsWith('<') ? 'x' : w.includes('|') && !w.includes('://') ? (w.split('|')[0] ?? w) : w));
        out.push({ where: `${file}: circumplex ${args.join(' ')}`, args });
      }
    }
  }
  return out;
}

describe('the circumplex command lines in README.md and docs/*.md', () => {
  const lines = documentedCommandLines();
  it('are found (run, serve, replay, watch, evaluate, validate, models)', () => {
    const commands = new Set(lines.map((l) => l.args[0]));
    for (const c of ['run', 'serve', 'replay', 'watch', 'evaluate', 'validate', 'models']) expect(commands).toContain(c);
  });

  it.each(lines.map((l) => [l.where, l.args] as const))('%s parses (flags, choices, values)', async (_where, args) => {
    const program = buildProgram();
    // Parse only: every action replaced, commander's exits and output turned into a thrown error.
    const quiet = (c: Command): void => {
      c.action(() => undefined)
        .exitOverride()
        .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      c.commands.forEach(quiet);
    };
    quiet(program);
    await expect(program.parseAsync(['node', 'circumplex', ...args])).resolves.toBeDefined();
  });
});

describe('numberOption', () => {
  it('accepts numbers in range and rejects the rest with the option named', () => {
    const hop = numberOption('--hop-ms', 1);
    expect(hop('250')).toBe(250);
    expect(hop('1.5')).toBe(1.5);
    for (const bad of ['0', '-3', 'abc', '', ' ', 'NaN', 'Infinity']) {
      expect(() => hop(bad)).toThrow(InvalidArgumentError);
    }
    expect(() => hop('0')).toThrow('--hop-ms must be a number >= 1, got "0"');
  });

  it('enforces integers and an upper bound', () => {
    const seed = numberOption('--seed', 0, true, 10);
    expect(seed('7')).toBe(7);
    expect(() => seed('7.5')).toThrow('--seed must be an integer in [0, 10], got "7.5"');
    expect(() => seed('11')).toThrow(InvalidArgumentError);
  });

  it('serve and replay refuse a --port above 65535 as a usage error (was: a RangeError stack trace after loading the models)', async () => {
    for (const cmd of ['serve', 'replay']) {
      const program = buildProgram();
      // Keep commander's usage text out of the test output.
      for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      const args = cmd === 'replay' ? ['replay', 'rec.jsonl', '--port', '70000'] : ['serve', '--port', '70000'];
      await expect(program.parseAsync(['node', 'circumplex', ...args])).rejects.toThrow('--port must be an integer in [0, 65535], got "70000"');
    }
  });

  it('run and serve refuse a raw-input --rate or --channels the stdin source cannot take as a usage error (was: a RangeError stack trace)', async () => {
    for (const cmd of ['run', 'serve']) {
      for (const [flag, value, msg] of [
        ['--rate', '900000', '--rate must be an integer in [1000, 768000], got "900000"'],
        ['--channels', '64', '--channels must be an integer in [1, 32], got "64"'],
      ] as const) {
        const program = buildProgram();
        for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
        await expect(program.parseAsync(['node', 'circumplex', cmd, '--input', '-', flag, value])).rejects.toThrow(msg);
      }
    }
  });

  it('run and serve refuse a --stream-id the hub would refuse, before loading anything (serve used to hang after the error)', async () => {
    for (const cmd of ['run', 'serve']) {
      for (const bad of ['bad id!', 'x'.repeat(129), '__proto__']) {
        const program = buildProgram();
        for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
        await expect(program.parseAsync(['node', 'circumplex', cmd, '--input', 'none.wav', '--stream-id', bad])).rejects.toThrow(
          '--stream-id must be 1-128 letters, digits and . _ : -',
        );
      }
    }
  });

  it('validate refuses a --template without {term} as a usage error (was: a RangeError stack trace after the model loaded)', async () => {
    const program = buildProgram();
    for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await expect(program.parseAsync(['node', 'circumplex', 'validate', '--template', 'hello'])).rejects.toThrow('--template must contain {term}, got "hello"');
  });

  it('run and serve refuse a --turn-endpointing that could never end a turn (asr without an ASR model, vad with --vad off), before loading anything', async () => {
    const wav = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');
    const saved = process.env['CIRCUMPLEX_VOSK_MODEL'];
    delete process.env['CIRCUMPLEX_VOSK_MODEL'];
    try {
      for (const cmd of ['run', 'serve']) {
        for (const [args, msg] of [
          [['--turn-endpointing', 'asr'], '--turn-endpointing asr needs a speech recogniser'],
          [['--turn-endpointing', 'vad', '--vad', 'off'], '--turn-endpointing vad needs voice activity detection'],
        ] as const) {
          const program = buildProgram();
          for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
          const port = cmd === 'serve' ? ['--port', '0'] : [];
          await expect(program.parseAsync(['node', 'circumplex', cmd, '--input', wav, ...port, ...args])).rejects.toMatchObject({
            code: 'AFFECT_ERR_CONFIG',
            message: expect.stringContaining(msg) as unknown,
          });
        }
      }
    } finally {
      if (saved !== undefined) process.env['CIRCUMPLEX_VOSK_MODEL'] = saved;
    }
  });

  it('run and serve refuse a --stream-id that --channels-as-streams would take past 128 characters, before loading anything', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-long-id-'));
    try {
      // A stereo 16-bit WAV of 0.1 s (the header is all that is read before the check).
      const wav = path.join(dir, 'stereo.wav');
      writeWav(wav, [new Float32Array(1600), new Float32Array(1600)], 16000);
      for (const cmd of ['run', 'serve']) {
        const program = buildProgram();
        for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
        const port = cmd === 'serve' ? ['--port', '0'] : [];
        await expect(
          program.parseAsync(['node', 'circumplex', cmd, '--input', wav, ...port, '--channels-as-streams', '--stream-id', 'x'.repeat(126)]),
        ).rejects.toMatchObject({ code: 'AFFECT_ERR_CONFIG', hint: 'use a --stream-id of at most 124 characters' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('run and serve refuse an empty --record as a usage error (it used to record nothing, silently)', async () => {
    for (const cmd of ['run', 'serve']) {
      const program = buildProgram();
      for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      await expect(program.parseAsync(['node', 'circumplex', cmd, '--input', 'x.wav', '--record', ''])).rejects.toThrow('--record needs a file name, got ""');
    }
  });

  it('validate refuses an unknown --log-level as a usage error listing the levels (was: an "unexpected error" pino stack trace)', async () => {
    const program = buildProgram();
    for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await expect(program.parseAsync(['node', 'circumplex', 'validate', '--log-level', 'loud'])).rejects.toThrow(
      "option '--log-level <level>' argument 'loud' is invalid. Allowed choices are fatal, error, warn, info, debug, trace, silent.",
    );
  });

  it('models pull bounds --timeout-ms to what a Node timer holds and --attempts to 100', async () => {
    for (const [flag, value, msg] of [
      ['--timeout-ms', '1e12', '--timeout-ms must be an integer in [1, 2147483647], got "1e12"'],
      ['--attempts', '1e9', '--attempts must be an integer in [1, 100], got "1e9"'],
    ] as const) {
      const program = buildProgram();
      const models = program.commands.find((c) => c.name() === 'models');
      for (const c of models?.commands ?? []) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      await expect(program.parseAsync(['node', 'circumplex', 'models', 'pull', 'minilm-l6', flag, value])).rejects.toThrow(msg);
    }
  });

  it('serve bounds --heartbeat-ms to what a Node timer holds (1e12 became a 1 ms ping that dropped every subscriber)', async () => {
    const program = buildProgram();
    for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await expect(program.parseAsync(['node', 'circumplex', 'serve', '--heartbeat-ms', '1e12'])).rejects.toThrow(
      '--heartbeat-ms must be an integer in [10, 2147483647], got "1e12"',
    );
  });

  it('run and serve bound --window-ms (and --hop-ms) at 60 s of audio (1e9 was a RangeError stack trace from allocating the window)', async () => {
    for (const cmd of ['run', 'serve']) {
      for (const flag of ['--window-ms', '--hop-ms']) {
        const program = buildProgram();
        for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
        await expect(program.parseAsync(['node', 'circumplex', cmd, '--input', 'x.wav', flag, '1e9'])).rejects.toThrow(
          `${flag} must be a number in [1, 60000], got "1e9"`,
        );
      }
    }
  });

  it('run and serve refuse a --threads that is not auto or a count, before loading anything', async () => {
    for (const cmd of ['run', 'serve']) {
      for (const bad of ['many', '-1', '1.5', '1000']) {
        const program = buildProgram();
        for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
        await expect(program.parseAsync(['node', 'circumplex', cmd, '--input', 'x.wav', '--threads', bad])).rejects.toThrow(
          `--threads must be auto or an integer in [0, 256] (0: onnxruntime's own default), got "${bad}"`,
        );
      }
    }
  });

  it('run and serve refuse a --speech-cached-head that is not auto, on or off', async () => {
    for (const cmd of ['run', 'serve']) {
      const program = buildProgram();
      for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      await expect(
        program.parseAsync(['node', 'circumplex', cmd, '--input', 'x.wav', '--speech-streaming', 'cached', '--speech-cached-head', 'yes']),
      ).rejects.toThrow('--speech-cached-head must be one of auto, on, off; got "yes"');
    }
  });

  it('run and serve refuse a --speech-step-workers that is not auto or a count in [1, 64]', async () => {
    for (const cmd of ['run', 'serve']) {
      for (const bad of ['0', 'two', '65']) {
        const program = buildProgram();
        for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
        await expect(
          program.parseAsync(['node', 'circumplex', cmd, '--input', 'x.wav', '--speech-streaming', 'cached', '--speech-step-workers', bad]),
        ).rejects.toThrow(`--speech-step-workers must be an integer in [1, 64], got "${bad}"`);
      }
    }
  });

  it('run and serve refuse a --record that is the input file (or a link to it), leaving the audio intact (it used to be truncated)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-record-input-'));
    try {
      const wav = path.join(dir, 'talk.wav');
      copyFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav'), wav);
      const link = path.join(dir, 'link.wav');
      symlinkSync(wav, link);
      const before = readFileSync(wav);
      for (const cmd of ['run', 'serve']) {
        for (const record of [wav, link]) {
          const program = buildProgram();
          for (const c of program.commands) c.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
          const args = [cmd, '--input', wav, '--record', record, ...(cmd === 'serve' ? ['--port', '0'] : [])];
          await expect(program.parseAsync(['node', 'circumplex', ...args])).rejects.toMatchObject({
            code: 'AFFECT_ERR_CONFIG',
            message: expect.stringContaining(`--record ${record} is the input file ${wav}`) as unknown,
          });
          expect(readFileSync(wav).equals(before)).toBe(true);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('validate --out default', () => {
  it('is bench/results/validate in a checkout and the working folder from an installed package (was: inside node_modules/circumplex)', () => {
    expect(defaultValidateOut(false, '/home/u/app')).toMatch(/[\\/]bench[\\/]results[\\/]validate$/);
    expect(defaultValidateOut(true, '/home/u/app')).toBe(path.resolve('/home/u/app', 'circumplex-validate'));
  });
});
