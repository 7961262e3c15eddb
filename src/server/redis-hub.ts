/**
 * RedisHub: the cluster implementation of {@link Hub}. Serve nodes share their streams through
 * Redis Streams (Redis >= 7), so any node serves any stream, a subscriber resumes on any node, and
 * a publisher whose node died continues its stream on another one.
 *
 * Layout in Redis (prefix `circumplex:` by default; one Redis primary, not Redis Cluster):
 * - `log:<streamId>`: a Redis stream per circumplex stream, one entry per published message
 *   (affect, transcript, status, ...; the whole JSON message, untouched), entry id `0-<seq+1>`,
 *   trimmed to the resume ring size (MAXLEN, exact), so a resume reads `XRANGE (0-<seq+1> +`.
 * - `meta:<streamId>`: a hash with the stream's facts (timing, state, lastSeq, lastT) and its
 *   publishing node (`owner`) and claim `epoch`.
 * - `feed`: one Redis stream of every message and stream announcement of the cluster; each node
 *   reads it (XREAD BLOCK) and mirrors it into its own {@link StreamHub}, which fans out to local
 *   subscribers exactly as on one node.
 * - `streams`: a sorted set of stream ids by last update (the cluster-wide list at start-up).
 * - `node:<nodeId>`: a key with a TTL each live node refreshes; a stream whose owner's key is gone
 *   can be claimed by another node.
 *
 * Seq: the node that publishes a stream allocates its seq locally (so local delivery has no added
 * latency and survives a Redis outage), and every append goes through a Lua script that checks the
 * node still owns the stream (owner + epoch) and that the seq is after the last one. A claim
 * (failover to another node) bumps the epoch and returns the cluster's last seq, which the new
 * node carries on: gap-free and monotonic across nodes.
 *
 * Faults: while Redis is away the node keeps serving its own streams from its local hub; writes
 * are not queued in the client (no offline queue): what has not reached Redis is the tail of the
 * local ring (bounded by ringSize per stream), written once the link is back, after the node has
 * re-asserted its claims. Reconnects use exponential backoff with jitter.
 */
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect, isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { StreamEventMessage, StreamInfo } from '../../core/protocol.js';
import type { PipelineEvent } from '../../core/types.js';
import { AffectError } from '../../core/errors.js';
import { getLogger, type Logger } from '../../core/log.js';
import {
  DEFAULT_STREAM_HUB,
  StreamHub,
  type BackplaneStatus,
  type ClaimResult,
  type Hub,
  type HubListener,
  type OpenStreamInfo,
  type SinceResult,
  type StreamHubOptions,
} from './hub.js';

/** Options for {@link RedisHub.connect}. */
export interface RedisHubOptions extends StreamHubOptions {
  /** `redis://[user:pass@]host:port[/db]`, or `rediss://` for TLS. Required. */
  url: string;
  /** This node's id (default: a random UUID). */
  nodeId: string | undefined;
  /** Key prefix, so several deployments can share one Redis. Default `circumplex:`. */
  keyPrefix: string;
  /** How often (ms) a node refreshes its liveness key. Default 1000. */
  nodeHeartbeatMs: number;
  /** Liveness key TTL (ms): a node silent this long is dead and its streams can be claimed. Default 5000. */
  nodeTtlMs: number;
  /** Connection timeout (ms) at start and per reconnect attempt. Default 3000. */
  connectTimeoutMs: number;
  /** A command without an answer for this long (ms) fails (the link counts as down). Default 2000. */
  commandTimeoutMs: number;
  /** Longest wait (ms) between reconnect attempts (backoff 100 ms × 2^n with jitter, capped). Default 5000. */
  maxReconnectDelayMs: number;
  /** Entries kept in the cluster feed (approximate trim). Default 100 000. */
  feedMaxLen: number;
  /** An ended stream's log and facts expire from Redis after this many seconds. Default 3600. */
  endedRetentionS: number;
  /** Largest batch of messages written or read at once. Default 512. */
  batchSize: number;
  /**
   * A live stream whose publishing node has been dead (liveness key gone) this long without another
   * node claiming it is ended by the first node that notices (status 'ended', "ingest node lost"),
   * so it does not stay listed as live for ever. Default 30 000.
   */
  orphanGraceMs: number;
  /**
   * Extra TLS settings for `rediss://` (e.g. `{ ca }` for a private CA; `NODE_EXTRA_CA_CERTS` works
   * too). The server certificate is always verified.
   */
  tlsOptions: Omit<ConnectionOptions, 'rejectUnauthorized'> | undefined;
  /** Logger (default: the process logger). */
  logger: Logger | undefined;
}

/** Defaults for {@link RedisHubOptions} (besides `url`). */
export const DEFAULT_REDIS_HUB: Omit<RedisHubOptions, 'url'> = {
  ...DEFAULT_STREAM_HUB,
  // Other nodes' streams are resumed from Redis; the local copy only bridges short outages.
  mirrorRingSize: 64,
  nodeId: undefined,
  keyPrefix: 'circumplex:',
  nodeHeartbeatMs: 1000,
  nodeTtlMs: 5000,
  connectTimeoutMs: 3000,
  commandTimeoutMs: 2000,
  maxReconnectDelayMs: 5000,
  feedMaxLen: 100_000,
  endedRetentionS: 3600,
  batchSize: 512,
  orphanGraceMs: 30_000,
  tlsOptions: undefined,
  logger: undefined,
};

/** How long a feed lag peak is reported (ms). */
const FEED_LAG_WINDOW_MS = 60_000;

