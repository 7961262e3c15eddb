/**
 * The only reader of process.env. Environment settings are validated with zod and every problem is
 * reported at once; command-line flags override them.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AffectError } from './errors.js';

/**
 * The nearest folder at or above `from` whose package.json is circumplex's. The same answer from
 * the TypeScript sources (`core/`), the compiled ones (`dist/core/`) and an installed package
 * (`node_modules/circumplex/`), wherever this module sits in the tree.
 */
export function findPackageRoot(from: string): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'circumplex') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking up
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`circumplex: no package.json named circumplex at or above ${from}`);
  }
}

/** Package root (where package.json, models/<id>/ and clients/dashboard/ are): the checkout, or the installed package. */
export const REPO_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

/**
 * True when running from an installed package (inside node_modules): downloaded models and caches
 * then default to the user's cache folder, since installs wipe node_modules and may be read-only.
 */
export const INSTALLED = REPO_ROOT.split(path.sep).includes('node_modules');

/** Default home of downloaded models and caches for an installed package: $XDG_CACHE_HOME/circumplex, else ~/.cache/circumplex. */
function userCacheRoot(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_CACHE_HOME && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache'), 'circumplex');
}

/** pino's log levels (CIRCUMPLEX_LOG_LEVEL, validate's --log-level). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const EnvSchema = z.object({
  /** Folder with downloaded model weights (default: models/weights in the repo). */
  CIRCUMPLEX_MODELS_DIR: z.string().min(1).optional(),
  /** transformers.js cache folder (never inside node_modules). */
  CIRCUMPLEX_CACHE_DIR: z.string().min(1).optional(),
  /** A Vosk model folder used when --asr-model is not given. */
  CIRCUMPLEX_VOSK_MODEL: z.string().min(1).optional(),
  /** Device for inference: auto|cuda|webgpu|cpu. */
  CIRCUMPLEX_DEVICE: z.enum(['auto', 'cuda', 'webgpu', 'cpu']).optional(),
  /** Log level for pino. */
  CIRCUMPLEX_LOG_LEVEL: z.enum(LOG_LEVELS).optional(),
  /** Access tokens: `token:scope,scope;token2:scope` (scopes: publish, subscribe, subscribe:<streamId>, admin). */
  CIRCUMPLEX_TOKENS: z.string().min(1).optional(),
  /** A JSON file of tokens: [{ "token": "...", "scopes": ["subscribe"] }]. */
  CIRCUMPLEX_TOKENS_FILE: z.string().min(1).optional(),
  /** Comma-separated browser origins allowed to connect. */
  CIRCUMPLEX_ALLOWED_ORIGINS: z.string().min(1).optional(),
  /** `serve`'s cluster backplane: redis://[user:pass@]host:port[/db] or rediss:// (checked by serve, never echoed). */
  CIRCUMPLEX_BACKPLANE: z.string().min(1).optional(),
  /** Escalation alerts of run/serve: on|off (flag --escalation overrides). */
  CIRCUMPLEX_ESCALATION: z.enum(['on', 'off']).optional(),
  /** Escalation detector: shift|velocity (flag --escalation-method overrides). */
  CIRCUMPLEX_ESCALATION_METHOD: z.enum(['shift', 'velocity']).optional(),
  /** Escalation sustain time, ms of audio, > 0 (flag --escalation-sustain-ms overrides). */
  CIRCUMPLEX_ESCALATION_SUSTAIN_MS: z.coerce.number().positive().max(600_000).optional(),
  /** `serve` runs its models and stream pipeline once before the port opens: on|off (default on; src/warm-up.ts). */
  CIRCUMPLEX_WARM_UP: z.enum(['on', 'off']).optional(),
});

/** Settings read from the environment. */
export interface EnvConfig {
  modelsDir: string;
  cacheDir: string;
  voskModel: string | undefined;
  device: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  logLevel: (typeof LOG_LEVELS)[number];
  tokens: string | undefined;
  tokensFile: string | undefined;
  allowedOrigins: string[] | undefined;
  /** Backplane URL for `serve` (may hold a password: never log it; see parseBackplaneUrl). */
  backplane: string | undefined;
  /** Escalation alerts on/off from CIRCUMPLEX_ESCALATION (undefined: the default, on). */
  escalation: 'on' | 'off' | undefined;
  /** Escalation detector from CIRCUMPLEX_ESCALATION_METHOD (undefined: the default, shift). */
  escalationMethod: 'shift' | 'velocity' | undefined;
  /** Escalation sustain time (ms) from CIRCUMPLEX_ESCALATION_SUSTAIN_MS (undefined: the default). */
  escalationSustainMs: number | undefined;
  /** `serve`'s warm-up before listening, from CIRCUMPLEX_WARM_UP (default on). */
  warmUp: 'on' | 'off';
}

