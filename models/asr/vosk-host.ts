/**
 * The ASR host: a child process that owns libvosk, the loaded model and every recogniser.
 * It is the isolation boundary: a libvosk crash (SIGSEGV), abort or hang kills only this process;
 * the parent's watchdog notices, fails the affected streams and starts a new host.
 *
 * Run only by vosk-factory.ts via `child_process.fork` with an IPC channel. It exits when the
 * channel closes, freeing every recogniser and the model first.
 */
import { createRequire } from 'node:module';
import type { HostReply, HostRequest, HostWord } from './host-protocol.js';

/** The slice of the `vosk` package this host uses (it ships no types). */
interface RefPointer {
  isNull(): boolean;
}
interface VoskRecognizer {
  handle: RefPointer;
  setWords(on: boolean): void;
  setPartialWords(on: boolean): void;
  acceptWaveformAsync(data: Buffer): Promise<boolean>;
  result(): { text?: string; result?: HostWord[] };
  partialResult(): { partial?: string; partial_result?: HostWord[] };
  finalResult(): { text?: string; result?: HostWord[] };
  free(): void;
}
interface VoskModule {
  setLogLevel(level: number): void;
  Model: new (dir: string) => { handle: RefPointer; free(): void };
  Recognizer: new (p: { model: unknown; sampleRate: number }) => VoskRecognizer;
}

interface Slot {
  rec: VoskRecognizer;
  /** True while an acceptWaveformAsync runs on the libuv pool: libvosk must not see the recogniser twice. */
  busy: boolean;
  /** A free that arrived while busy: done when the accept returns. */
  freeAfter: boolean;
}

let vosk: VoskModule | undefined;
let model: { handle: RefPointer; free(): void } | undefined;
let sampleRateHz = 16_000;
const slots = new Map<number, Slot>();

function send(msg: HostReply): void {
  process.send?.(msg);
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function freeSlot(rid: number): void {
  const slot = slots.get(rid);
  if (!slot) return;
  if (slot.busy) {
    slot.freeAfter = true;
    return;
  }
  slots.delete(rid);
  slot.rec.free();
}

function words(list: HostWord[] | undefined): HostWord[] {
  if (!Array.isArray(list)) return [];
  return list.map((w) => ({ word: String(w.word), start: Number(w.start), end: Number(w.end), conf: Number(w.conf ?? 1) }));
}

async function handle(msg: HostRequest): Promise<void> {
  switch (msg.op) {
    case 'load': {
      const t0 = performance.now();
      try {
        vosk = createRequire(import.meta.url)('vosk') as VoskModule;
      } catch (err) {
        send({ op: 'load-failed', reason: 'no-vosk', message: `the optional "vosk" package could not be loaded: ${errMsg(err)}` });
        return;
      }
      // -1: no LOG lines; libvosk still prints ERROR lines to stderr, which the parent keeps.
      vosk.setLogLevel(msg.logLevel);
      sampleRateHz = msg.sampleRateHz;
      try {
        const m = new vosk.Model(msg.modelDir);
        // libvosk returns NULL instead of throwing; a recogniser made from it would segfault.
        if (m.handle.isNull()) {
          send({ op: 'load-failed', reason: 'null-model', message: 'vosk_model_new returned NULL' });
          return;
        }
        model = m;
      } catch (err) {
        send({ op: 'load-failed', reason: 'exception', message: errMsg(err) });
        return;
      }
      send({ op: 'loaded', loadMs: performance.now() - t0 });
      return;
    }
    case 'create': {
      if (!vosk || !model) {
        send({ op: 'failed', req: msg.req, rid: msg.rid, message: 'no model loaded in the ASR host' });
        return;
      }
      try {
        const rec = new vosk.Recognizer({ model, sampleRate: sampleRateHz });
        if (rec.handle.isNull()) {
          send({ op: 'failed', req: msg.req, rid: msg.rid, message: 'vosk_recognizer_new returned NULL' });
          return;
        }
        rec.setWords(true);
        rec.setPartialWords(true);
        slots.set(msg.rid, { rec, busy: false, freeAfter: false });
        send({ op: 'created', req: msg.req, rid: msg.rid });
      } catch (err) {
        send({ op: 'failed', req: msg.req, rid: msg.rid, message: errMsg(err) });
      }
      return;
    }
    case 'accept':
    case 'finish': {
      const slot = slots.get(msg.rid);
      if (!slot || slot.freeAfter) {
        send({ op: 'failed', req: msg.req, rid: msg.rid, message: `unknown or freed recogniser ${msg.rid}` });
        return;
      }
      if (slot.busy) {
        send({ op: 'failed', req: msg.req, rid: msg.rid, message: 'a request is already in flight for this recogniser' });
        return;
      }
      slot.busy = true;
      try {
        if (msg.op === 'finish') {
          const r = slot.rec.finalResult();
          send({ op: 'result', req: msg.req, rid: msg.rid, final: true, text: r.text ?? '', words: words(r.result) });
        } else {
          const pcm = Buffer.from(msg.pcm.buffer, msg.pcm.byteOffset, msg.pcm.byteLength);
          // The async variant runs on the libuv pool, so several streams decode in parallel.
          const endOfUtterance = await slot.rec.acceptWaveformAsync(pcm);
          if (endOfUtterance) {
            const r = slot.rec.result();
            send({ op: 'result', req: msg.req, rid: msg.rid, final: true, text: r.text ?? '', words: words(r.result) });
          } else {
            const r = slot.rec.partialResult();
            send({ op: 'result', req: msg.req, rid: msg.rid, final: false, text: r.partial ?? '', words: words(r.partial_result) });
          }
        }
      } catch (err) {
        send({ op: 'failed', req: msg.req, rid: msg.rid, message: errMsg(err) });
      } finally {
        slot.busy = false;
        if (slot.freeAfter) freeSlot(msg.rid);
      }
      return;
    }
    case 'free':
      freeSlot(msg.rid);
      return;
    case 'stats':
      send({ op: 'stats', req: msg.req, rssBytes: process.memoryUsage().rss, recognizers: slots.size });
      return;
  }
}

process.on('message', (msg: HostRequest) => {
  void handle(msg);
});

// The parent went away (close() or its own death): free native memory and leave.
process.on('disconnect', () => {
  for (const rid of [...slots.keys()]) {
    const slot = slots.get(rid);
    if (slot && !slot.busy) freeSlot(rid);
  }
  if (slots.size === 0) model?.free();
  process.exit(0);
});

send({ op: 'ready' });
