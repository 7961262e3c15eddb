/**
 * Prints the `encoders` section of a bench report as the markdown tables docs/bench.md shows.
 *
 *   npx tsx bench/encoders-table.ts bench/results/latest.json
 */
import { readFileSync } from 'node:fs';
import type { BenchReport } from './run-bench.js';
import type { EncoderRow } from './sections/encoders.js';

const f = (v: number | null | undefined, d = 2): string => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(d));

/** The tables, as markdown lines. */
export function encodersMarkdown(r: BenchReport): string[] {
  const s = r.sections.encoders;
  if (!s) return ['(no encoders section in this report)'];
  const rows = s.rows.filter((x): x is EncoderRow => !('skipped' in x));
  const L: string[] = [];
  L.push(
    '| model | params | session MiB | 1 s window, batch 1 | windows/s at batch 1 · 2 · 4 · 8 · 16 · 32 | one pass, ms per audio s | full-window RTF (1 stream) | streams / core | streams, 1 at a time | streams, 32 batched |',
  );
  L.push('| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const x of rows) {
    L.push(
      `| ${x.name} (\`${x.specId}\`) | ${x.parameters ? `${(x.parameters / 1e6).toFixed(1)} M` : '—'} | ${f(x.sessionMiB.value, 0)} | ${f(x.latencyMsBatch1.value, 1)} ms [${f(x.latencyMsBatch1.loadAvg1, 1)}] | ${x.throughput.map((p) => f(p.windowsPerSec, p.windowsPerSec > 100 ? 0 : 1)).join(' · ')} | ${x.onePassMsPerAudioSecond ? `${f(x.onePassMsPerAudioSecond.value, 0)} [${f(x.onePassMsPerAudioSecond.loadAvg1, 1)}]` : '—'} | ${f(x.fullWindow.rtf, 3)} [${f(x.fullWindow.loadAvg1, 1)}] | ${f(x.fullWindow.streamsPerCore, 1)} | ${f(x.fullWindow.streamsThisMachine, 1)} | ${x.concurrent ? `${f(x.concurrent.fullWindow.realtimeStreams, 1)} [${f(x.concurrent.fullWindow.loadAvg1, 1)}]` : '—'} |`,
    );
  }
  L.push('');
  L.push(
    '| model, path | redundancy (MACs) | redundancy (time, 1 stream) | redundancy (time, 32 streams) | RTF (1 stream) | streams / core | streams, 32 batched | max \\|Δ\\| vs full window | output sd | min cos (hidden) | load |',
  );
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const x of rows) {
    if (!x.streaming.some((st) => !('skipped' in st))) continue;
    const fw = x.fullWindow;
    L.push(
      `| ${x.name}, full window | ${f(fw.redundancyMacs)} | ${f(fw.redundancyTime)} | ${x.concurrent ? f(x.concurrent.fullWindow.redundancyTime) : '—'} | ${f(fw.rtf, 3)} | ${f(fw.streamsPerCore, 1)} | ${x.concurrent ? f(x.concurrent.fullWindow.realtimeStreams, 1) : '—'} | 0 | — | 1 | ${f(fw.loadAvg1, 1)} |`,
    );
    for (const st of x.streaming) {
      if ('skipped' in st) continue;
      const r2 = st;
      const concMode = x.concurrent?.streamingMode ?? 'chunked';
      const isConc = concMode === 'cached' ? r2.mode === 'cached' && !r2.recomputeFrames : r2.mode === 'chunked' && r2.leftContextFrames === 6;
      const conc = x.concurrent && !('skipped' in x.concurrent.streaming) && isConc ? x.concurrent.streaming : undefined;
      L.push(
        `| ${x.name}, ${r2.mode}${r2.mode === 'chunked' ? ` (${r2.leftContextFrames} frames left context)` : ''}${r2.recomputeFrames ? ` (${r2.recomputeFrames} frames recomputed per hop)` : ''} | ${f(r2.redundancyMacs)} | ${f(r2.redundancyTime)} | ${conc ? f(conc.redundancyTime) : '—'} | ${f(r2.rtf, 3)} | ${f(r2.streamsPerCore, 1)} | ${conc ? f(conc.realtimeStreams, 1) : '—'} | ${f(r2.maxAbsDiff, 3)} | ${f(r2.outputSd, 3)} | ${f(r2.minEmbeddingCosine, 4)} | ${f(r2.loadAvg1, 1)} |`,
      );
    }
  }
  const q = rows.filter((x) => x.int8 && !('skipped' in x.int8));
  if (q.length) {
    L.push('');
    L.push(
      '| int8 variant | session MiB | 1 s window, batch 1 | speed-up vs fp32 | full-window RTF | chunked streaming RTF | max \\|Δ\\| vs fp32 | output sd | min cos (hidden) | load |',
    );
    L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const x of q) {
      const i = x.int8 as Exclude<EncoderRow['int8'], { skipped: string } | undefined>;
      L.push(
        `| ${x.name} int8 | ${f(i.sessionMiB, 0)} | ${f(i.latencyMsBatch1.value, 1)} ms | ×${f(i.speedupBatch1)} | ${f(i.fullWindow.rtf, 3)} | ${'skipped' in i.streamingChunked ? '—' : f(i.streamingChunked.rtf, 3)} | ${f(i.maxAbsDiff, 3)} | ${f(i.outputSd, 3)} | ${f(i.minEmbeddingCosine, 4)} | ${f(i.latencyMsBatch1.loadAvg1, 1)} |`,
      );
    }
  }
  for (const x of rows)
    if (x.framesExactness && !('skipped' in x.framesExactness))
      L.push(
        '',
        `Frames-mode exactness, ${x.name} (input normalisation off, ${x.framesExactness.windows} windows): max |Δ| ${x.framesExactness.maxAbsDiff.toExponential(1)} (affect), ${x.framesExactness.maxEmbeddingAbsDiff.toExponential(1)} (hidden state).`,
      );
  for (const x of s.rows) if ('skipped' in x) L.push('', `${x.name}: skipped — ${x.skipped}`);
  if (s.cuda) L.push('', `CUDA: ${s.cuda.skipped}`);
  return L;
}

const entry = process.argv[1] ?? '';
if (entry.endsWith('encoders-table.ts') || entry.endsWith('encoders-table.js')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: npx tsx bench/encoders-table.ts <bench report .json>\n');
    process.exit(1);
  }
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
  process.stdout.write(
    `${r.createdAt} · ${r.machine.cpuModel}, ${r.machine.logicalCores} cores · ${r.wallSeconds} s\n\n` + encodersMarkdown(r).join('\n') + '\n',
  );
}
