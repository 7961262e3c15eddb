/**
 * Access tokens with scopes and the browser-origin allowlist, checked in the HTTP upgrade before a
 * WebSocket opens (401 / 403), and on `/metrics`.
 *
 * Token format (CIRCUMPLEX_TOKENS): `token:scope,scope;token2:scope`. Token file
 * (CIRCUMPLEX_TOKENS_FILE or --tokens-file): JSON `[{ "token": "...", "scopes": ["subscribe"] }]`.
 * Scopes: `publish` (ingest any stream id), `publish:<id>`, `subscribe` (every stream),
 * `subscribe:<id>`, `metrics` (GET /metrics), `admin` (everything).
 * A client presents its token as `Authorization: Bearer <token>` or, for browsers (which cannot set
 * headers on a WebSocket), as the `token` query parameter.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { AffectError } from '../../core/errors.js';

/** Host names that only this machine can reach. */
export const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** True for a host only this machine can reach: localhost, 127.0.0.0/8, ::1 (also IPv4-mapped). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return LOOPBACK.has(h) || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

/** A scope string: publish, publish:<id>, subscribe, subscribe:<id>, metrics, admin. */
export type Scope = string;

/** A known token and what it may do. */
export interface TokenEntry {
  token: string;
  scopes: Scope[];
  /** Optional label for logs (never the token itself). */
  name?: string;
}

const SCOPE = /^(admin|metrics|publish|subscribe)(:[A-Za-z0-9._:*-]{1,128})?$/;

function checkScopes(scopes: string[], where: string): Scope[] {
  if (scopes.length === 0) throw new AffectError('AFFECT_ERR_CONFIG', `${where}: a token needs at least one scope`, { hint: 'e.g. "tok:subscribe"' });
  for (const s of scopes) {
    if (!SCOPE.test(s) || s.startsWith('admin:') || s.startsWith('metrics:')) {
      throw new AffectError('AFFECT_ERR_CONFIG', `${where}: unknown scope "${s}"`, {
        hint: 'scopes are publish, publish:<streamId>, subscribe, subscribe:<streamId>, metrics, admin',
      });
    }
  }
  return scopes;
}

/**
 * A token as it must be: 8+ characters, no whitespace. A token ending in a space
 * (`CIRCUMPLEX_TOKENS='dash-board-1 : subscribe'`) could never be presented: the Bearer header's
 * value is trimmed, so that client got 401/403 with no word why.
 */
function checkToken(token: string, where: string): void {
  if (token.length < 8)
    throw new AffectError('AFFECT_ERR_CONFIG', `${where}: tokens must be at least 8 characters`, { hint: 'use e.g. `openssl rand -hex 16`' });
  if (/\s/.test(token)) {
    throw new AffectError('AFFECT_ERR_CONFIG', `${where}: a token must not contain whitespace (no client could present it)`, {
      hint: 'use e.g. `openssl rand -hex 16`',
    });
  }
}

/**
 * Refuses a token listed twice (in one source or across CIRCUMPLEX_TOKENS and token files): only the
 * first entry's scopes applied, the other's were silently ignored. Names the entries, never the token.
 */
export function assertUniqueTokens(entries: readonly TokenEntry[], where: string): void {
  const seen = new Map<string, number>();
  entries.forEach((e, i) => {
    const first = seen.get(e.token);
    if (first !== undefined) {
      throw new AffectError('AFFECT_ERR_CONFIG', `${where}: tokens[${i}] repeats the token of tokens[${first}]; only one entry's scopes would apply`, {
        hint: 'list each token once, with all its scopes (e.g. tok:subscribe,metrics)',
      });
    }
    seen.set(e.token, i);
  });
}

/**
 * Checks token entries handed over in code (`AffectServer.start({ tokens })`) by the rules the
 * environment and the token file follow: an array of `{ token, scopes }`, tokens of 8+ characters,
 * known scopes. Throws AFFECT_ERR_CONFIG naming the entry.
 */
export function checkTokenEntries(tokens: unknown, where: string): TokenEntry[] {
  if (!Array.isArray(tokens)) {
    throw new AffectError('AFFECT_ERR_CONFIG', `${where}: tokens must be an array of { token, scopes }, got ${typeof tokens}`, {
      hint: 'e.g. [{ token: "…", scopes: ["subscribe"] }]; parse CIRCUMPLEX_TOKENS-style text with parseTokenSpec',
    });
  }
  tokens.forEach((e: unknown, i) => {
    const entry = e as Partial<TokenEntry> | null;
    if (typeof entry?.token !== 'string' || entry.token.length < 8) {
      throw new AffectError('AFFECT_ERR_CONFIG', `${where}: tokens[${i}].token must be a string of at least 8 characters`, {
        hint: 'use e.g. `openssl rand -hex 16`',
      });
    }
    if (!Array.isArray(entry.scopes) || !entry.scopes.every((sc) => typeof sc === 'string')) {
      throw new AffectError('AFFECT_ERR_CONFIG', `${where}: tokens[${i}].scopes must be an array of scope strings`, { hint: 'e.g. ["subscribe"]' });
    }
    checkToken(entry.token, `${where}: tokens[${i}]`);
    checkScopes(entry.scopes, `${where}: tokens[${i}]`);
  });
  assertUniqueTokens(tokens as TokenEntry[], where);
  return tokens as TokenEntry[];
}