/** A backplane URL split into what ioredis needs and a form safe to print (no credentials). */
export interface BackplaneTarget {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly tls: boolean;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** `redis://host:port/db` (or rediss://), with `***` for any credentials: the only form ever logged. */
  readonly safe: string;
}

/**
 * Parses and checks `redis://[user:pass@]host:port[/db]` (or `rediss://`). Throws an
 * AFFECT_ERR_CONFIG that quotes only the redacted URL.
 */
export function parseBackplaneUrl(url: string, where = '--backplane'): BackplaneTarget {
  const bad = (why: string): AffectError =>
    new AffectError('AFFECT_ERR_CONFIG', `${where}: ${why}`, {
      hint: 'write redis://[user:password@]host:port[/db] (or rediss:// for TLS), e.g. redis://127.0.0.1:6379/0',
    });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Never echo the raw value: it may hold a password.
    throw bad(`not a URL (${redactLoose(url)})`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw bad(`scheme must be redis:// or rediss://, got ${u.protocol}//`);
  if (!u.hostname) throw bad('no host');
  const port = u.port === '' ? 6379 : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`bad port ${u.port}`);
  const dbPart = u.pathname.replace(/^\//, '');
  const db = dbPart === '' ? 0 : Number(dbPart);
  if (!/^\d*$/.test(dbPart) || !Number.isInteger(db) || db < 0 || db > 15) throw bad(`database must be a number 0-15, got "${dbPart}"`);
  if (u.search || u.hash) throw bad('query strings and fragments are not supported');
  const creds = u.username || u.password ? '***@' : '';
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return {
    host,
    port,
    db,
    tls: u.protocol === 'rediss:',
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    safe: `${u.protocol}//${creds}${u.hostname}:${port}/${db}`,
  };
}

/** Best-effort redaction of something that did not parse as a URL. */
function redactLoose(s: string): string {
  return s.replace(/\/\/[^@/]*@/, '//***@').slice(0, 200);
}

// ---- Lua scripts (run atomically in Redis) ------------------------------------------------------

/**
 * Claim. KEYS: meta. ARGV: nodeId, node-key prefix, log key.
 * Refuses (0, owner) while another node whose liveness key exists publishes the stream (state not
 * ended, or not yet written: a claim is made before the stream's first announcement, so an owner
 * without a state is one that has just claimed it); else takes it: epoch+1, owner = this node;
 * returns (1, epoch, lastSeq). When the facts are gone but the log is not (an evicting
 * maxmemory-policy dropped the hash), lastSeq comes from the log's last entry, so the stream
 * carries on after it.
 */
const CLAIM_LUA = `
local owner = redis.call('HGET', KEYS[1], 'owner')
local state = redis.call('HGET', KEYS[1], 'state')
if owner and owner ~= ARGV[1] and state ~= 'ended' and redis.call('EXISTS', ARGV[2] .. owner) == 1 then
  return {0, owner}
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', ARGV[3])
local last = redis.call('HGET', KEYS[1], 'lastSeq')
if not last then
  local top = redis.call('XREVRANGE', ARGV[3], '+', '-', 'COUNT', 1)[1]
  if top then
    last = string.format('%d', tonumber(string.match(top[1], '-(%d+)$')) - 1)
    redis.call('HSET', KEYS[1], 'lastSeq', last)
  end
end
return {1, tostring(epoch), last or '-1'}
`;

/**
 * Announce (open) a stream. KEYS: meta, feed, index. ARGV: nodeId, epoch, hopMs, windowMs,
 * sampleRateHz, nowMs, streamId, feedMaxLen, info JSON. Returns -2 when the facts are gone
 * (evicted or lost: claim again), -1 when fenced, else 1.
 */
const OPEN_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'hopMs', ARGV[3], 'windowMs', ARGV[4], 'sampleRateHz', ARGV[5], 'state', 'live', 'updatedMs', ARGV[6])
local last = redis.call('HGET', KEYS[1], 'lastSeq') or '-1'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', 'k', 'o', 's', ARGV[7], 'n', ARGV[1], 'l', last, 'd', ARGV[9])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
return 1
`;

/**
 * Append one message. KEYS: log, meta, feed, index. ARGV: nodeId, epoch, seq, message JSON,
 * ringSize, feedMaxLen, new state ('' when the message is not a status), tMs, nowMs, streamId,
 * endedRetentionS. Returns -2 when the stream's facts are gone (evicted or lost: claim again), -1
 * when fenced (another node claimed the stream, or ended it as an orphan), 0 when that seq is
 * already there, 1 when appended.
 */
const APPEND_LUA = `
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[2] then return -1 end
local last = tonumber(redis.call('HGET', KEYS[2], 'lastSeq') or '-1')
local seq = tonumber(ARGV[3])
if seq <= last then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], '0-' .. string.format('%d', seq + 1), 'm', ARGV[4])
redis.call('HSET', KEYS[2], 'lastSeq', ARGV[3], 'lastT', ARGV[8], 'updatedMs', ARGV[9])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'state', ARGV[7]) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'k', 'm', 's', ARGV[10], 'n', ARGV[1], 'd', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[10])
if ARGV[7] == 'ended' then
  redis.call('EXPIRE', KEYS[1], ARGV[11])
  redis.call('EXPIRE', KEYS[2], ARGV[11])
