/** Messages between the main thread and the transformers.js text worker. */

/** What the text worker is started with. */
export interface TextWorkerData {
  readonly modelId: string;
  /**
   * `classifier`: logits per label; `embed`: mean-pooled, L2-normalised sentence embeddings;
   * `regression`: the model's `vad` [batch, 3] (valence, arousal, dominance) followed by its `known`
   * [batch, 1] (fraction of words in the vocabulary) when it has one, as rows of width 4.
   */
  readonly kind: 'classifier' | 'embed' | 'regression';
  readonly localModelPath: string;
  readonly cacheDir: string;
  /** transformers.js devices to try in order (`cuda`, `webgpu`, `cpu`). */
  readonly devices: readonly string[];
  /** Longest tokenised text (tokens); longer texts are truncated. */
  readonly maxTokens: number;
}

/** Main → worker. */
export type ToTextWorker = { readonly type: 'run'; readonly id: number; readonly texts: readonly string[] } | { readonly type: 'close' };

/** Worker → main. */
export type FromTextWorker =
  | {
      readonly type: 'ready';
      readonly device: string;
      readonly inputNames: readonly string[];
      readonly outputNames: readonly string[];
      /** Classifier label names in logit order (config.json id2label). */
      readonly labels: readonly string[];
      /** config.json problem_type: multi-label classifiers use sigmoid, others softmax. */
      readonly multiLabel: boolean;
      readonly failed: ReadonlyArray<{ readonly device: string; readonly error: string }>;
    }
  | { readonly type: 'load-error'; readonly message: string; readonly failed: ReadonlyArray<{ readonly device: string; readonly error: string }> }
  /** `data` is [batch, width] row-major: logits (classifier), embeddings (embed) or vad + known (regression). */
  | { readonly type: 'result'; readonly id: number; readonly data: Float32Array; readonly width: number }
  | { readonly type: 'run-error'; readonly id: number; readonly message: string }
  | { readonly type: 'closed' };
