/**
 * Worker-side session creation shared by the ONNX workers (ort-worker, step-worker, vad-worker).
 */
import ort from 'onnxruntime-node';

/** A provider that failed to create the session, with ORT's message. */
export interface ProviderFailure {
  provider: string;
  error: string;
}

/**
 * Creates the session on the first of `providers` that works, trying them one at a time: ORT
 * silently falls back inside one create() call, and we must know (and log) which provider a model
 * actually runs on. `session` is undefined when every provider failed (`failed` says why).
 */
export async function createOnFirstProvider(
  modelPath: string,
  providers: readonly string[],
  intraOpThreads: number,
): Promise<{ session: ort.InferenceSession | undefined; provider: string; failed: ProviderFailure[] }> {
  const failed: ProviderFailure[] = [];
  for (const p of providers) {
    try {
      const session = await ort.InferenceSession.create(modelPath, {
        executionProviders: [p],
        graphOptimizationLevel: 'all',
        ...(intraOpThreads > 0 ? { intraOpNumThreads: intraOpThreads } : {}),
      });
      return { session, provider: p, failed };
    } catch (err) {
      failed.push({ provider: p, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return { session: undefined, provider: '', failed };
}