/**
 * Parses a comma-separated list of browser origins (`--allowed-origins`, CIRCUMPLEX_ALLOWED_ORIGINS).
 * The server compares them with the browser's Origin header as strings, so each entry must be
 * exactly an origin — `http(s)://host[:port]`, lowercase, no path, no trailing slash — or `*`.
 * A bad entry is an AffectError naming `source`, the entry and the origin it probably meant.
 */
export function parseOriginList(list: string, source: string): string[] {
  const out: string[] = [];
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (entry === '*') {
      out.push(entry);
      continue;
    }
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    const ok = url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === entry;
    if (!ok) {
      const meant = url && (url.protocol === 'http:' || url.protocol === 'https:') && url.host ? ` (did you mean ${url.origin}?)` : '';
      throw new AffectError('AFFECT_ERR_CONFIG', `${source}: "${entry}" is not a browser origin${meant}`, {
        hint: 'give origins as scheme://host[:port] with no path or trailing slash, e.g. https://app.example.com,http://localhost:3000 (or * for any)',
      });
    }
    out.push(entry);
  }
  return out;
}

/**
 * CIRCUMPLEX_LOG_LEVEL when it names a pino level, else undefined: the first level of the
 * process-wide logger (core/log.ts), so library users get it too, not only the commands. A bad
 * value is left to {@link loadConfig} to report.
 */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): EnvConfig['logLevel'] | undefined {
  const parsed = EnvSchema.shape.CIRCUMPLEX_LOG_LEVEL.safeParse(env.CIRCUMPLEX_LOG_LEVEL === '' ? undefined : env.CIRCUMPLEX_LOG_LEVEL);
  return parsed.success ? parsed.data : undefined;
}

/** Validates the environment; throws one AffectError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  // An empty variable (`CIRCUMPLEX_VOSK_MODEL=`) is the shell's usual way to unset it: treat it so.
  const set = Object.fromEntries(Object.entries(env).filter(([k, v]) => !(k.startsWith('CIRCUMPLEX_') && v === '')));
  const parsed = EnvSchema.safeParse(set);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new AffectError('AFFECT_ERR_CONFIG', `invalid environment: ${problems}`, {
      hint: 'fix or unset the variables named above (see README "Configuration")',
    });
  }
  const e = parsed.data;
  return {
    modelsDir: path.resolve(e.CIRCUMPLEX_MODELS_DIR ?? (INSTALLED ? path.join(userCacheRoot(env), 'models') : path.join(REPO_ROOT, 'models', 'weights'))),
    cacheDir: path.resolve(
      e.CIRCUMPLEX_CACHE_DIR ?? (INSTALLED ? path.join(userCacheRoot(env), 'transformers') : path.join(REPO_ROOT, '.cache', 'transformers')),
    ),
    voskModel: e.CIRCUMPLEX_VOSK_MODEL,
    device: e.CIRCUMPLEX_DEVICE ?? 'auto',
    logLevel: e.CIRCUMPLEX_LOG_LEVEL ?? 'info',
    tokens: e.CIRCUMPLEX_TOKENS,
    tokensFile: e.CIRCUMPLEX_TOKENS_FILE,
    allowedOrigins: e.CIRCUMPLEX_ALLOWED_ORIGINS === undefined ? undefined : parseOriginList(e.CIRCUMPLEX_ALLOWED_ORIGINS, 'CIRCUMPLEX_ALLOWED_ORIGINS'),
    backplane: e.CIRCUMPLEX_BACKPLANE,
    escalation: e.CIRCUMPLEX_ESCALATION,
    escalationMethod: e.CIRCUMPLEX_ESCALATION_METHOD,
    escalationSustainMs: e.CIRCUMPLEX_ESCALATION_SUSTAIN_MS,
    warmUp: e.CIRCUMPLEX_WARM_UP ?? 'on',
  };
}