end
return 1
`;

/**
 * End an orphan. KEYS: log, meta, feed, index. ARGV: dead owner, node-key prefix, streamId, nowMs,
 * ringSize, feedMaxLen, endedRetentionS, this node. Only while the stream is not ended and its
 * owner is still the dead node (whose key is gone): appends a final status 'ended' with the next
 * seq (JSON in the wire field order), fences the dead node (epoch+1, no owner). Returns the
 * message, or false.
 */
const REAP_LUA = `
local owner = redis.call('HGET', KEYS[2], 'owner')
local state = redis.call('HGET', KEYS[2], 'state')
if owner ~= ARGV[1] or state == false or state == 'ended' or redis.call('EXISTS', ARGV[2] .. owner) == 1 then return false end
local seq = tonumber(redis.call('HGET', KEYS[2], 'lastSeq') or '-1') + 1
local t = redis.call('HGET', KEYS[2], 'lastT') or '0'
local msg = '{"type":"status","streamId":"' .. ARGV[3] .. '","seq":' .. string.format('%d', seq) .. ',"tMs":' .. t .. ',"state":"ended","message":"ingest node lost"}'
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], '0-' .. string.format('%d', seq + 1), 'm', msg)
redis.call('HSET', KEYS[2], 'lastSeq', string.format('%d', seq), 'state', 'ended', 'updatedMs', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('HDEL', KEYS[2], 'owner')
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'k', 'm', 's', ARGV[3], 'n', ARGV[8], 'd', msg)
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return msg
`;

type RedisWithScripts = Redis & {
  cxReap(log: string, meta: string, feed: string, index: string, ...argv: string[]): Promise<string | null>;
  cxClaim(meta: string, nodeId: string, nodePrefix: string, log: string): Promise<[number, string, string?]>;
  cxOpen(meta: string, feed: string, index: string, ...argv: string[]): Promise<number>;
  cxAppend(log: string, meta: string, feed: string, index: string, ...argv: string[]): Promise<number>;
};

/** One stream this node publishes: its claim and how far Redis has it. */
interface Owned {
  /** Claim epoch in Redis; undefined until claimed (e.g. claimed while Redis was away). */
  epoch: string | undefined;
  /** Last seq known to be in Redis. */
  syncedSeq: number;
  /** Highest seq Redis ever acknowledged (kept when a restarted Redis lost it). */
  writtenSeq: number;
  /** The cluster's last seq at claim time: the stream carries on after it. */
  fromSeq: number;
  /** Announce the stream before the message after this seq (undefined: nothing to announce). */
  openAfterSeq: number | undefined;
  /** Another node claimed it: this node stops writing it to Redis. */
  fenced: boolean;
  /** openStream has been called (a claim alone is not released). */
  opened: boolean;
}

/** A node's view of the cluster through Redis Streams. Create with {@link RedisHub.connect}. */
export class RedisHub implements Hub {
  readonly opts: RedisHubOptions;
  readonly nodeId: string;
  readonly target: BackplaneTarget;
  private readonly local: StreamHub;
  private readonly owned = new Map<string, Owned>();
  private readonly log: Logger;
  private readonly k: { feed: string; index: string; nodePrefix: string; log: (id: string) => string; meta: (id: string) => string };
  private cmd!: RedisWithScripts;
  private reader!: Redis;
  private feedId = '0-0';
  private up = false;
  private readerUp = false;
  private disconnects = 0;
  private droppedWrites = 0;
  /** Why the link is down (what failed and Redis's answer), while it is. */
  private downReason: string | undefined;
  /** Why the feed reader is down, while it is. */
  private feedReason: string | undefined;
  /** Largest feed lag (ms) seen lately, and when: reported for a minute (see {@link noteFeedLag}). */
  private feedLagPeak = { ms: 0, atMs: 0 };
  /** Other nodes' live streams shown as 'degraded' while the link is down: their state before. */
  private readonly stalled = new Map<string, StreamInfo['state']>();
  private closed = false;
  private flushing = false;
  private flushAgain = false;
  private flushTimer: NodeJS.Immediate | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readLoop: Promise<void> | undefined;
  /** Live streams of other nodes whose owner looked dead: since when (ms), and their state before (shown 'degraded' meanwhile). */
  private readonly orphans = new Map<string, { sinceMs: number; before: StreamInfo['state'] }>();
  private reaping = false;
  private resyncing = false;
  /** XREAD BLOCK time: well inside the command timeout, so an idle feed never looks like a dead link. */
  private get blockMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.opts.commandTimeoutMs / 2)));
  }
  private recoveryTimer: NodeJS.Timeout | undefined;

  private constructor(opts: RedisHubOptions, target: BackplaneTarget) {
    this.opts = opts;
    this.target = target;
    this.nodeId = opts.nodeId ?? randomUUID();
    this.local = new StreamHub({
      ringSize: opts.ringSize,
      maxEndedStreams: opts.maxEndedStreams,
      ...(opts.mirrorRingSize === undefined ? {} : { mirrorRingSize: Math.min(opts.mirrorRingSize, opts.ringSize) }),
    });
    this.log = (opts.logger ?? getLogger()).child({ component: 'backplane', backplane: target.safe, nodeId: this.nodeId });
    const p = opts.keyPrefix;
    this.k = { feed: `${p}feed`, index: `${p}streams`, nodePrefix: `${p}node:`, log: (id) => `${p}log:${id}`, meta: (id) => `${p}meta:${id}` };
  }

  /**
   * Connects to Redis, loads the cluster's streams and starts mirroring. Throws AFFECT_ERR_CONFIG
   * (naming the redacted URL, never a password) when the URL is bad, Redis cannot be reached,
   * refuses the credentials, or is older than 7.
   */
  static async connect(options: Partial<RedisHubOptions> & { url: string }): Promise<RedisHub> {
    const opts: RedisHubOptions = { ...DEFAULT_REDIS_HUB, ...options };
    for (const k of [
      'ringSize',
      'orphanGraceMs',
      'nodeHeartbeatMs',
      'nodeTtlMs',
      'connectTimeoutMs',
      'commandTimeoutMs',
      'maxReconnectDelayMs',
      'feedMaxLen',
      'endedRetentionS',
      'batchSize',
    ] as const) {
      if (!(Number.isInteger(opts[k]) && opts[k] > 0)) throw new RangeError(`RedisHub: ${k} must be an integer > 0, got ${opts[k]}`);
    }
    if (opts.nodeTtlMs <= opts.nodeHeartbeatMs)
      throw new RangeError(`RedisHub: nodeTtlMs (${opts.nodeTtlMs}) must exceed nodeHeartbeatMs (${opts.nodeHeartbeatMs})`);
    const target = parseBackplaneUrl(opts.url);
    const hub = new RedisHub(opts, target);
    await hub.start();
    return hub;
  }

  private redisOptions(): RedisOptions {
    const t = this.target;
    return {
      host: t.host,
      port: t.port,
      db: t.db,
      ...(t.username ? { username: t.username } : {}),
      ...(t.password ? { password: t.password } : {}),
      ...(t.tls ? { tls: { ...(isIP(t.host) ? {} : { servername: t.host }), ...this.opts.tlsOptions, rejectUnauthorized: true } } : {}),
      lazyConnect: true,
      // Nothing is queued while disconnected: what Redis has not got is the local ring's tail (bounded).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.opts.connectTimeoutMs,
      commandTimeout: this.opts.commandTimeoutMs,
      enableReadyCheck: true,
      retryStrategy: (times: number) => {
        if (this.closed) return null;
        const base = Math.min(this.opts.maxReconnectDelayMs, 100 * 2 ** Math.min(times, 10));
        return Math.round(base / 2 + Math.random() * (base / 2));
      },
    };
  }

  private async start(): Promise<void> {
    const t = this.target;
    const cmd = new Redis(this.redisOptions()) as RedisWithScripts;
    let firstError: Error | undefined;
    const onStartError = (err: Error) => (firstError ??= err);
    cmd.on('error', onStartError);
    // At start a failure is final (exit 2); only once running does the client reconnect.
    const startRetry = cmd.options.retryStrategy;
    cmd.options.retryStrategy = () => null;
    try {
      await cmd.connect();
      const info = await cmd.info('server');
      const version = /redis_version:(\d+)\.(\d+)/.exec(info);
      if (!version || Number(version[1]) < 7) {
        throw new AffectError(
          'AFFECT_ERR_CONFIG',
          `backplane ${t.safe} runs Redis ${version ? `${version[1]}.${version[2]}` : '(unknown version)'}; circumplex needs Redis >= 7`,
          {
            hint: 'upgrade Redis (Debian 12: apt-get install redis-server)',
          },
        );
      }
    } catch (err) {
      cmd.disconnect();
      if (err instanceof AffectError) throw err;
      throw await startError(t, firstError ?? (err as Error), this.opts.connectTimeoutMs);
    }
    cmd.off('error', onStartError);
    cmd.options.retryStrategy = startRetry;
    await this.checkEviction(cmd);
    cmd.defineCommand('cxClaim', { numberOfKeys: 1, lua: CLAIM_LUA });
    cmd.defineCommand('cxOpen', { numberOfKeys: 3, lua: OPEN_LUA });
    cmd.defineCommand('cxAppend', { numberOfKeys: 4, lua: APPEND_LUA });
    cmd.defineCommand('cxReap', { numberOfKeys: 4, lua: REAP_LUA });
    this.cmd = cmd;
    cmd.on('error', (err: Error) => {
      this.log.debug({ err: scrub(err, t) }, 'backplane connection error');
      // While down, the reconnect's own failure is the reason to show (e.g. Redis now wants a password).
      if (this.up || this.closed) return;
      const reason = this.reasonFor('reconnect failed', err);
      if (reason === this.downReason) return;
      this.downReason = reason;
      this.log.warn({ why: reason }, 'backplane still down');
    });
    cmd.on('close', () => this.setDown('connection closed'));
    cmd.on('ready', () => void this.onReady());

    this.reader = cmd.duplicate();
    this.reader.on('error', (err: Error) => this.log.debug({ err: scrub(err, t) }, 'backplane reader error'));
    await this.reader.connect().catch(async (err: unknown) => {
      this.reader.disconnect();
      cmd.disconnect();
      throw await startError(t, err as Error, this.opts.connectTimeoutMs);
    });

    // The feed position first, then the snapshot: what happens in between is read from the feed
    // (and ignored when already known, by seq).
    const last = await cmd.xrevrange(this.k.feed, '+', '-', 'COUNT', 1);
    this.feedId = last[0]?.[0] ?? '0-0';
    await this.loadSnapshot();
    this.up = true;
    this.readerUp = true;
    await this.beatOrDown();
    this.heartbeat = setInterval(() => {
      void this.beatOrDown();
      void this.reap();
    }, this.opts.nodeHeartbeatMs);
    this.heartbeat.unref();
    this.readLoop = this.readFeed();
    this.log.info('backplane connected');
  }

  /**
   * Warns when Redis may evict keys (maxmemory set with a policy other than noeviction): an evicted
   * liveness key makes a live node look dead, an evicted stream record makes its node claim it again.
   */
  private async checkEviction(cmd: Redis): Promise<void> {
    let info: string;
    try {
      info = await cmd.info('memory');
    } catch {
      return; // INFO may be restricted (ACL); nothing to check then.
    }
    const maxmemory = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (maxmemory > 0 && policy !== undefined && policy !== 'noeviction') {
      this.log.warn(
        { maxmemory, maxmemoryPolicy: policy },
        `Redis may evict the backplane's keys (maxmemory-policy ${policy}): a live node can look dead and streams stall; set maxmemory-policy noeviction (docs/deploy.md, Sizing Redis)`,
      );
    }
  }

  /** Loads every stream the cluster knows (newest first, bounded) into the local view. */
  private async loadSnapshot(): Promise<void> {
    const ids = await this.cmd.zrevrange(this.k.index, 0, 4095);
    if (ids.length === 0) return;
    const pipe = this.cmd.pipeline();
    for (const id of ids) pipe.hgetall(this.k.meta(id));
    const res = (await pipe.exec()) ?? [];
    // Oldest first, so the local hub's "oldest ended streams are forgotten first" order holds.
    for (let i = ids.length - 1; i >= 0; i--) {
      const id = ids[i] as string;
      const h = res[i]?.[1] as Record<string, string> | undefined;
      if (!h || h.hopMs === undefined) continue;
      const state = h.state as StreamInfo['state'] | undefined;
      this.local.mirrorStream({
        streamId: id,
        hopMs: Number(h.hopMs),
        windowMs: Number(h.windowMs),
        sampleRateHz: Number(h.sampleRateHz),
        state: state ?? 'live',
        lastSeq: Number(h.lastSeq ?? -1),
      });
    }
  }

  // ---- Hub: this node's view ----------------------------------------------------------------

  get onListenerError(): (err: unknown) => void {
    return this.local.onListenerError;
  }
  set onListenerError(f: (err: unknown) => void) {
    this.local.onListenerError = f;
  }
  /** Called when a stream this node publishes turned out to be another node's (see {@link Hub.onLost}). */
  onLost: (streamId: string, message: string) => void = () => {};

  get onForget(): (streamId: string) => void {
    return this.local.onForget;
  }
  set onForget(f: (streamId: string) => void) {
    this.local.onForget = f;
  }

  /** Opens a stream this node claimed (see {@link claim}); its seq carries on from the cluster's. */
  openStream(info: OpenStreamInfo): StreamInfo {
    const w = this.owned.get(info.streamId);
    if (!w) {
      throw new AffectError('AFFECT_ERR_STREAM_UNKNOWN', `stream "${info.streamId}" was not claimed by this node`, {
        hint: 'await hub.claim(streamId) before openStream on a cluster hub',
      });
    }
    const s = this.local.openStream({ ...info, fromSeq: Math.max(info.fromSeq ?? -1, w.fromSeq) });
    w.openAfterSeq = s.lastSeq;
    w.opened = true;
    this.scheduleFlush();
    return s;
  }

  publish(streamId: string, event: PipelineEvent): StreamEventMessage {
    this.mine(streamId);
    const m = this.local.publish(streamId, event);
    this.scheduleFlush();
    return m;
  }

  publishMessage(message: StreamEventMessage): StreamEventMessage {
    this.mine(message.streamId);
    const m = this.local.publishMessage(message);
    this.scheduleFlush();
    return m;
  }

  /** Ends a stream this node publishes (another node's streams are left alone). */
  endStream(streamId: string, message?: string, tMs?: number): void {
    if (!this.owned.has(streamId)) return;
    this.local.endStream(streamId, message, tMs);
    this.scheduleFlush();
  }

  streams(): StreamInfo[] {
    return this.local.streams();
  }

  stream(streamId: string): StreamInfo | undefined {
    return this.local.stream(streamId);
  }

  since(streamId: string, seq: number): SinceResult {
    return this.local.since(streamId, seq);
  }

  subscribe(listener: HubListener): () => void {
    return this.local.subscribe(listener);
  }

  /**
   * Resume history from the stream's Redis log (any node's stream), plus this node's messages not
   * yet written there. With Redis away: this node's ring.
   */
  history(streamId: string, seq: number): SinceResult | Promise<SinceResult> {
    if (!this.up) return this.local.since(streamId, seq);
    return (async () => {
      let fromRedis: StreamEventMessage[];
      try {
        const entries = await this.cmd.xrange(this.k.log(streamId), `(0-${seq + 1}`, '+');
        fromRedis = entries.map(([, fields]) => parseMessage(fields)).filter((m): m is StreamEventMessage => m !== undefined && m.seq > seq);
      } catch (err) {
        this.log.warn({ err: scrub(err as Error, this.target), streamId }, "resume could not read the backplane; using this node's ring");
        return this.local.since(streamId, seq);
      }
      const after = fromRedis.at(-1)?.seq ?? seq;
      const tail = this.local.since(streamId, Math.max(after, seq)).messages;
      const messages = [...fromRedis, ...tail];
      if (messages.length === 0) return this.local.since(streamId, seq);
      return { messages, missed: Math.max(0, (messages[0]?.seq ?? 0) - seq - 1) };
    })();
  }

  /**
   * Takes the stream for this node: refused while another live node publishes it. With Redis away
   * it is granted unless this node saw the stream live elsewhere; the claim is made in Redis once
   * the link is back (and if another node took the stream meanwhile, this node's messages stay local).
   */
  claim(streamId: string): Promise<ClaimResult> {
    return (async (): Promise<ClaimResult> => {
      const known = this.local.stream(streamId);
      const mine = this.owned.get(streamId);
      if (!this.up) {
        if (known && known.state !== 'ended' && !mine) {
          return { ok: false, reason: 'backplane-down', message: `stream "${streamId}" is live on another node and the backplane is down; retry later` };
        }
        if (!mine)
          this.owned.set(streamId, {
            epoch: undefined,
            syncedSeq: -1,
            writtenSeq: -1,
            fromSeq: known?.lastSeq ?? -1,
            openAfterSeq: undefined,
            fenced: false,
            opened: false,
          });
        return { ok: true };
      }
      // Already this node's (a publisher reconnecting here): a new claim would fence its own pending writes.
      if (mine && !mine.fenced && mine.epoch !== undefined) return { ok: true };
      try {
        const r = await this.cmd.cxClaim(this.k.meta(streamId), this.nodeId, this.k.nodePrefix, this.k.log(streamId));
        if (Number(r[0]) !== 1) return { ok: false, reason: 'stream-busy', message: `stream "${streamId}" already has a publisher (on another node)` };
        const last = Number(r[2] ?? -1);
        // The local mirror may lag the cluster: fill it up to the cluster's last seq, so this node's
        // subscribers see no jump when the stream continues here.
        const localLast = this.local.stream(streamId)?.lastSeq ?? -1;
        if (localLast >= 0 && localLast < last) {
          for (const [, fl] of await this.cmd.xrange(this.k.log(streamId), `(0-${localLast + 1}`, `0-${last + 1}`)) {
            const g = parseMessage(fl);
            if (g) this.local.mirrorMessage(g);
          }
        }
        this.owned.set(streamId, {
          epoch: String(r[1]),
          syncedSeq: last,
          writtenSeq: last,
          fromSeq: last,
          openAfterSeq: undefined,
          fenced: false,
          opened: false,
        });
        return { ok: true };
      } catch (err) {
        this.setDown('claim failed', err);
        return { ok: false, reason: 'backplane-down', message: `the backplane failed (${scrub(err as Error, this.target).message}); retry` };
      }
    })();
  }

  backplane(): BackplaneStatus {
    let pendingWrites = 0;
    // What waits is what the ring still holds after the last written seq: at most ringSize per stream.
    for (const [id, w] of this.owned)
      if (!w.fenced && (this.local.stream(id)?.lastSeq ?? -1) > w.syncedSeq) pendingWrites += this.local.since(id, w.syncedSeq).messages.length;
    const error = !this.up ? this.downReason : this.readerUp ? undefined : this.feedReason;
    const lag = Date.now() - this.feedLagPeak.atMs > FEED_LAG_WINDOW_MS ? 0 : this.feedLagPeak.ms;
    return {
      kind: 'redis',
      target: this.target.safe,
      up: this.up && this.readerUp,
      ...(error === undefined ? {} : { error }),
      nodeId: this.nodeId,
      pendingWrites,
      disconnects: this.disconnects,
      droppedWrites: this.droppedWrites,
      feedLagMs: lag,
    };
  }

  /** Writes what is pending (briefly), removes this node's liveness key, and disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    if (this.up) {
      const deadline = Date.now() + 1000;
      await this.flush();
      while (this.flushing && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      // A graceful stop frees this node's streams for other nodes at once.
      await this.cmd.del(`${this.k.nodePrefix}${this.nodeId}`).catch(() => undefined);
    }
    this.closed = true;
    this.reader.disconnect();
    this.cmd.disconnect();
    await this.readLoop?.catch(() => undefined);
    this.log.info('backplane closed');
  }

  // ---- writing this node's streams -----------------------------------------------------------

  private mine(streamId: string): void {
    if (!this.owned.has(streamId)) {
      throw new AffectError('AFFECT_ERR_STREAM_UNKNOWN', `stream "${streamId}" is not published by this node`, {
        hint: 'claim and open the stream on this node before publishing',
      });
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setImmediate(() => {
      this.flushTimer = undefined;
      this.flush().catch((err: unknown) => this.log.error({ err: scrub(err as Error, this.target) }, 'backplane flush failed'));
    });
  }

  /** Writes every owned stream's messages that Redis does not have yet, in seq order. */
  private async flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    if (!this.up || this.closed) return;
    this.flushing = true;
    try {
      do {
        this.flushAgain = false;
        await this.flushOnce();
      } while (this.flushAgain && this.up && !this.closed);
    } finally {
      this.flushing = false;
    }
  }

  private async flushOnce(): Promise<void> {
    type Op = { id: string; w: Owned; kind: 'open' } | { id: string; w: Owned; kind: 'msg'; m: StreamEventMessage };
    const ops: Op[] = [];
    const now = String(Date.now());
    for (const [id, w] of this.owned) {
      if (w.fenced || w.epoch === undefined) continue;
      const { messages, missed } = this.local.since(id, w.syncedSeq);
      // Evicted from the ring before Redis got them (a long outage): lost to other nodes. (Those a
      // restarted Redis lost had been written once; they are not counted.)
      const never = Math.max(0, missed - Math.max(0, w.writtenSeq - w.syncedSeq));
      if (never > 0) {
        this.droppedWrites += never;
        this.log.warn({ streamId: id, missed: never }, 'messages evicted before the backplane got them');
      }
      if (missed > 0) w.syncedSeq += missed;
      // The announcement goes right before the first message after the (re)open.
      let openPending = w.openAfterSeq !== undefined;
      const batch = messages.slice(0, this.opts.batchSize);
      for (const m of batch) {
        if (openPending && m.seq > (w.openAfterSeq as number)) {
          ops.push({ id, w, kind: 'open' });
          openPending = false;
        }
        ops.push({ id, w, kind: 'msg', m });
      }
      if (openPending && batch.length === messages.length) ops.push({ id, w, kind: 'open' });
      if (messages.length > batch.length) this.flushAgain = true;
    }
    if (ops.length === 0) return;
    const pipe = this.cmd.pipeline() as unknown as {
      cxOpen: RedisWithScripts['cxOpen'];
      cxAppend: RedisWithScripts['cxAppend'];
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const op of ops) {
      const { id, w } = op;
      if (op.kind === 'open') {
        const s = this.local.stream(id);
        const info = JSON.stringify({
          streamId: id,
          hopMs: s?.hopMs ?? 250,
          windowMs: s?.windowMs ?? 1000,
          sampleRateHz: s?.sampleRateHz ?? 16000,
          state: 'live',
        });
        void pipe.cxOpen(
          this.k.meta(id),
          this.k.feed,
          this.k.index,
          this.nodeId,
          w.epoch as string,
          String(s?.hopMs ?? 250),
          String(s?.windowMs ?? 1000),
          String(s?.sampleRateHz ?? 16000),
          now,
          id,
          String(this.opts.feedMaxLen),
          info,
        );
      } else {
        const m = op.m;
        const state = m.type === 'status' ? m.state : '';
        void pipe.cxAppend(
          this.k.log(id),
          this.k.meta(id),
          this.k.feed,
          this.k.index,
          this.nodeId,
          w.epoch as string,
          String(m.seq),
          JSON.stringify(m),
          String(this.opts.ringSize),
          String(this.opts.feedMaxLen),
          state,
          String(m.tMs),
          now,
          id,
          String(this.opts.endedRetentionS),
        );
      }
    }
    let res: [Error | null, unknown][] | null;
    try {
      res = await pipe.exec();
    } catch (err) {
      this.setDown('write failed', err);
      this.log.debug({ err: scrub(err as Error, this.target) }, 'backplane write failed');
      return;
    }
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Op;
      const [err, value] = res?.[i] ?? [new Error('no reply'), undefined];
      if (err) {
        // Connection trouble or a refusal (OOM): everything from here is retried after the re-sync.
        this.setDown('write failed', err);
        return;
      }
      if (Number(value) === -2) {
        // Not another node's doing: Redis dropped the stream's facts while up. Claim it again (re-sync).
        const lost = new Error(`Redis lost the record of stream "${op.id}" (${this.k.meta(op.id)} is gone: evicted by its maxmemory-policy? use noeviction)`);
        this.setDown('write failed', lost);
        return;
      }
      if (Number(value) === -1) {
        if (!op.w.fenced) this.log.warn({ streamId: op.id }, 'another node claimed this stream; its messages from here on stay on this node');
        op.w.fenced = true;
        continue;
      }
      if (op.kind === 'open') op.w.openAfterSeq = undefined;
      else {
        op.w.syncedSeq = Math.max(op.w.syncedSeq, op.m.seq);
        op.w.writtenSeq = Math.max(op.w.writtenSeq, op.m.seq);
      }
    }
    // A stream whose final message is in Redis is released (another node may claim it at once).
    for (const [id, w] of this.owned) {
      const s = this.local.stream(id);
      if (w.opened && (!s || (s.state === 'ended' && (w.fenced || (w.syncedSeq >= s.lastSeq && w.openAfterSeq === undefined))))) this.owned.delete(id);
    }
  }

  // ---- link state --------------------------------------------------------------------------

  /** `why: Redis's answer` for logs and /healthz, credentials scrubbed, with advice where an operator must act. */
  private reasonFor(why: string, err: unknown): string {
    return `${why}: ${withAdvice(scrub(err as Error, this.target).message)}`;
  }

  /**
   * The link is down: `why` is what failed, `err` Redis's answer (e.g. `OOM command not allowed`),
   * both kept for `/healthz` until the link is back.
   */
  private setDown(why: string, err?: unknown): void {
    if (!this.up || this.closed) return;
    const reason = err === undefined ? why : this.reasonFor(why, err);
    this.up = false;
    this.downReason = reason;
    this.disconnects++;
    this.log.warn({ why: reason }, "backplane down: serving this node's streams locally until it is back");
    this.markStalled();
    this.scheduleRecovery(1);
  }

  /**
   * The link is down: other nodes' live streams stop arriving here. Their subscribers on this node
   * are told (a `stream` message with state 'degraded'), so a silent stream is not mistaken for a
   * quiet call; {@link markBack} restores the state once the link is back.
   */
  private markStalled(): void {
    for (const s of this.local.streams()) {
      if (s.state === 'ended' || this.owned.has(s.streamId) || this.stalled.has(s.streamId)) continue;
      this.stalled.set(s.streamId, s.state);
      this.local.mirrorStream({ ...s, state: 'degraded' });
    }
  }

  /** Both connections are back: the streams marked by {@link markStalled} get their state back (before any backlog). */
  private markBack(): void {
    if (!this.up || !this.readerUp) return;
    for (const [id, before] of this.stalled) {
      const s = this.local.stream(id);
      // A stream that ended, or that its node re-announced meanwhile, is left as it is.
      if (s && s.state === 'degraded') this.local.mirrorStream({ ...s, state: before });
    }
    this.stalled.clear();
  }

  /**
   * The link may be fine while a command failed (a timeout, a script error): nothing would emit
   * 'ready' again, so retry the re-sync with backoff until it works (or the connection's own
   * reconnect emits 'ready' first).
   */
  private scheduleRecovery(attempt: number): void {
    if (this.closed || this.recoveryTimer) return;
    const base = Math.min(this.opts.maxReconnectDelayMs, 100 * 2 ** Math.min(attempt, 10));
    this.recoveryTimer = setTimeout(
      () => {
        this.recoveryTimer = undefined;
        if (this.closed || this.up) return;
        if (this.cmd.status !== 'ready') return this.scheduleRecovery(attempt + 1);
        void this.onReady().then(() => {
          if (!this.up) this.scheduleRecovery(attempt + 1);
        });
      },
      Math.round(base / 2 + Math.random() * (base / 2)),
    );
    this.recoveryTimer.unref();
  }

  /** The command connection is (back) up: re-assert this node, its claims, then write the backlog. */
  private async onReady(): Promise<void> {
    if (this.closed || this.up || this.resyncing) return;
    this.resyncing = true;
    try {
      await this.beat();
      for (const [id, w] of this.owned) {
        const r = await this.cmd.cxClaim(this.k.meta(id), this.nodeId, this.k.nodePrefix, this.k.log(id));
        if (Number(r[0]) !== 1) {
          // Another node's publisher took this id meanwhile (both accepted it while Redis was away, or
          // this node was cut off past --node-ttl-ms): this node's copy is not the cluster's. End it
          // here and refuse its publisher, rather than let two streams of one id diverge silently.
          const message = `stream "${id}" is published by another node: it took the id while this node was cut off from the backplane; this node's copy ends here`;
          this.log.warn({ streamId: id, owner: r[1] }, message);
          this.owned.delete(id);
          const s = this.local.stream(id);
          if (s && s.state !== 'ended') this.local.endStream(id, message);
          this.onLost(id, message);
          continue;
        }
        w.epoch = String(r[1]);
        const redisLast = Number(r[2] ?? -1);
        // Redis may have lost data (restarted without persistence): write again what it lacks.
        w.syncedSeq = redisLast;
        // Re-announce the stream (its facts may be gone) before the first message Redis lacks.
        const s = this.local.stream(id);
        if (w.opened && s && s.state !== 'ended') w.openAfterSeq = redisLast;
      }
      this.up = true;
      this.downReason = undefined;
      this.log.info('backplane back');
      this.markBack();
      this.scheduleFlush();
    } catch (err) {
      // Still failing (e.g. Redis answers every write with OOM): /healthz shows the latest reason.
      this.downReason = this.reasonFor('re-sync failed', err);
      this.log.debug({ err: scrub(err as Error, this.target) }, 'backplane not ready yet');
    } finally {
      this.resyncing = false;
    }
  }

  /** Refreshes this node's liveness key. Throws when Redis refuses it (the re-sync must not count as done). */
  private async beat(): Promise<void> {
    if (this.closed) return;
    await this.cmd.set(`${this.k.nodePrefix}${this.nodeId}`, String(Date.now()), 'PX', this.opts.nodeTtlMs);
    // The cluster list forgets streams not updated for the ended-stream retention (their keys expired).
    await this.cmd.zremrangebyscore(this.k.index, '-inf', `(${Date.now() - this.opts.endedRetentionS * 1000}`);
  }

  /** The periodic heartbeat: a refused one takes the link down. */
  private beatOrDown(): Promise<void> {
    return this.beat().catch((err: unknown) => this.setDown('heartbeat failed', err));
  }

  /**
   * Ends other nodes' live streams whose node has been dead for orphanGraceMs and that nobody
   * claimed (the publisher never came back). Any node may do it; the script makes it happen once.
   */
  private async reap(): Promise<void> {
    if (!this.up || this.closed || this.reaping) return;
    this.reaping = true;
    try {
      const ids = this.local
        .streams()
        .filter((s) => s.state !== 'ended' && !this.owned.has(s.streamId))
        .map((s) => s.streamId);
      for (const id of [...this.orphans.keys()]) if (!ids.includes(id)) this.orphans.delete(id);
      if (ids.length === 0) return;
      const owners = await Promise.all(ids.map((id) => this.cmd.hget(this.k.meta(id), 'owner')));
      const distinct = [...new Set(owners.filter((o): o is string => Boolean(o)))];
      const alive = new Map<string, boolean>();
      const exists = await Promise.all(distinct.map((o) => this.cmd.exists(`${this.k.nodePrefix}${o}`)));
      distinct.forEach((o, i) => alive.set(o, exists[i] === 1));
      const now = Date.now();
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as string;
        const owner = owners[i];
        const orphan = this.orphans.get(id);
        if (!owner || alive.get(owner) !== false) {
          // Its node is back (a long pause) or another node took it: undo the 'degraded' shown here.
          if (orphan) {
            this.orphans.delete(id);
            const s = this.local.stream(id);
            if (s?.state === 'degraded' && orphan.before !== 'degraded') this.local.mirrorStream({ ...s, state: orphan.before });
          }
          continue;
        }
        if (!orphan) {
          // Its node is gone: subscribers here learn now that the stream stalls, not only when it is ended.
          const s = this.local.stream(id);
          this.orphans.set(id, { sinceMs: now, before: s?.state ?? 'live' });
          if (s && s.state !== 'degraded') this.local.mirrorStream({ ...s, state: 'degraded' });
          continue;
        }
        if (now - orphan.sinceMs < this.opts.orphanGraceMs) continue;
        this.orphans.delete(id);
        const raw = await this.cmd.cxReap(
          this.k.log(id),
          this.k.meta(id),
          this.k.feed,
          this.k.index,
          owner,
          this.k.nodePrefix,
          id,
          String(now),
          String(this.opts.ringSize),
          String(this.opts.feedMaxLen),
          String(this.opts.endedRetentionS),
          `reaper:${this.nodeId}`,
        );
        // Every node, this one included, applies the final status from the feed, in seq order.
        if (typeof raw === 'string')
          this.log.warn({ streamId: id, deadNode: owner }, 'ended a stream whose ingest node died and whose publisher did not come back');
      }
    } catch (err) {
      this.log.debug({ err: scrub(err as Error, this.target) }, 'orphan check failed');
    } finally {
      this.reaping = false;
    }
  }

  // ---- reading the cluster feed ------------------------------------------------------------

  private async readFeed(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        const res = await this.reader.xread('COUNT', this.opts.batchSize, 'BLOCK', this.blockMs, 'STREAMS', this.k.feed, this.feedId);
        if (!this.readerUp) {
          this.readerUp = true;
          this.markBack();
          this.log.info('backplane feed back');
        }
        failures = 0;
        this.noteFeedLag(res?.[0]?.[1]?.[0]?.[0]);
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            this.feedId = id;
            await this.apply(fields);
          }
        }
      } catch (err) {
        if (this.closed) return;
        this.feedReason = this.reasonFor('feed read failed', err);
        if (this.readerUp) {
          this.readerUp = false;
          this.log.warn({ why: this.feedReason }, 'backplane feed lost; retrying');
          this.markStalled();
        }
        failures++;
        const base = Math.min(this.opts.maxReconnectDelayMs, 100 * 2 ** Math.min(failures, 10));
        await new Promise((r) => setTimeout(r, Math.round(base / 2 + Math.random() * (base / 2))).unref());
      }
    }
  }

  /**
   * Read lag: how old (by Redis's clock, from the entry id) the first entry of a read was when it
   * arrived; 0 when the read found nothing waiting. The largest in the last minute is reported, so a
   * scrape every 15-60 s still sees a burst of lag that the next read already caught up.
   */
  private noteFeedLag(firstId: string | undefined): void {
    const now = Date.now();
    const ms = firstId === undefined ? 0 : Math.max(0, now - Number(firstId.split('-')[0]));
    if (ms >= this.feedLagPeak.ms || now - this.feedLagPeak.atMs > FEED_LAG_WINDOW_MS) this.feedLagPeak = { ms, atMs: now };
  }

  /** Applies one feed entry to the local view (another node's announcement or message). */
  private async apply(fields: string[]): Promise<void> {
    const f = fieldsOf(fields);
    // This node's own entries, and any entry of a stream it publishes, are already in its hub.
    if (f.n === this.nodeId || !f.s || this.owned.has(f.s)) return;
    if (f.k === 'o') {
      try {
        const info = JSON.parse(f.d ?? '') as Omit<StreamInfo, 'lastSeq'>;
        this.local.mirrorStream({ ...info, streamId: f.s, state: 'live', lastSeq: Number(f.l ?? -1) });
      } catch {
        this.log.warn({ streamId: f.s }, 'ignored a malformed stream announcement in the feed');
      }
      return;
    }
    const m = parseMessage(fields);
    if (!m) return;
    const last = this.local.stream(m.streamId)?.lastSeq;
    if (last !== undefined && m.seq > last + 1) {
      // A gap (this node missed feed entries): fill it from the stream's log first.
      try {
        const entries = await this.cmd.xrange(this.k.log(m.streamId), `(0-${last + 1}`, `(0-${m.seq + 1}`);
        for (const [, fl] of entries) {
          const g = parseMessage(fl);
          if (g) this.local.mirrorMessage(g);
        }
      } catch {
        // Redis is away again: deliver what we have; the gap shows as a jump in seq.
      }
    }
    this.local.mirrorMessage(m);
  }
}

