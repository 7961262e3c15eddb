/**
 * Tolerance table of the `cached` streaming mode (issue 14): work vs deviation from the full-window
 * path for several `recomputeFrames` settings, one stream, consecutive windows at one hop.
 *
 *   npx tsx bench/encoders-tolerance.ts                       # large stand-in, 250 ms hop, the manifest's normalisation
 *   npx tsx bench/encoders-tolerance.ts --hop 3840 --recompute 0,13,50 --windows 13 --norm none
 *   npx tsx bench/encoders-tolerance.ts --models-dir /tmp/e14tiny --id tiny-wav2vec2   # any export with streaming/step.onnx
 *   npx tsx bench/encoders-tolerance.ts --models-dir models/weights/trained-tiny --id small-wav2vec2-va \
 *     --audio models/weights/trained-tiny/small-wav2vec2-va/heldout.wav --keys arousal,valence --windows 40
 *
 * `--audio` (default test/fixtures/audio/speech.wav) is any 16 kHz WAV holding at least the windows;
 * `--keys` the outputs measured (default valence,arousal,dominance; a model trained without
 * dominance labels: arousal,valence). Per-key max/mean |Δ| and sd are in the JSON report.
 * `--labels` (JSON `{ segments: [{ start, end, arousal?, valence?, dominance? }] }`, sample spans of
 * the audio with human targets on [-1, 1], e.g. train_tiny's heldout.json) adds each path's RMSE
 * against the targets (a window takes the target of the segment holding its middle sample), so a
 * deviation can be read against the model's own error.
 *
 * `--windows 0`: every window the audio holds. `--cached-head off,on` (default off): rows with the model's
 * head and with its cached head (`streaming/cached-head.onnx`, models/cached-head.ts; `on` needs one fitted
 * for this hop and recompute value). `--dump FILE` (one `--recompute` value, `--cached-head off`): JSONL of
 * each window's full-window and streamed pooled states after a header line with the model, hop, recompute
 * value and normalisation: the pairs training/encoders/calibrate_cached_head.py fits the cached head on
 * (with `--spans K`, default 4: each streamed window's K span means, the head's second input).
 *
 * `--smoothing one-euro,kalman-cv` (default none): each row also compares the two paths after the named
 * trajectory filters (streams/smoothing.ts, default options: what a subscriber gets), valence and arousal
 * only: mean/max |Δ| between the smoothed streamed and smoothed full-window outputs over the smoothed
 * full-window sd, and the smoothed RMSE against `--labels`. Each window is a point at its end time with the
 * model's confidence, as in the pipeline (no voice activity: every window moves the point).
 *
 * Deviation is over the windows after the first (the first is computed whole, exactly); `output sd`
 * is the full-window outputs' spread over the same windows (the scale a deviation should be read
 * against). Work is transformer frames per frame of new audio (1 = each frame once).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../core/config.js';
import { MODEL_SPECS, type ModelSpec } from '../models/manifest.js';
import { OnnxSpeechModel } from '../models/speech-onnx.js';
import { parseCachedHead } from '../models/cached-head.js';
import { StreamingSpeechModel } from '../models/streaming-speech.js';
import { createFilter, type SmoothingFilter } from '../streams/smoothing.js';
import type { SpeechAffectOutput } from '../models/ports.js';
import { loadSamples, round, SPEECH_WAV } from './lib/common.js';

function opt(argv: string[], name: string, def: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : def;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const id = opt(argv, '--id', 'wav2vec2-msp-dim');
  const modelsDir = opt(argv, '--models-dir', path.join(REPO_ROOT, 'models', 'weights', 'standins'));
  const hop = Number(opt(argv, '--hop', '4000'));
  const windowsOpt = Number(opt(argv, '--windows', '13'));
  const norm = opt(argv, '--norm', 'manifest');
  const rs = opt(argv, '--recompute', '0,6,13,25,50').split(',').map(Number);
  const audioFile = opt(argv, '--audio', SPEECH_WAV);
  const allKeys = ['valence', 'arousal', 'dominance'] as const;
  type Key = (typeof allKeys)[number];
  const keys = opt(argv, '--keys', allKeys.join(','))
    .split(',')
    .map((k) => k.trim()) as Key[];
  const badKey = keys.find((k) => !allKeys.includes(k));
  if (badKey !== undefined || keys.length === 0) {
    throw new Error(`--keys: unknown output ${JSON.stringify(badKey ?? '')}; use a comma-separated subset of ${allKeys.join(',')}`);
  }
  const labelsFile = opt(argv, '--labels', '');
  const perWindowFile = opt(argv, '--per-window', '');
  const dumpFile = opt(argv, '--dump', '');
  const spans = Number(opt(argv, '--spans', '4'));
  const cachedHeads = opt(argv, '--cached-head', 'off')
    .split(',')
    .map((h) => parseCachedHead(h));
  const restartAtSegments = argv.includes('--restart-at-segments');
  const smoothings = opt(argv, '--smoothing', '')
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean) as SmoothingFilter[];
  for (const f of smoothings) createFilter({ filter: f }); // a RangeError naming the filter, before any work
  if (dumpFile && (rs.length !== 1 || cachedHeads.length !== 1 || cachedHeads[0] !== 'off'))
    throw new Error('--dump writes the pooled-state pairs of one setting: give one --recompute value and --cached-head off');
  if (restartAtSegments && !labelsFile) throw new Error('--restart-at-segments needs --labels (the segments whose starts restart the stream)');
  const specs = MODEL_SPECS as Record<string, ModelSpec | undefined>;
  const base = (specs[id] ?? specs['wav2vec2-msp-dim']) as ModelSpec;
  const spec: ModelSpec = {
    ...base,
    id,
    ...(norm === 'manifest' ? {} : { inputNormalization: norm as ModelSpec['inputNormalization'] }),
  };
  const audio = await loadSamples(audioFile);
  // --windows 0: every window the audio holds
  const count = windowsOpt === 0 ? Math.max(0, Math.floor((audio.length - 16_000) / hop) + 1) : windowsOpt;
  if (audio.length < (count - 1) * hop + 16_000) {
    throw new Error(
      `--audio ${audioFile}: ${audio.length} samples hold fewer than --windows ${count} windows at --hop ${hop} (need ${(count - 1) * hop + 16_000}); use fewer windows or a longer file`,
    );
  }
  const windows = Array.from({ length: count }, (_, k) => audio.slice(k * hop, k * hop + 16_000));
  // human targets per window (middle sample's segment), or none
  let targets: (Partial<Record<Key, number>> | undefined)[] = [];
  type Seg = { start: number; end: number } & Partial<Record<Key, number>>;
  let segs: Seg[] = [];
  if (labelsFile) {
    try {
      segs = (JSON.parse(readFileSync(labelsFile, 'utf8')) as { segments: Seg[] }).segments;
      if (!Array.isArray(segs)) throw new Error('no "segments" array');
    } catch (e) {
      throw new Error(
        `--labels ${labelsFile}: ${(e as Error).message}; expected JSON { segments: [{ start, end, arousal, valence }] } (sample spans of --audio)`,
        { cause: e },
      );
    }
    targets = windows.map((_, k) => segs.find((g) => g.start <= k * hop + 8000 && k * hop + 8000 < g.end));
  }
  const labelRmse = (outs: SpeechAffectOutput[]): Partial<Record<Key, number>> =>
    Object.fromEntries(
      keys.flatMap((key) => {
        const pairs = outs.flatMap((o, k) => {
          const t = targets[k]?.[key];
          return k > 0 && t !== undefined ? [[o[key] ?? 0, t] as const] : [];
        });
        return pairs.length ? [[key, round(Math.sqrt(pairs.reduce((a, [p, t]) => a + (p - t) ** 2, 0) / pairs.length), 4)]] : [];
      }),
    );
  // --smoothing: each path's outputs through a trajectory filter, a point per window at its end time
  const vaKeys = (['valence', 'arousal'] as const).filter((k) => keys.includes(k));
  const smooth = (outs: SpeechAffectOutput[], filter: SmoothingFilter): SpeechAffectOutput[] => {
    const f = createFilter({ filter });
    return outs.map((o, k) => {
      const e = f.update({ tMs: ((k * hop + 16_000) / 16_000) * 1000, valence: o.valence, arousal: o.arousal, confidence: o.confidence });
      return { ...o, valence: e.valence, arousal: e.arousal };
    });
  };
  const full = await OnnxSpeechModel.load(spec, { modelsDir, device: 'cpu' });
  const ref: SpeechAffectOutput[] = [];
  try {
    for (const w of windows) ref.push(await full.infer(w));
  } finally {
    await full.close();
  }
  const sdOf = (vals: number[]): number => {
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    return Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length);
  };
  const sd = sdOf(ref.slice(1).flatMap((o) => keys.map((k) => o[k] ?? 0)));
  const sdPerKey = Object.fromEntries(keys.map((k) => [k, round(sdOf(ref.slice(1).map((o) => o[k] ?? 0)), 4)]));
  // Where each window sits against the segments: the segment holding its last sample, and how many samples of it
  // the stream had seen by then (a cached frame carries context from up to one window before the frame).
  const segAt = (x: number): number => segs.findIndex((g) => g.start <= x && x < g.end);
  const lastSample = (k: number): number => k * hop + 16_000 - 1;
  const position = windows.map((_, k) => {
    const end = lastSample(k);
    const i = segAt(end);
    return { segment: i, samplesIntoSegment: i >= 0 ? end + 1 - (segs[i] as Seg).start : null };
  });
  // --restart-at-segments: a fresh cache on the first window that holds a segment's start (an oracle for a cache
  // restart at each voiced onset: the window after a segment boundary is computed whole, exactly).
  const restartAt = new Set(
    restartAtSegments ? windows.flatMap((_, k) => (k > 0 && segs.some((g) => g.start > lastSample(k - 1) && g.start <= lastSample(k)) ? [k] : [])) : [],
  );
  const perWindow: Array<Record<string, unknown>> = [];
  const dump: string[] = [];
  const rows = [];
  for (const [R, head] of rs.flatMap((r) => cachedHeads.map((h) => [r, h] as const))) {
    const sm = await StreamingSpeechModel.load(spec, {
      modelsDir,
      device: 'cpu',
      streaming: { mode: 'cached', recomputeFrames: R, hopSamples: hop, cachedHead: head, returnSpanMeans: dumpFile ? spans : 0 },
    });
    try {
      let s = sm.forStream('tolerance');
      let restarts = 0;
      let mx = 0;
      let sum = 0;
      let n = 0;
      let minCos = 1;
      // the pooled state (the embedding the fusion reads): mean cosine and mean |Δ| / |full|
      let cosSum = 0;
      let relSum = 0;
      let embN = 0;
      const perKey = Object.fromEntries(keys.map((k) => [k, { max: 0, sum: 0 }]));
      const outs: SpeechAffectOutput[] = [];
      for (let k = 0; k < windows.length; k++) {
        if (restartAt.has(k)) {
          s.close();
          s = sm.forStream(`tolerance-${k}`);
          restarts++;
        }
        const y = await s.infer(windows[k] as Float32Array);
        const x = ref[k] as SpeechAffectOutput;
        outs.push(y);
        if (dumpFile)
          dump.push(
            JSON.stringify({
              window: k,
              full: { embedding: Array.from(x.embedding ?? []), ...Object.fromEntries(keys.map((key) => [key, x[key] ?? 0])) },
              stream: {
                embedding: Array.from(y.embedding ?? []),
                spanMeans: Array.from(y.spanMeans ?? []),
                ...Object.fromEntries(keys.map((key) => [key, y[key] ?? 0])),
              },
            }),
          );
        if (k === 0) continue;
        const diffs = keys.map((key) => Math.abs((x[key] ?? 0) - (y[key] ?? 0)));
        if (perWindowFile)
          perWindow.push({
            recomputeFrames: R,
            window: k,
            ...position[k],
            restarted: restartAt.has(k),
            absDiff: Object.fromEntries(keys.map((key, i) => [key, round(diffs[i] as number, 5)])),
          });
        for (const [i, key] of keys.entries()) {
          const d = diffs[i] as number;
          mx = Math.max(mx, d);
          sum += d;
          n++;
          const pk = perKey[key] as { max: number; sum: number };
          pk.max = Math.max(pk.max, d);
          pk.sum += d;
        }
        const ea = x.embedding ?? [];
        const eb = y.embedding ?? [];
        let dot = 0;
        let na = 0;
        let nb = 0;
        let nd = 0;
        for (let i = 0; i < ea.length; i++) {
          dot += (ea[i] as number) * (eb[i] as number);
          na += (ea[i] as number) ** 2;
          nb += (eb[i] as number) ** 2;
          nd += ((ea[i] as number) - (eb[i] as number)) ** 2;
        }
        if (ea.length) {
          const cos = dot / Math.sqrt(na * nb);
          minCos = Math.min(minCos, cos);
          cosSum += cos;
          relSum += Math.sqrt(nd / na);
          embN++;
        }
      }
      // Frames of the stream's audio (the first window whole, then one hop per window): a restart re-advances a whole
      // window of audio already seen, so the model's advancedSamples would hide the restart's extra work.
      const frames = lastSample(windows.length - 1) / sm.info.frameStrideSamples;
      const smoothed = smoothings.map((filter) => {
        const a = smooth(ref, filter);
        const b = smooth(outs, filter);
        let mxS = 0;
        let sumS = 0;
        let nS = 0;
        let sdSum = 0;
        const perKeyS = Object.fromEntries(
          vaKeys.map((key) => {
            const sdK = sdOf(a.slice(1).map((o) => o[key]));
            let m = 0;
            let t = 0;
            for (let k = 1; k < a.length; k++) {
              const d = Math.abs((a[k] as SpeechAffectOutput)[key] - (b[k] as SpeechAffectOutput)[key]);
              m = Math.max(m, d);
              t += d;
            }
            mxS = Math.max(mxS, m);
            sumS += t;
            nS += a.length - 1;
            sdSum += sdK;
            const meanK = t / Math.max(1, a.length - 1);
            return [key, { sd: round(sdK, 4), maxAbsDiff: round(m, 4), meanAbsDiff: round(meanK, 4), meanOverSd: sdK > 0 ? round(meanK / sdK, 3) : null }];
          }),
        );
        const sdMean = sdSum / Math.max(1, vaKeys.length);
        return {
          filter,
          maxAbsDiff: round(mxS, 4),
          meanAbsDiff: round(sumS / Math.max(1, nS), 4),
          // over the mean of the two smoothed sds (each key's own ratio is in perKey)
          meanOverSd: sdMean > 0 ? round(sumS / Math.max(1, nS) / sdMean, 3) : null,
          maxOverSd: sdMean > 0 ? round(mxS / sdMean, 3) : null,
          perKey: perKeyS,
          ...(labelsFile ? { labelRmseFullWindow: labelRmse(a), labelRmse: labelRmse(b) } : {}),
        };
      });
      rows.push({
        recomputeFrames: R,
        cachedHead: sm.cachedHead ? 'fitted' : 'off',
        ...(restartAtSegments ? { restarts } : {}),
        work: round(sm.stats.encoderFrames / frames, 3),
        maxAbsDiff: round(mx, 4),
        meanAbsDiff: round(sum / Math.max(1, n), 4),
        maxOverSd: round(mx / sd, 3),
        meanOverSd: round(sum / Math.max(1, n) / sd, 3),
        minEmbeddingCosine: round(minCos, 5),
        meanEmbeddingCosine: embN ? round(cosSum / embN, 5) : null,
        meanEmbeddingRelativeError: embN ? round(relSum / embN, 5) : null,
        ...(labelsFile ? { labelRmse: labelRmse(outs) } : {}),
        ...(smoothings.length ? { smoothed } : {}),
        // the streamed outputs' own spread (a head that pulls towards the mean lowers an RMSE without tracking better)
        outputSdPerKey: Object.fromEntries(keys.map((k) => [k, round(sdOf(outs.slice(1).map((o) => o[k] ?? 0)), 4)])),
        perKey: Object.fromEntries(
          keys.map((k) => {
            const pk = perKey[k] as { max: number; sum: number };
            const sdK = sdPerKey[k] as number;
            const meanK = pk.sum / Math.max(1, windows.length - 1);
            return [
              k,
              {
                maxAbsDiff: round(pk.max, 4),
                meanAbsDiff: round(meanK, 4),
                maxOverSd: sdK > 0 ? round(pk.max / sdK, 3) : null,
                meanOverSd: sdK > 0 ? round(meanK / sdK, 3) : null,
              },
            ];
          }),
        ),
      });
      s.close();
    } finally {
      await sm.close();
    }
  }
  const report = {
    id,
    hopSamples: hop,
    windows: count,
    inputNormalization: spec.inputNormalization ?? 'none',
    audio: path.relative(REPO_ROOT, audioFile),
    keys,
    outputSd: round(sd, 4),
    ...(restartAtSegments ? { restartWindows: restartAt.size } : {}),
    outputSdPerKey: sdPerKey,
    ...(labelsFile
      ? { labels: path.relative(REPO_ROOT, labelsFile), labelledWindows: targets.slice(1).filter(Boolean).length, labelRmseFullWindow: labelRmse(ref) }
      : {}),
    rows,
    loadAvg1: round(os.loadavg()[0] ?? 0, 2),
  };
  if (dumpFile) {
    const header = {
      type: 'header',
      id,
      hopSamples: hop,
      recomputeFrames: rs[0],
      spans,
      inputNormalization: report.inputNormalization,
      audio: report.audio,
      windows: count,
    };
    writeFileSync(dumpFile, [JSON.stringify(header), ...dump].join('\n') + '\n');
  }
  if (perWindowFile) writeFileSync(perWindowFile, perWindow.map((w) => JSON.stringify(w)).join('\n') + '\n');
  process.stdout.write(JSON.stringify(report) + '\n');
  process.stderr.write(
    [
      `${id}, hop ${hop} samples, ${count} windows of ${report.audio}, outputs ${keys.join(',')}, input normalisation ${report.inputNormalization}, output sd ${report.outputSd} (${keys.map((k) => `${k} ${sdPerKey[k]}`).join(', ')})`,
      '| recomputed frames per hop | cached head | work (× one pass) | max |Δ| | mean |Δ| | max / sd | mean / sd | min cos (hidden) |',
      '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${r.recomputeFrames} | ${r.cachedHead} | ${r.work} | ${r.maxAbsDiff} | ${r.meanAbsDiff} | ${r.maxOverSd} | ${r.meanOverSd} | ${r.minEmbeddingCosine} |`,
      ),
      ...(labelsFile
        ? [
            `RMSE against ${report.labels}: full window ${JSON.stringify(report.labelRmseFullWindow)}; ` +
              rows.map((r) => `cached ${r.recomputeFrames}${r.cachedHead === 'off' ? '' : ' + cached head'} ${JSON.stringify(r.labelRmse)}`).join('; '),
          ]
        : []),
      ...rows.flatMap((r) =>
        (r.smoothed ?? []).map(
          (m) =>
            `smoothed (${m.filter}), cached ${r.recomputeFrames}${r.cachedHead === 'off' ? '' : ' + cached head'}: max |Δ| ${m.maxAbsDiff}, mean |Δ| ${m.meanAbsDiff}, mean / smoothed sd ${m.meanOverSd} ${JSON.stringify(m.perKey)}` +
            (m.labelRmse ? `; RMSE full ${JSON.stringify(m.labelRmseFullWindow)} cached ${JSON.stringify(m.labelRmse)}` : ''),
        ),
      ),
    ].join('\n') + '\n',
  );
}

await main();