/** Parses `token:scope,scope;token2:scope` (CIRCUMPLEX_TOKENS). */
export function parseTokenSpec(spec: string, where = 'CIRCUMPLEX_TOKENS'): TokenEntry[] {
  const out: TokenEntry[] = [];
  for (const part of spec
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const i = part.indexOf(':');
    if (i <= 0) throw new AffectError('AFFECT_ERR_CONFIG', `${where}: "${part.slice(0, 4)}…" has no scopes`, { hint: 'write token:scope,scope' });
    const token = part.slice(0, i).trim();
    checkToken(token, where);
    out.push({
      token,
      scopes: checkScopes(
        part
          .slice(i + 1)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        where,
      ),
    });
  }
  return out;
}

const TokenFileSchema = z.array(z.object({ token: z.string().min(8), scopes: z.array(z.string()).min(1), name: z.string().optional() }));

/** Reads a JSON token file: `[{ "token": "...", "scopes": ["subscribe"], "name"?: "..." }]`. */
export function readTokenFile(file: string): TokenEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AffectError('AFFECT_ERR_CONFIG', `cannot read token file ${file}: ${(err as Error).message}`, {
      cause: err,
      hint: 'the file must be JSON: [{ "token": "...", "scopes": ["subscribe"] }]',
    });
  }
  const parsed = TokenFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new AffectError('AFFECT_ERR_CONFIG', `token file ${file}: ${problems}`, { hint: 'each entry needs "token" (8+ chars) and "scopes"' });
  }
  return parsed.data.map((e, i) => {
    checkToken(e.token, `${file}: [${i}].token`);
    return { token: e.token, scopes: checkScopes(e.scopes, file), ...(e.name ? { name: e.name } : {}) };
  });
}

/**
 * A warning when a token file can be read or written by other users (mode bits 0o077 on POSIX):
 * they could read the tokens, or add their own. Undefined when it is private (e.g. `chmod 600`), on
 * Windows, or when it cannot be stat'ed (reading it reports that).
 */
export function tokenFileExposure(file: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  return `token file ${file} is accessible to other users (mode ${mode.toString(8).padStart(3, '0')}): they can read its tokens; run chmod 600 ${file}`;
}

/** A verified caller: what its token allows. `open` means auth is off (no tokens configured). */
export class Grant {
  constructor(
    readonly scopes: readonly Scope[],
    readonly open: boolean,
    readonly name?: string,
  ) {}

  private has(kind: 'publish' | 'subscribe', streamId?: string): boolean {
    if (this.open) return true;
    return this.scopes.some((s) => s === 'admin' || s === kind || (streamId !== undefined && s === `${kind}:${streamId}`));
  }

  /** May publish audio on `/v1/ingest` at all (any stream, or some stream). */
  canPublishSome(): boolean {
    return this.open || this.scopes.some((s) => s === 'admin' || s === 'publish' || s.startsWith('publish:'));
  }
  /** May publish this stream id. */
  canPublish(streamId: string): boolean {
    return this.has('publish', streamId);
  }
  /** May subscribe to some stream. */
  canSubscribeSome(): boolean {
    return this.open || this.scopes.some((s) => s === 'admin' || s === 'subscribe' || s.startsWith('subscribe:'));
  }
  /** May subscribe to this stream id. */
  canSubscribe(streamId: string): boolean {
    return this.has('subscribe', streamId);
  }
  /** May read /metrics. */
  canReadMetrics(): boolean {
    return this.open || this.scopes.some((s) => s === 'admin' || s === 'metrics');
  }
}

/** Why a request was refused (HTTP status + a stable reason for metrics/logs). */
export interface AuthFailure {
  status: 401 | 403;
  reason: 'missing-token' | 'bad-token' | 'scope' | 'origin' | 'host';
  message: string;
}