/** Feed/log entry fields as an object. */
function fieldsOf(fields: string[]): Record<string, string | undefined> {
  const o: Record<string, string | undefined> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i] as string] = fields[i + 1];
  return o;
}

/** The message of a log or feed entry (field `m` or `d`), or undefined when malformed. */
function parseMessage(fields: string[]): StreamEventMessage | undefined {
  const f = fieldsOf(fields);
  const raw = f.m ?? f.d;
  if (raw === undefined) return undefined;
  try {
    const m = JSON.parse(raw) as StreamEventMessage;
    return typeof m === 'object' && m !== null && typeof m.streamId === 'string' && Number.isInteger(m.seq) ? m : undefined;
  } catch {
    return undefined;
  }
}

/** Redis's answer, plus what to do when it is one an operator must act on (full, replica, failing snapshots). */
function withAdvice(msg: string): string {
  // ioredis's words for a command cut off by a lost connection (no retries: nothing is queued).
  if (/max retries per request limit|^Connection is closed|Stream isn't writeable/.test(msg)) return 'connection lost';
  if (/^NOAUTH\b/.test(msg)) return `${msg} (Redis wants a password now: put it in --backplane / CIRCUMPLEX_BACKPLANE)`;
  if (/^WRONGPASS\b/.test(msg)) return `${msg} (Redis refused the password in --backplane / CIRCUMPLEX_BACKPLANE)`;
  if (/^OOM\b/.test(msg)) return `${msg} (Redis is full: raise its maxmemory or lower --ring-size; docs/deploy.md, Sizing Redis)`;
  if (/^READONLY\b/.test(msg)) return `${msg} (that Redis is a read-only replica: point --backplane at the primary)`;
  if (/^MISCONF\b/.test(msg)) return `${msg} (Redis refuses writes while its snapshots fail: check its disk and log)`;
  return msg;
}

/** An error with any credential of the target removed from its message. */
function scrub(err: Error, t: BackplaneTarget): Error {
  let msg = err?.message ?? String(err);
  for (const secret of [t.password, t.username]) if (secret) msg = msg.split(secret).join('***');
  return new Error(msg);
}

/** What a port sent back to a plain-text `PING` (see {@link peek}). */
type Peek = { kind: 'answer'; text: string } | { kind: 'reset' } | { kind: 'silent' } | { kind: 'unreachable' };

/**
 * Connects to the target in plain text, sends `PING` and reads the first bytes back (at most
 * `timeoutMs`), to tell the operator what `--backplane` points at when the Redis client only says
 * "Unknown RESP type", "write EPIPE" or "Command timed out". Sends nothing else (no credentials).
 */
function peek(t: BackplaneTarget, timeoutMs: number): Promise<Peek> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: t.host, port: t.port });
    let got = Buffer.alloc(0);
    let connected = false;
    const done = (p: Peek) => {
      socket.destroy();
      resolve(p);
    };
    const answer = () => done(got.length > 0 ? { kind: 'answer', text: got.toString('latin1') } : { kind: 'reset' });
    socket.setTimeout(timeoutMs, () => (connected ? (got.length > 0 ? answer() : done({ kind: 'silent' })) : done({ kind: 'unreachable' })));
    socket.once('connect', () => {
      connected = true;
      socket.write('PING\r\n');
    });
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 80 || got.includes(10)) answer();
    });
    socket.once('error', () => (connected ? answer() : done({ kind: 'unreachable' })));
    socket.once('end', answer);
  });
}

