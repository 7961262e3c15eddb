/**
 * The TypeScript samples of README.md and docs/*.md that import the package by name (`circumplex`,
 * `circumplex/client`, …) type-check, as a user who copies one into a project gets it: each sample is
 * its own ES module, compiled by tsc with strict settings, the package names resolved to the sources
 * that package.json "exports" compiles them from (the Node build of `circumplex/client`). A sample
 * that uses a name the package does not export, a wrong option or signature, or pseudo-code fails.
 * Samples that import checkout paths (`./models/registry.js`) are internal and not checked here.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '..', '..');
const DOCS = ['README.md', ...readdirSync(path.join(REPO, 'docs')).map((f) => path.join('docs', f))].filter((f) => f.endsWith('.md'));

interface Sample {
  where: string;
  code: string;
}

/** ```ts blocks whose imports are all package names. */
function samples(): Sample[] {
  const out: Sample[] = [];
  for (const file of DOCS) {
    const text = readFileSync(path.join(REPO, file), 'utf8');
    for (const m of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
      const code = m[1] ?? '';
      const specifiers = [...code.matchAll(/^import .* from '([^']+)'/gm)].map((i) => i[1] ?? '');
      if (specifiers.length === 0 || !specifiers.every((s) => s === 'circumplex' || s.startsWith('circumplex/'))) continue;
      out.push({ where: `${file}:${text.slice(0, m.index).split('\n').length}`, code });
    }
  }
  return out;
}

type ExportTarget = string | { [condition: string]: ExportTarget };

/** The source file a package.json export compiles from: the `node` condition's (else default) dist .js → the .ts beside src. */
function sourceOf(target: ExportTarget): string {
  if (typeof target === 'string') return path.join(REPO, target.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts'));
  const next = target.node ?? target.default;
  if (next === undefined) throw new Error(`export without a node/default condition: ${JSON.stringify(target)}`);
  return sourceOf(next);
}

const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { exports: Record<string, ExportTarget> };
const paths: Record<string, string[]> = {};
for (const [sub, target] of Object.entries(pkg.exports)) {
  if (sub.endsWith('.json')) continue;
  paths[sub === '.' ? 'circumplex' : `circumplex/${sub.slice(2)}`] = [sourceOf(target)];
}

const dir = mkdtempSync(path.join(tmpdir(), 'circumplex-doc-samples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TypeScript samples in the docs', () => {
  const found = samples();

  it('are found: the server, client and socket.io bridge samples', () => {
    const all = found.map((s) => s.code).join('\n');
    for (const name of ['AffectServer', 'CircumplexClient', 'SocketIoBridge']) expect(all).toContain(name);
  });

  it('type-check against the package entry points (tsc, strict)', async () => {
    const files = found.map((s, i) => {
      const name = `sample-${i}.ts`;
      writeFileSync(path.join(dir, name), `// ${s.where}\n${s.code}\nexport {};\n`);
      return name;
    });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'node16',
          moduleResolution: 'node16',
          lib: ['ES2023', 'DOM'],
          strict: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          types: ['node'],
          typeRoots: [path.join(REPO, 'node_modules', '@types')],
          baseUrl: '.',
          paths,
        },
        files,
      }),
    );
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: stdout + stderr });
      });
    });
    // Name the doc line of each error (the first line of every sample file says where it came from).
    const report = result.out.replace(
      /sample-(\d+)\.ts\((\d+),(\d+)\)/g,
      (_m, i: string, line: string, col: string) => `${found[Number(i)]?.where ?? '?'} (sample line ${Number(line) - 1}, column ${col})`,
    );
    expect(report).toBe('');
    expect(result.code).toBe(0);
  });
});
