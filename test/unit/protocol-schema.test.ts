/**
 * clients/protocol.schema.json (the JSON Schema for other languages) must be what
 * clients/build-schema.ts makes from the zod schemas, and must accept and reject the same messages
 * as zod does (checked with a small validator for the keywords the file uses).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_SCHEMA_PATH, protocolJsonSchema } from '../../clients/build-schema.js';
import { ClientMessageSchema, IngestMessageSchema, IngestReplySchema, PROTOCOL_VERSION, ServerMessageSchema } from '../../core/protocol.js';
import { toWire } from '../../src/server/hub.js';

type Schema = Record<string, unknown>;
const committed = JSON.parse(readFileSync(PROTOCOL_SCHEMA_PATH, 'utf8')) as Schema;

/** Validates `v` against the subset of draft 2020-12 the generated file uses; returns the first problem or null. */
function check(s: Schema, v: unknown, root: Schema, at = '$'): string | null {
  if (typeof s.$ref === 'string') {
    const name = s.$ref.replace('#/$defs/', '');
    return check((root.$defs as Record<string, Schema>)[name] as Schema, v, root, at);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const alts = s[key] as Schema[] | undefined;
    if (!alts) continue;
    const ok = alts.filter((a) => check(a, v, root, at) === null).length;
    if (key === 'anyOf' ? ok === 0 : ok !== 1) return `${at}: ${ok} of ${key} match`;
  }
  if ('const' in s && v !== s.const) return `${at}: not ${JSON.stringify(s.const)}`;
  if (Array.isArray(s.enum) && !s.enum.includes(v)) return `${at}: not one of ${JSON.stringify(s.enum)}`;
  const type = s.type as string | undefined;
  if (type === 'number' && !(typeof v === 'number' && Number.isFinite(v))) return `${at}: not a number`;
  if (type === 'integer' && !Number.isInteger(v)) return `${at}: not an integer`;
  if (type === 'string' && typeof v !== 'string') return `${at}: not a string`;
  if (type === 'boolean' && typeof v !== 'boolean') return `${at}: not a boolean`;
  if (type === 'array' && !Array.isArray(v)) return `${at}: not an array`;
  if (type === 'object' && (typeof v !== 'object' || v === null || Array.isArray(v))) return `${at}: not an object`;
  if (typeof v === 'number') {
    if (typeof s.minimum === 'number' && v < s.minimum) return `${at}: < ${s.minimum}`;
    if (typeof s.maximum === 'number' && v > s.maximum) return `${at}: > ${s.maximum}`;
  }
  if (typeof v === 'string') {
    if (typeof s.minLength === 'number' && v.length < s.minLength) return `${at}: shorter than ${s.minLength}`;
    if (typeof s.maxLength === 'number' && v.length > s.maxLength) return `${at}: longer than ${s.maxLength}`;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v)) return `${at}: does not match ${s.pattern}`;
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) return `${at}: fewer than ${s.minItems} items`;
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) return `${at}: more than ${s.maxItems} items`;
    if (s.items)
      for (const [i, item] of v.entries()) {
        const p = check(s.items as Schema, item, root, `${at}[${i}]`);
        if (p) return p;
      }
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const r of (s.required as string[] | undefined) ?? []) if (!(r in o)) return `${at}.${r}: missing`;
    const props = (s.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, val] of Object.entries(o)) {
      const ps = props[k] ?? (s.additionalProperties as Schema | undefined);
      if (s.propertyNames) {
        const p = check(s.propertyNames as Schema, k, root, `${at}{${k}}`);
        if (p) return p;
      }
      if (ps && typeof ps === 'object') {
        const p = check(ps, val, root, `${at}.${k}`);
        if (p) return p;
      }
    }
  }
  return null;
}

const valid = (v: unknown) => check(committed, v, committed);

const affect = toWire('mic', 7, {
  kind: 'affect',
  point: {
    streamId: 'mic',
    tMs: 1250,
    valence: 0.3,
    arousal: -0.2,
    confidence: 0.8,
    label: 'content',
    intensity: 0.36,
    angleDeg: 326,
    modalities: ['speech'],
    speech: { valence: 0.3, arousal: -0.2, confidence: 0.8 },
    droppedWindows: 0,
    voiced: 0.9,
    velocity: { valence: 0.01, arousal: 0 },
  },
});
const samples: unknown[] = [
  {
    type: 'hello',
    version: PROTOCOL_VERSION,
    sessionId: 's1',
    hopMs: 250,
    streams: [{ streamId: 'mic', hopMs: 250, windowMs: 1000, sampleRateHz: 16000, state: 'live', lastSeq: -1 }],
  },
  affect,
  { type: 'transcript', streamId: 'mic', seq: 8, tMs: 1500, text: 'hello there', final: true, words: [{ word: 'hello', startMs: 100, endMs: 400, conf: 0.9 }] },
  { type: 'resumed', streamId: 'mic', fromSeq: 3, missed: 0 },
  { type: 'subscribe', streamIds: ['*'], resumeFrom: { mic: 7 } },
  { type: 'start', streamId: 'call-1', encoding: 'mulaw', sampleRateHz: 8000, channels: 1 },
  { type: 'stopped', streamId: 'call-1', framesAccepted: 120, framesRejected: 0, samplesClipped: 3 },
];
const zodAccepts = (v: unknown) => [ServerMessageSchema, ClientMessageSchema, IngestMessageSchema, IngestReplySchema].some((z) => z.safeParse(v).success);

describe('clients/protocol.schema.json', () => {
  it('is what clients/build-schema.ts makes from the zod schemas (stale: run `npm run build` or `npx tsx clients/build-schema.ts`)', () => {
    // Compared as data, not bytes, so a formatter may lay the file out as it likes.
    expect(committed).toEqual(protocolJsonSchema());
    expect(committed['x-protocol-version']).toBe(PROTOCOL_VERSION);
  });

  it('accepts the messages zod accepts', () => {
    for (const m of samples) {
      expect(zodAccepts(m)).toBe(true);
      expect(valid(m), JSON.stringify(m)).toBeNull();
    }
  });

  it('rejects what zod rejects: out-of-range values, missing fields, unknown types, bad stream ids', () => {
    const bad: unknown[] = [
      { ...affect, valence: 1.5 },
      { ...affect, confidence: -0.1 },
      { ...affect, seq: -1 },
      { ...affect, seq: 1.5 },
      (({ seq: _s, ...rest }) => rest)(affect),
      { type: 'nonsense' },
      { type: 'subscribe', streamIds: [] },
      { type: 'start', streamId: 'has space', encoding: 's16le', sampleRateHz: 16000, channels: 1 },
      // A resumeFrom object cannot carry the key __proto__, so such a stream could never resume.
      { type: 'start', streamId: '__proto__', encoding: 's16le', sampleRateHz: 16000, channels: 1 },
      { type: 'start', streamId: 'x', encoding: 'opus', sampleRateHz: 16000, channels: 1 },
      { type: 'stopped', streamId: 'x', framesAccepted: -1, framesRejected: 0 },
    ];
    for (const m of bad) {
      expect(zodAccepts(m), JSON.stringify(m)).toBe(false);
      expect(valid(m), JSON.stringify(m)).not.toBeNull();
    }
  });

  it('lets clients ignore fields a later minor version adds', () => {
    expect(valid({ ...affect, someFutureField: 1 })).toBeNull();
  });
});
