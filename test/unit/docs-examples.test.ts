/**
 * The wire messages the docs show are what the protocol's zod schemas accept, field for field: a
 * documented field the schema does not know (zod would drop it, and so would every client parsing
 * with `circumplex/protocol`), a renamed one or a value out of range fails here. Covers every ```json
 * block of README.md and docs/*.md that holds protocol messages, and the `/v1/ingest` exchange of
 * docs/server.md (its `→`/`←` lines, with the placeholders `…` and `"a"|"b"` filled in).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ClientMessageSchema, IngestMessageSchema, IngestReplySchema, ServerMessageSchema } from '../../core/protocol.js';
import { ServerMetrics } from '../../src/server/metrics.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const DOCS = ['README.md', ...readdirSync(path.join(REPO, 'docs')).map((f) => path.join('docs', f))].filter((f) => f.endsWith('.md'));

interface Example {
  where: string;
  text: string;
  /** Schemas that may describe it (by direction), first match wins. */
  schemas: readonly (readonly [string, z.ZodType])[];
}

const ANY_DIRECTION = [
  ['server message', ServerMessageSchema],
  ['client message', ClientMessageSchema],
  ['ingest message', IngestMessageSchema],
  ['ingest reply', IngestReplySchema],
] as const;
const TO_SERVER = [
  ['client message', ClientMessageSchema],
  ['ingest message', IngestMessageSchema],
] as const;
const FROM_SERVER = [
  ['server message', ServerMessageSchema],
  ['ingest reply', IngestReplySchema],
] as const;

/** Line number (1-based) of a character offset. */
const lineOf = (text: string, offset: number) => text.slice(0, offset).split('\n').length;

/** Protocol messages in the docs: one JSON object per line of a json block (a message may wrap onto indented lines). */
function examples(): Example[] {
  const out: Example[] = [];
  for (const file of DOCS) {
    const text = readFileSync(path.join(REPO, file), 'utf8');
    for (const m of text.matchAll(/```(\w*)\n([\s\S]*?)```/g)) {
      const [, lang, body = ''] = m;
      const at = lineOf(text, m.index) + 1;
      if (lang === 'json') {
        // Messages start at column 0 with {"type"; continuation lines are indented.
        const starts = [...body.matchAll(/^\{"type"/gm)];
        starts.forEach((s, i) => {
          const chunk = body.slice(s.index, starts[i + 1]?.index ?? body.length);
          out.push({ where: `${file}:${at + lineOf(body, s.index) - 1}`, text: chunk, schemas: ANY_DIRECTION });
        });
      } else {
        // The ingest exchange: → lines go to the server, ← lines come from it.
        body.split('\n').forEach((line, i) => {
          const arrow = /^([→←])\s*(\{.*\})\s*$/.exec(line);
          if (!arrow) return;
          const filled = (arrow[2] ?? '').replace(/:(\s*)…/g, ':$10').replace(/("[^"]*")(\|"[^"]*")+/g, '$1');
          out.push({ where: `${file}:${at + i}`, text: filled, schemas: arrow[1] === '→' ? TO_SERVER : FROM_SERVER });
        });
      }
    }
  }
  return out;
}

const found = examples();

describe('protocol messages shown in the docs', () => {
  it('are found (the docs show affect, status, turn, alert and the ingest exchange)', () => {
    const types = found.map((e) => (JSON.parse(e.text) as { type: string }).type);
    for (const t of ['affect', 'status', 'turn', 'alert', 'start', 'started', 'stop', 'stopped']) expect(types).toContain(t);
  });

  it.each(found.map((e) => [e.where, e] as const))('%s parses, and no field of it is unknown to the schema', (_where, e) => {
    const value: unknown = JSON.parse(e.text);
    const matches = e.schemas.map(([name, schema]) => [name, schema.safeParse(value)] as const).filter(([, r]) => r.success);
    expect(
      matches.map(([name]) => name),
      `${e.where}: ${e.text}`,
    ).not.toEqual([]);
    const [, parsed] = matches[0] ?? [];
    // zod drops keys it does not know: the parsed message must be the documented one, whole.
    expect(parsed?.data, `${e.where}: a documented field is not in the schema`).toEqual(value);
  });
});

/** Source files whose strings and comments send users to a section of the docs. */
function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name) && !e.parentPath.includes('node_modules'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('references to a section of the docs (README "Configuration", docs/asr.md "Installing libvosk")', () => {
  const refs: { where: string; doc: string; section: string }[] = [];
  for (const file of ['src', 'core', 'streams', 'models', 'clients', 'bin'].flatMap(sourceFiles)) {
    const text = readFileSync(file, 'utf8');
    // A comment may wrap the section's name onto its next line.
    for (const m of text.matchAll(/\b(README|docs\/[\w-]+\.md),? "([^"]{1,80})"/g)) {
      refs.push({
        where: `${path.relative(REPO, file)}:${lineOf(text, m.index)}`,
        doc: m[1] === 'README' ? 'README.md' : (m[1] ?? ''),
        section: (m[2] ?? '').replace(/\s*\n\s*(\*|\/\/)?\s*/g, ' '),
      });
    }
  }

  it('are found', () => {
    expect(refs.map((r) => r.doc)).toContain('README.md');
  });

  it.each(refs.map((r) => [`${r.where} → ${r.doc} "${r.section}"`, r] as const))('%s: that section exists', (_name, r) => {
    const lines = readFileSync(path.join(REPO, r.doc), 'utf8').split('\n');
    // A heading, or a bold run-in heading (**Overload** …), holding the quoted words.
    const found = lines.some((l) => (l.startsWith('#') || l.includes('**')) && l.includes(r.section));
    expect(found, `${r.where} points to ${r.doc} "${r.section}", which has no such heading`).toBe(true);
  });
});

describe('metrics in the docs (docs/server.md, docs/deploy.md, docs/asr.md)', () => {
  const docs = ['docs/server.md', 'docs/deploy.md', 'docs/asr.md'].map((f) => readFileSync(path.join(REPO, f), 'utf8')).join('\n');
  const documented = new Set([...docs.matchAll(/`(circumplex_[a-z0-9_]+)/g)].map((m) => m[1] ?? ''));

  it('are the ones /metrics exposes, both ways', async () => {
    const exposed = (await new ServerMetrics().registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('circumplex_'));
    expect(exposed.length).toBeGreaterThan(10);
    expect(exposed.filter((n) => !documented.has(n))).toEqual([]);
    expect([...documented].filter((n) => !exposed.includes(n))).toEqual([]);
  });
});