/** The first line of what a non-Redis service sent, printable and short enough to quote. */
function firstLine(text: string): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
  const printable = line.replace(/[^\x20-\x7e]/g, '?').trim();
  return printable.length > 60 ? `${printable.slice(0, 60)}…` : printable;
}

/**
 * What to say about a target that accepted the connection but did not behave as Redis (another
 * service, TLS on one side only, a silent port); undefined when it looks like Redis after all.
 */
async function notRedis(t: BackplaneTarget, cause: Error, timeoutMs: number): Promise<AffectError | undefined> {
  const waitMs = Math.min(timeoutMs, 2000);
  const p = await peek(t, waitMs);
  const where = `--backplane ${t.safe}`;
  const port = 'point --backplane (or CIRCUMPLEX_BACKPLANE) at the port redis-server listens on (6379 by default)';
  const fail = (message: string, hint: string) => new AffectError('AFFECT_ERR_CONFIG', message, { cause, hint });
  if (p.kind === 'answer' && /^[+-]/.test(p.text)) {
    // A plain-text Redis (PONG, NOAUTH, ...): only a TLS client fails on it.
    return t.tls
      ? fail(
          `${where}: that port serves plain-text Redis, not TLS`,
          'write redis:// instead of rediss:// for this port, or use the port Redis serves TLS on (its tls-port)',
        )
      : undefined;
  }
  if (p.kind === 'answer')
    return fail(`${where} is not a Redis server: it answered "${firstLine(p.text)}" to PING`, `${port}; that port belongs to another service`);
  if (p.kind === 'reset' && !t.tls) {
    return fail(
      `${where}: the server there closed the connection at the first Redis command`,
      `a Redis that serves only TLS does that: write rediss:// (NODE_EXTRA_CA_CERTS=/path/ca.pem for a private CA); otherwise ${port}`,
    );
  }
  if (p.kind === 'silent') {
    return fail(
      `${where} accepted the connection but answered nothing to PING in ${waitMs} ms: not Redis, or a Redis too busy to answer`,
      `${port}; check with redis-cli -h ${t.host} -p ${t.port}${t.tls ? ' --tls' : ''} ping`,
    );
  }
  return undefined;
}