/** Options for {@link Authenticator}. */
export interface AuthOptions {
  /** Known tokens; empty = auth off (only safe on loopback; the server warns otherwise). */
  tokens: TokenEntry[];
  /** Allowed browser origins (exact `scheme://host[:port]`, or `*`). Undefined: same-origin only. */
  allowedOrigins: string[] | undefined;
  /**
   * The server is bound to a loopback address. With auth off, requests must then name a loopback
   * host (or the host of an allowed origin) in `Host`: see {@link Authenticator.checkHost}.
   */
  loopbackBind?: boolean;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Checks tokens (constant-time) and origins for HTTP requests and upgrades. */
export class Authenticator {
  private readonly entries: { hash: Buffer; entry: TokenEntry }[];
  constructor(readonly opts: AuthOptions) {
    this.entries = opts.tokens.map((entry) => ({ hash: digest(entry.token), entry }));
  }

  /** True when tokens are required. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The token a request presents: `Authorization: Bearer`, else the `token` query parameter. */
  static tokenOf(req: IncomingMessage): string | undefined {
    const h = req.headers.authorization;
    if (h && /^Bearer\s+/i.test(h)) return h.replace(/^Bearer\s+/i, '').trim();
    return requestUrl(req)?.searchParams.get('token') ?? undefined;
  }

  /** Verifies the token of a request. */
  verify(req: IncomingMessage): Grant | AuthFailure {
    if (!this.enabled) return new Grant([], true);
    const token = Authenticator.tokenOf(req);
    if (!token) return { status: 401, reason: 'missing-token', message: 'a token is required (Authorization: Bearer <token> or ?token=)' };
    const h = digest(token);
    // Compare fixed-length digests with timingSafeEqual so timing does not leak token prefixes.
    const hit = this.entries.find((e) => timingSafeEqual(e.hash, h));
    if (!hit) return { status: 401, reason: 'bad-token', message: 'unknown token' };
    return new Grant(hit.entry.scopes, false, hit.entry.name);
  }

  /**
   * DNS-rebinding check, for a server bound to loopback without tokens: a web page on
   * `evil.example`, whose name the attacker then points at 127.0.0.1, is same-origin with itself,
   * so its browser sends `Host: evil.example:8787` with a matching `Origin` and the origin check
   * passes; such a page could subscribe to every stream, publish, and read /healthz and /metrics.
   * Requests whose `Host` is not a loopback name (localhost, *.localhost, 127.x.x.x, [::1]) or the
   * host of an allowed origin are refused (403). With tokens (the page has none), an allowlist of
   * `*`, or a non-loopback bind, nothing is checked here. A request without `Host` (HTTP/1.0, not a
   * browser) passes.
   */
  checkHost(req: IncomingMessage): AuthFailure | undefined {
    if (!this.opts.loopbackBind || this.enabled) return undefined;
    const host = req.headers.host;
    if (host === undefined) return undefined;
    const allowed = this.opts.allowedOrigins;
    if (allowed?.includes('*')) return undefined;
    let hostname: string;
    try {
      hostname = new URL(`http://${host}`).hostname.toLowerCase();
    } catch {
      return { status: 403, reason: 'host', message: 'the Host header is not a valid host' };
    }
    if (isLoopbackHost(hostname) || hostname.endsWith('.localhost')) return undefined;
    for (const o of allowed ?? []) {
      try {
        if (new URL(o).hostname.toLowerCase() === hostname) return undefined;
      } catch {
        // an origin that is not a URL allows no host
      }
    }
    return {
      status: 403,
      reason: 'host',
      message: `host ${hostname} is not allowed: this server is bound to loopback without tokens, so it answers only to localhost, 127.0.0.1 and [::1] (or the hosts of --allowed-origins)`,
    };
  }

  /**
   * Browser origin check (cross-site WebSocket hijacking): requests without an Origin header
   * (non-browser clients) pass; with one, it must be in the allowlist, or, without an allowlist,
   * be the server's own origin (the dashboard it serves).
   */
  checkOrigin(req: IncomingMessage): AuthFailure | undefined {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    const allowed = this.opts.allowedOrigins;
    if (allowed) {
      if (allowed.includes('*') || allowed.includes(origin)) return undefined;
    } else {
      try {
        if (new URL(origin).host === req.headers.host) return undefined;
      } catch {
        // fall through: a malformed Origin is refused
      }
    }
    return { status: 403, reason: 'origin', message: `origin ${origin} is not allowed` };
  }
}

/**
 * A request's target as a URL, or undefined when it is not one. Node's HTTP parser passes on an
 * absolute-form target such as `http://[`, on which `new URL` throws: thrown in a request or
 * upgrade listener, one such request from anyone ended the server.
 */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://x');
  } catch {
    return undefined;
  }
}

/** True when a failure, false when a grant. */
export function isFailure(x: Grant | AuthFailure): x is AuthFailure {
  return !(x instanceof Grant);
}
