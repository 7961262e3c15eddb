import { afterEach, describe, expect, it, vi } from 'vitest';
import { envLogLevel, loadConfig } from '../../core/config.js';
import { AffectError } from '../../core/errors.js';

describe('loadConfig', () => {
  it('reads the variables it knows, with defaults', () => {
    const c = loadConfig({ CIRCUMPLEX_VOSK_MODEL: '/m', CIRCUMPLEX_DEVICE: 'cpu', CIRCUMPLEX_ALLOWED_ORIGINS: 'http://a, http://b' });
    expect(c.voskModel).toBe('/m');
    expect(c.device).toBe('cpu');
    expect(c.allowedOrigins).toEqual(['http://a', 'http://b']);
    expect(loadConfig({}).device).toBe('auto');
  });

  it('treats an empty variable as unset', () => {
    const c = loadConfig({ CIRCUMPLEX_VOSK_MODEL: '', CIRCUMPLEX_DEVICE: '' });
    expect(c.voskModel).toBeUndefined();
    expect(c.device).toBe('auto');
  });

  it('reports every bad variable at once with AFFECT_ERR_CONFIG', () => {
    let err: unknown;
    try {
      loadConfig({ CIRCUMPLEX_DEVICE: 'tpu', CIRCUMPLEX_LOG_LEVEL: 'loud' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AffectError);
    expect((err as AffectError).code).toBe('AFFECT_ERR_CONFIG');
    expect((err as AffectError).message).toContain('CIRCUMPLEX_DEVICE');
    expect((err as AffectError).message).toContain('CIRCUMPLEX_LOG_LEVEL');
  });
});

describe('CIRCUMPLEX_LOG_LEVEL outside the commands', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  it('envLogLevel gives a valid level, and undefined for an unset, empty or bad one', () => {
    expect(envLogLevel({ CIRCUMPLEX_LOG_LEVEL: 'warn' })).toBe('warn');
    expect(envLogLevel({})).toBeUndefined();
    expect(envLogLevel({ CIRCUMPLEX_LOG_LEVEL: '' })).toBeUndefined();
    expect(envLogLevel({ CIRCUMPLEX_LOG_LEVEL: 'loud' })).toBeUndefined();
  });

  it('the process-wide logger starts at the level the environment names (a library user calls no setLogLevel)', async () => {
    vi.stubEnv('CIRCUMPLEX_LOG_LEVEL', 'warn');
    vi.resetModules();
    const { getLogger } = await import('../../core/log.js');
    expect(getLogger().level).toBe('warn');
    vi.stubEnv('CIRCUMPLEX_LOG_LEVEL', 'loud');
    vi.resetModules();
    expect((await import('../../core/log.js')).getLogger().level).toBe('info');
  });
});
