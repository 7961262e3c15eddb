/**
 * Opens a manifest model's ONNX file in a worker thread: file and checksum checks, device choice,
 * signature check, and the one log line saying which provider the model actually runs on.
 */
import { AffectError } from '../core/errors.js';
import { getLogger } from '../core/log.js';
import { assertDeviceAvailable, providersFor } from './device.js';
import { assertModelFiles, modelFilePath } from './files.js';
import type { LoadModelOptions } from './load-options.js';
import type { ModelSpec } from './manifest.js';
import { assertSignature } from './signature.js';
import { OrtWorkerSession } from './worker/host.js';
import { threadsText } from './threads.js';

/** Opens `spec.onnxFile` in a worker; throws AffectErrors naming the file and the fix. */
export async function openOnnxModel(spec: ModelSpec, opts: LoadModelOptions): Promise<OrtWorkerSession> {
  const logger = opts.logger ?? getLogger();
  const device = opts.device ?? 'auto';
  const file = spec.files.find((f) => f.path === spec.onnxFile);
  if (!file) {
    throw new AffectError('AFFECT_ERR_MODEL_LOAD', `model ${spec.id}: the manifest names no ONNX file`, {
      stage: spec.id,
      hint: 'set onnxFile in models/manifest.ts to one of its files',
    });
  }
  const checks = await assertModelFiles(spec, opts.modelsDir);
  for (const c of checks) {
    if (c.status === 'unverified') {
      logger.warn({ model: spec.id, file: c.path, sha256: c.sha256 }, `model ${spec.id}: ${c.file} has no known sha256; loading it unverified`);
    }
  }
  assertDeviceAvailable(device, spec.id);
  const modelPath = modelFilePath(spec, file, opts.modelsDir);
  const session = await OrtWorkerSession.open(modelPath, {
    providers: providersFor(device),
    ...(opts.intraOpThreads !== undefined ? { intraOpThreads: opts.intraOpThreads } : {}),
    stage: spec.id,
  });
  try {
    assertSignature(spec, modelPath, session.inputNames, session.outputNames);
  } catch (err) {
    await session.close();
    throw err;
  }
  const fellBack = session.failedProviders.map((f) => f.provider);
  logger.info(
    { model: spec.id, device, provider: session.provider, intraOpThreads: session.threads.threads, ...(fellBack.length ? { unavailable: fellBack } : {}) },
    `model ${spec.id} runs on ${session.provider}${fellBack.length ? ` (${fellBack.join(', ')} unavailable)` : ''}, ${threadsText(session.threads)}`,
  );
  return session;
}
