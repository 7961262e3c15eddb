/** Options shared by every model loader in models/registry.ts. */
import type { Logger } from '../core/log.js';
import type { Device } from './ports.js';
import type { IntraOpThreads } from './threads.js';

/** How to load a model. */
export interface LoadModelOptions {
  /** Where to run: `auto` (default) tries cuda → webgpu → cpu and logs what it got. */
  device?: Device;
  /** Folder of downloaded models (default: CIRCUMPLEX_MODELS_DIR or models/weights/). */
  modelsDir?: string;
  /** Largest cross-stream batch. Default 16 (the ONNX speech model: 32, `DEFAULT_SPEECH_BATCHER`). */
  maxBatch?: number;
  /** Longest a window waits for a batch to fill, ms. Default 10. */
  maxWaitMs?: number;
  /** Most windows waiting per model before new ones are rejected (dropped). Default 4 × maxBatch (the ONNX speech model without an explicit maxBatch: 512). */
  maxQueue?: number;
  /**
   * ORT intra-op threads per session (models/threads.ts): a count, 0 for ORT's own default, or
   * 'auto' (default): 1 for small models, every core (≤ 8) for real-size encoders.
   */
  intraOpThreads?: IntraOpThreads;
  /** Logger for the one line per model saying which provider it runs on. */
  logger?: Logger;
}
