/**
 * How the ASR host reaches libvosk. The `vosk` npm package ships libvosk and a binding built on
 * ffi-napi; ffi-napi leaks about 2 KB of native memory on EVERY call (node-ffi-napi#163, measured
 * here: 20 000 calls of a void function grow RSS by ~40 MB), which for a live stream is tens of MB
 * per hour. So the host binds the same libvosk shared library with koffi, which does not leak
 * (1 600 recognisers × 20 calls: RSS flat), and falls back to the `vosk` package's own binding
 * only when koffi is not installed.
 *
 * Loaded only inside the host process (vosk-host.ts).
 */
import { createRequire } from 'node:module';
import path from 'node:path';

/** An opaque native pointer (never NULL: NULL is reported as `null`). */
export type NativeHandle = object;

/** The libvosk calls the host makes. */
export interface VoskBinding {
  readonly kind: 'koffi' | 'ffi-napi';
  setLogLevel(level: number): void;
  /** `null` when libvosk could not load the folder (it returns NULL instead of throwing). */
  modelNew(dir: string): NativeHandle | null;
  modelFree(model: NativeHandle): void;
  recognizerNew(model: NativeHandle, sampleRateHz: number): NativeHandle | null;
  setWords(rec: NativeHandle, on: boolean): void;
  setPartialWords(rec: NativeHandle, on: boolean): void;
  /** Runs off the JS thread (libuv pool); resolves true at an endpoint (a final result is ready). */
  acceptWaveform(rec: NativeHandle, pcm: Buffer): Promise<boolean>;
  result(rec: NativeHandle): string;
  partialResult(rec: NativeHandle): string;
  finalResult(rec: NativeHandle): string;
  recognizerFree(rec: NativeHandle): void;
  /** Returns freed heap pages to the OS (glibc `malloc_trim`), so RSS readings show live memory. No-op elsewhere. */
  trimHeap(): void;
}

const require = createRequire(import.meta.url);

/** Path of the libvosk shared library inside the `vosk` package. */
export function libvoskPath(): string {
  const root = path.dirname(require.resolve('vosk/package.json'));
  if (process.platform === 'win32') return path.join(root, 'lib', 'win-x86_64', 'libvosk.dll');
  if (process.platform === 'darwin') return path.join(root, 'lib', 'osx-universal', 'libvosk.dylib');
  return path.join(root, 'lib', 'linux-x86_64', 'libvosk.so');
}

interface KoffiFn {
  (...args: unknown[]): unknown;
  async(...args: unknown[]): void;
}
interface KoffiLib {
  func(decl: string): KoffiFn;
}

function koffiBinding(): VoskBinding {
  const koffi = require('koffi') as { load(path?: string): KoffiLib };
  const lib = koffi.load(libvoskPath());
  let mallocTrim: KoffiFn | undefined;
  try {
    // glibc only; absent on musl, macOS and Windows.
    if (process.platform === 'linux') mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t)');
  } catch {
    mallocTrim = undefined;
  }
  const f = {
    setLogLevel: lib.func('void vosk_set_log_level(int)'),
    modelNew: lib.func('void *vosk_model_new(const char *)'),
    modelFree: lib.func('void vosk_model_free(void *)'),
    recNew: lib.func('void *vosk_recognizer_new(void *, float)'),
    setWords: lib.func('void vosk_recognizer_set_words(void *, int)'),
    setPartialWords: lib.func('void vosk_recognizer_set_partial_words(void *, int)'),
    accept: lib.func('int vosk_recognizer_accept_waveform(void *, const uint8_t *, int)'),
    result: lib.func('const char *vosk_recognizer_result(void *)'),
    partial: lib.func('const char *vosk_recognizer_partial_result(void *)'),
    final: lib.func('const char *vosk_recognizer_final_result(void *)'),
    recFree: lib.func('void vosk_recognizer_free(void *)'),
  };
  return {
    kind: 'koffi',
    setLogLevel: (l) => void f.setLogLevel(l),
    modelNew: (dir) => (f.modelNew(dir) as NativeHandle | null) ?? null,
    modelFree: (m) => void f.modelFree(m),
    recognizerNew: (m, rate) => (f.recNew(m, rate) as NativeHandle | null) ?? null,
    setWords: (r, on) => void f.setWords(r, on ? 1 : 0),
    setPartialWords: (r, on) => void f.setPartialWords(r, on ? 1 : 0),
    acceptWaveform: (r, pcm) =>
      new Promise((resolve, reject) => {
        // koffi runs the call on a worker thread; `pcm` stays referenced by this closure until then.
        f.accept.async(r, pcm, pcm.length, (err: unknown, res: number) =>
          err ? reject(err instanceof Error ? err : new Error('vosk_recognizer_accept_waveform failed', { cause: err })) : resolve(res !== 0),
        );
      }),
    result: (r) => (f.result(r) as string | null) ?? '{}',
    partialResult: (r) => (f.partial(r) as string | null) ?? '{}',
    finalResult: (r) => (f.final(r) as string | null) ?? '{}',
    recognizerFree: (r) => void f.recFree(r),
    trimHeap: () => void mallocTrim?.(0),
  };
}

/** The `vosk` package's own (ffi-napi) binding: works, but leaks per call (see the file comment). */
function ffiNapiBinding(): VoskBinding {
  interface RefPointer {
    isNull(): boolean;
  }
  interface Rec {
    handle: RefPointer;
    setWords(on: boolean): void;
    setPartialWords(on: boolean): void;
    acceptWaveformAsync(data: Buffer): Promise<boolean>;
    resultString(): string;
    free(): void;
  }
  const vosk = require('vosk') as {
    setLogLevel(level: number): void;
    Model: new (dir: string) => { handle: RefPointer; free(): void };
    Recognizer: new (p: { model: unknown; sampleRate: number }) => Rec;
  };
  // The package exposes no raw partial/final strings on the class; go through its methods.
  type Wrapped = { rec: Rec & { partialResult(): unknown; finalResult(): unknown; result(): unknown } };
  return {
    kind: 'ffi-napi',
    setLogLevel: (l) => vosk.setLogLevel(l),
    modelNew: (dir) => {
      const m = new vosk.Model(dir);
      return m.handle.isNull() ? null : m;
    },
    modelFree: (m) => (m as { free(): void }).free(),
    recognizerNew: (m, rate) => {
      const rec = new vosk.Recognizer({ model: m, sampleRate: rate });
      return rec.handle.isNull() ? null : { rec };
    },
    setWords: (r, on) => (r as Wrapped).rec.setWords(on),
    setPartialWords: (r, on) => (r as Wrapped).rec.setPartialWords(on),
    acceptWaveform: (r, pcm) => (r as Wrapped).rec.acceptWaveformAsync(pcm),
    result: (r) => JSON.stringify((r as Wrapped).rec.result()),
    partialResult: (r) => JSON.stringify((r as Wrapped).rec.partialResult()),
    finalResult: (r) => JSON.stringify((r as Wrapped).rec.finalResult()),
    recognizerFree: (r) => (r as Wrapped).rec.free(),
    trimHeap: () => undefined,
  };
}

/**
 * The best available binding: koffi over the vosk package's libvosk, else the vosk package's
 * ffi-napi binding. `prefer` forces one (tests, diagnostics). Throws when neither loads.
 */
export function loadVoskBinding(prefer?: 'koffi' | 'ffi-napi'): VoskBinding {
  if (prefer === 'ffi-napi') return ffiNapiBinding();
  try {
    return koffiBinding();
  } catch (err) {
    if (prefer === 'koffi') throw err;
    return ffiNapiBinding();
  }
}
