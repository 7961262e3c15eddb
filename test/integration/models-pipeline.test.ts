/**
 * The models' "done" check: the full pipeline (streams/pipeline.ts through src/engine.ts) runs the
 * real fixture speech model, the real transformers.js text model and the learned ONNX fusion on CPU
 * for 8 concurrent streams, with cross-stream batching on. The only stand-in is the speech
 * recogniser: a scripted one that "hears" a fixed sentence per stream (libvosk has its own suite,
 * test/**\/asr-*), so text estimates exist without a Vosk model.
 */
import { afterAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { lastValueFrom, merge, toArray } from 'rxjs';
import { pino } from 'pino';
import { createEngine, type Engine } from '../../src/engine.js';
import { loadTextModel } from '../../models/registry.js';
import type { RecognizerResult, SpeechRecognizerFactory, StreamRecognizer, TextAffectModel } from '../../models/ports.js';
import type { OnnxSpeechModel } from '../../models/speech-onnx.js';
import { createTextPath } from '../../streams/text-path.js';
import { FlowControl } from '../../streams/flow.js';
import { wavFileSource } from '../../streams/sources/wav-file.js';
import type { AffectPoint, PipelineEvent } from '../../core/types.js';

const WAV = path.resolve('test/fixtures/audio/speech.wav');
const SENTENCES = [
  'I am so happy today',
  'this is terrible and I hate it',
  'I feel calm and relaxed',
  'I am scared and nervous',
  'thanks that is wonderful',
  'I am sad and tired',
  'wow that is amazing',
  'the weather report for tomorrow',
];

/** A recogniser that finalises its stream's sentence once 1.5 s of audio have been heard. */
function scriptedAsr(): SpeechRecognizerFactory {
  return {
    id: 'scripted-asr',
    provider: 'script',
    close: () => Promise.resolve(),
    create(streamId: string): Promise<StreamRecognizer> {
      const sentence = SENTENCES[Number(streamId.replace('s', '')) % SENTENCES.length] ?? '';
      let heard = 0;
      let said = false;
      const empty: RecognizerResult = { text: '', final: false, words: [] };
      return Promise.resolve({
        accept(samples: Float32Array): Promise<RecognizerResult> {
          heard += samples.length;
          if (said || heard < 24_000) return Promise.resolve(empty);
          said = true;
          const words = sentence.split(' ').map((word, i) => ({ word, startMs: 200 + i * 200, endMs: 380 + i * 200, conf: 1 }));
          return Promise.resolve({ text: sentence, final: true, words });
        },
        finish: () => Promise.resolve(empty),
        close: () => Promise.resolve(),
      });
    },
  };
}

let engine: Engine | undefined;
let text: TextAffectModel | undefined;
afterAll(async () => {
  await engine?.close();
  await text?.close();
});

describe('full pipeline with the fixture models, 8 concurrent streams on CPU', () => {
  it('speech + text + learned fusion produce finite, two-modality affect points for every stream, batched across streams', async () => {
    const logger = pino({ level: 'silent' });
    text = await loadTextModel('text-embed-fixture', { device: 'cpu', logger });
    const perStream = createTextPath(scriptedAsr(), text, { logger });
    engine = await createEngine({ device: 'cpu', speechModel: 'speech-fixture', fusion: 'fusion-fixture', textPathFor: (id) => perStream(id), logger });
    const e = engine;
    const streams = Array.from({ length: 8 }, (_, k) => `s${k}`);
    const runs = streams.map((id) => {
      const flow = new FlowControl({ highWater: 4 });
      return wavFileSource(WAV, { streamId: id, flow }).pipe(e.pipeline(id, { whenBusy: 'queue', flow }));
    });
    const events: PipelineEvent[] = await lastValueFrom(merge(...runs).pipe(toArray()));
    const points = events.filter((ev): ev is Extract<PipelineEvent, { kind: 'affect' }> => ev.kind === 'affect').map((ev) => ev.point);
    for (const id of streams) {
      const mine: AffectPoint[] = points.filter((p) => p.streamId === id);
      // 19 s of audio, 1 s windows every 250 ms
      expect(mine.length, id).toBeGreaterThan(60);
      for (const p of mine) {
        for (const v of [p.valence, p.arousal, p.confidence, p.intensity]) expect(Number.isFinite(v)).toBe(true);
        expect(Math.abs(p.valence)).toBeLessThanOrEqual(1);
      }
      expect(
        mine.some((p) => p.modalities.includes('speech') && p.modalities.includes('text')),
        id,
      ).toBe(true);
    }
    const stats = (e.speech as OnnxSpeechModel).batcher.stats;
    expect(stats.maxBatchSeen).toBeGreaterThan(1); // windows from several streams shared a batch
    expect(stats.batches).toBeLessThan(stats.batchedItems);
  });
});