/** The start-up failure as a clear AffectError (redacted URL, no password). */
async function startError(t: BackplaneTarget, err: Error, timeoutMs: number): Promise<AffectError> {
  const msg = scrub(err, t).message;
  const code = (err as NodeJS.ErrnoException).code;
  if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) {
    return new AffectError('AFFECT_ERR_CONFIG', `backplane ${t.safe} refused the credentials (${msg})`, {
      cause: scrub(err, t),
      hint: 'check the user and password in --backplane / CIRCUMPLEX_BACKPLANE (redis://user:password@host:port/db)',
    });
  }
  if (/NOAUTH/i.test(msg)) {
    return new AffectError('AFFECT_ERR_CONFIG', `backplane ${t.safe} requires a password`, {
      cause: scrub(err, t),
      hint: 'put it in the URL: redis://:password@host:port/db (or user:password@)',
    });
  }
  const reach = (why: string) =>
    new AffectError('AFFECT_ERR_CONFIG', `cannot reach the backplane ${t.safe}: ${why}`, {
      cause: scrub(err, t),
      hint: 'is redis-server (>= 7) running there? check host, port and firewall, or start serve without --backplane',
    });
  if (code === 'ECONNREFUSED' || /ECONNREFUSED/.test(msg)) return reach('connection refused');
  if (/ENOTFOUND|EAI_AGAIN/.test(msg)) return reach(`host ${t.host} not found (DNS)`);
  // Connected, but the client could not make sense of it: look at what answers there.
  const other = await notRedis(t, scrub(err, t), timeoutMs);
  if (other) return other;
  if (/certificate|self[- ]signed|altnames|unable to (get|verify)/i.test(msg)) {
    return new AffectError('AFFECT_ERR_CONFIG', `cannot reach the backplane ${t.safe}: ${msg}`, {
      cause: scrub(err, t),
      hint: 'the TLS certificate of Redis is not trusted for that host: give Node its CA (NODE_EXTRA_CA_CERTS=/path/ca.pem) or use a certificate that names the host',
    });
  }
  return reach(/ETIMEDOUT|timed? ?out/i.test(msg) ? 'connection timed out' : msg);
}
