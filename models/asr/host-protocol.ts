/**
 * Messages between the parent (vosk-factory.ts) and the ASR host child process (vosk-host.ts).
 * The channel uses `serialization: 'advanced'`, so audio travels as a Uint8Array of s16le samples
 * without base64.
 */

/** A word as libvosk reports it: times in seconds since the recogniser's first sample. */
export interface HostWord {
  readonly word: string;
  readonly start: number;
  readonly end: number;
  readonly conf: number;
}

/** Parent → host. `rid` names a recogniser, `req` one request. */
export type HostRequest =
  | {
      readonly op: 'load';
      readonly modelDir: string;
      readonly sampleRateHz: number;
      readonly logLevel: number;
      readonly partialWords: boolean;
      readonly binding: 'koffi' | 'ffi-napi' | undefined;
    }
  | { readonly op: 'create'; readonly rid: number; readonly req: number }
  | { readonly op: 'accept'; readonly rid: number; readonly req: number; readonly pcm: Uint8Array }
  | { readonly op: 'finish'; readonly rid: number; readonly req: number }
  | { readonly op: 'free'; readonly rid: number }
  | { readonly op: 'stats'; readonly req: number };

/** Host → parent. */
export type HostReply =
  | { readonly op: 'ready' }
  | { readonly op: 'loaded'; readonly loadMs: number; readonly binding: 'koffi' | 'ffi-napi' }
  | { readonly op: 'load-failed'; readonly reason: 'no-vosk' | 'null-model' | 'exception'; readonly message: string }
  | { readonly op: 'created'; readonly req: number; readonly rid: number }
  | {
      readonly op: 'result';
      readonly req: number;
      readonly rid: number;
      readonly final: boolean;
      readonly text: string;
      readonly words: readonly HostWord[];
    }
  | { readonly op: 'failed'; readonly req: number; readonly rid: number; readonly message: string }
  | { readonly op: 'stats'; readonly req: number; readonly rssBytes: number; readonly heapUsedBytes: number; readonly recognizers: number };
