/**
 * transformers.js set up once, offline: no remote downloads, models from an explicit local folder,
 * cache in the project's cache dir (never inside node_modules, where installs would wipe it and
 * read-only installs would fail). Imported only by the text worker.
 */
import type { env as HfEnv } from '@huggingface/transformers';

/** Where transformers.js looks. */
export interface HfEnvOptions {
  /** Folder holding `<model id>/config.json`, `tokenizer.json`, `onnx/model.onnx`. */
  readonly localModelPath: string;
  /** transformers.js file cache (core/config.ts cacheDir). */
  readonly cacheDir: string;
}

/** Applies the offline settings to transformers.js's `env`. */
export function configureHfEnv(env: typeof HfEnv, opts: HfEnvOptions): void {
  if (opts.cacheDir.split(/[\\/]/).includes('node_modules')) {
    throw new RangeError(`configureHfEnv: cacheDir must not be inside node_modules, got ${opts.cacheDir}`);
  }
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  // transformers.js joins localModelPath + id with '/', so keep a trailing separator
  env.localModelPath = opts.localModelPath.endsWith('/') ? opts.localModelPath : `${opts.localModelPath}/`;
  env.cacheDir = opts.cacheDir;
  // local files are read in place; nothing to cache
  env.useFSCache = false;
  env.useBrowserCache = false;
}
