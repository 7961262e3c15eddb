/**
 * The worker_threads side of a text model: transformers.js (tokenizer + ONNX model) loaded once,
 * offline, from a local folder. transformers.js calls onnxruntime-node, whose run() blocks the
 * thread it is on, so it runs here rather than on the event loop serving the streams.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AutoModel, AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { configureHfEnv } from '../hf-env.js';
import type { FromTextWorker, TextWorkerData, ToTextWorker } from './text-messages.js';
import { serveRunsUntilClose } from './serve-runs.js';

const data = workerData as TextWorkerData;
const port = parentPort;
if (!port) throw new Error('text-worker must run in a worker thread');

function post(msg: FromTextWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(msg, transfer);
}

interface SessionLike {
  inputNames?: string[];
  outputNames?: string[];
}

async function main(): Promise<void> {
  configureHfEnv(env, { localModelPath: data.localModelPath, cacheDir: data.cacheDir });
  let tokenizer: Awaited<ReturnType<typeof AutoTokenizer.from_pretrained>>;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(data.modelId, { local_files_only: true });
  } catch (err) {
    post({ type: 'load-error', message: `tokenizer: ${err instanceof Error ? err.message : String(err)}`, failed: [] });
    port!.close();
    return;
  }
  const failed: Array<{ device: string; error: string }> = [];
  let model: Awaited<ReturnType<typeof AutoModel.from_pretrained>> | undefined;
  let device = '';
  for (const d of data.devices) {
    try {
      const loader = data.kind === 'classifier' ? AutoModelForSequenceClassification : AutoModel;
      model = await loader.from_pretrained(data.modelId, {
        local_files_only: true,
        device: d as 'cpu',
        dtype: 'fp32',
      });
      device = d;
      break;
    } catch (err) {
      failed.push({ device: d, error: err instanceof Error ? err.message : String(err) });
    }
  }
  if (!model) {
    post({ type: 'load-error', message: failed.map((f) => `${f.device}: ${f.error}`).join('; '), failed });
    port!.close();
    return;
  }
  const m = model;
  const sessions = (m as unknown as { sessions?: Record<string, SessionLike> }).sessions ?? {};
  const session = sessions['model'] ?? Object.values(sessions)[0] ?? {};
  const id2label = (m.config as unknown as { id2label?: Record<string, string> }).id2label ?? {};
  const labels = Object.keys(id2label)
    .map(Number)
    .sort((a, b) => a - b)
    .map((i) => id2label[String(i)] ?? String(i));
  const multiLabel = (m.config as unknown as { problem_type?: string }).problem_type === 'multi_label_classification';
  post({ type: 'ready', device, inputNames: session.inputNames ?? [], outputNames: session.outputNames ?? [], labels, multiLabel, failed });

  serveRunsUntilClose<ToTextWorker>(port!, {
    release: () => m.dispose(),
    refuse: (msg) => {
      if (msg.type === 'run') post({ type: 'run-error', id: msg.id, message: 'model is closing' });
    },
    run: async (msg) => {
      if (msg.type !== 'run') return;
      try {
        const enc = tokenizer([...msg.texts], { padding: true, truncation: true, max_length: data.maxTokens });
        const out = (await m(enc)) as Record<string, { data: Float32Array; dims: number[] }>;
        if (data.kind === 'regression') {
          const vad = out['vad'];
          if (!vad) throw new Error('model returned no vad output');
          const known = out['known'];
          const B = vad.dims[0] ?? 0;
          const n = vad.dims[1] ?? 0;
          if (n !== 3) throw new Error(`model's vad output has ${n} columns, expected 3 (valence, arousal, dominance)`);
          const rows = new Float32Array(B * 4);
          for (let b = 0; b < B; b++) {
            for (let k = 0; k < 3; k++) rows[b * 4 + k] = vad.data[b * 3 + k] ?? Number.NaN;
            rows[b * 4 + 3] = known ? (known.data[b] ?? Number.NaN) : 1;
          }
          post({ type: 'result', id: msg.id, data: rows, width: 4 }, [rows.buffer]);
          return;
        }
        if (data.kind === 'classifier') {
          const logits = out['logits'];
          if (!logits) throw new Error('model returned no logits');
          const width = logits.dims[1] ?? 0;
          const copy = Float32Array.from(logits.data);
          post({ type: 'result', id: msg.id, data: copy, width }, [copy.buffer]);
          return;
        }
        const hidden = out['last_hidden_state'];
        if (!hidden) throw new Error('model returned no last_hidden_state');
        const [B = 0, S = 0, H = 0] = hidden.dims;
        const mask = (enc as { attention_mask: { data: BigInt64Array } }).attention_mask.data;
        // sentence-transformers pooling: mean over real tokens, then L2 normalisation
        const pooled = new Float32Array(B * H);
        for (let b = 0; b < B; b++) {
          let count = 0;
          for (let s = 0; s < S; s++) {
            if (mask[b * S + s] === 0n) continue;
            count += 1;
            for (let h = 0; h < H; h++) pooled[b * H + h] = (pooled[b * H + h] ?? 0) + (hidden.data[(b * S + s) * H + h] ?? 0);
          }
          let norm = 0;
          for (let h = 0; h < H; h++) {
            const v = (pooled[b * H + h] ?? 0) / Math.max(1, count);
            pooled[b * H + h] = v;
            norm += v * v;
          }
          norm = Math.sqrt(norm) || 1;
          for (let h = 0; h < H; h++) pooled[b * H + h] = (pooled[b * H + h] ?? 0) / norm;
        }
        post({ type: 'result', id: msg.id, data: pooled, width: H }, [pooled.buffer]);
      } catch (err) {
        post({ type: 'run-error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
      }
    },
  });
}

void main();
