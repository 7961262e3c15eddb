/**
 * Worker-side session handling shared by the ONNX workers (ort-worker, step-worker, vad-worker):
 * session creation provider by provider, the ready/load-error handshake, plain runs.
 */
import type { MessagePort } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { SessionReply, WireTensor } from './messages.js';

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

type Post = (msg: SessionReply, transfer?: ArrayBuffer[]) => void;

/**
 * Creates the session as {@link createOnFirstProvider} does and tells the host: `ready` with the
 * session's names, or `load-error` (and closes `port`), in which case it returns undefined.
 * `alongside` opens what else the worker needs on the provider the session got (e.g. the step
 * worker's cached head) before `ready`; the failures it returns make it a `load-error` too.
 */
export async function openOrReport(
  data: { readonly modelPath: string; readonly providers: readonly string[]; readonly intraOpThreads: number },
  post: Post,
  port: MessagePort,
  alongside?: (provider: string) => Promise<readonly ProviderFailure[] | undefined>,
): Promise<ort.InferenceSession | undefined> {
  const { session, provider, failed } = await createOnFirstProvider(data.modelPath, data.providers, data.intraOpThreads);
  const more = session ? await alongside?.(provider) : undefined;
  if (!session || more) {
    await session?.release();
    post({ type: 'load-error', failed: more ? [...more] : failed });
    port.close();
    return undefined;
  }
  post({ type: 'ready', provider, inputNames: [...session.inputNames], outputNames: [...session.outputNames], failed });
  return session;
}

/**
 * Runs `feeds` on `session` and posts `result` (outputs transferred; a buffer ORT owns natively may
 * not be transferable, so a structured copy is the fallback) or `run-error`. Never rejects.
 */
export async function runAndReply(session: ort.InferenceSession, id: number, feeds: Record<string, WireTensor>, post: Post): Promise<void> {
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, [...t.dims]);
    const res = await session.run(ortFeeds);
    const outputs: Record<string, WireTensor> = {};
    const transfer = new Set<ArrayBuffer>();
    for (const [name, t] of Object.entries(res)) {
      if (t.type !== 'float32' && t.type !== 'int64') throw new Error(`output ${name} has unsupported type ${t.type}`);
      const arr = t.data as Float32Array | BigInt64Array;
      outputs[name] = { type: t.type, data: arr, dims: [...t.dims] };
      transfer.add(arr.buffer as ArrayBuffer);
    }
    try {
      post({ type: 'result', id, outputs }, [...transfer]);
    } catch {
      post({ type: 'result', id, outputs });
    }
  } catch (err) {
    post({ type: 'run-error', id, message: err instanceof Error ? err.message : String(err) });
  }
}
