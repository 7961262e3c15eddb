/**
 * The ASR host: a child process that owns libvosk, the loaded model and every recogniser.
 * It is the isolation boundary: a libvosk crash (SIGSEGV), abort or hang kills only this process;
 * the parent's watchdog notices, fails the affected streams and starts a new host.
 *
 * Run only by vosk-factory.ts via `child_process.fork` with an IPC channel. It exits when the
 * channel closes, freeing every recogniser and the model first.
 */
import type { HostReply, HostRequest, HostWord } from './host-protocol.js';
import { loadVoskBinding, type NativeHandle, type VoskBinding } from './vosk-binding.js';

interface Slot {
  rec: NativeHandle;
  /** True while an accept runs off-thread: libvosk must not see the recogniser twice. */
  busy: boolean;
  /** A free that arrived while busy: done when the accept returns. */
  freeAfter: boolean;
}

let vosk: VoskBinding | undefined;
let model: NativeHandle | undefined;
let sampleRateHz = 16_000;
let partialWords = true;
const slots = new Map<number, Slot>();

function send(msg: HostReply): void {
  process.send?.(msg);
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function freeSlot(rid: number): void {
  const slot = slots.get(rid);
  if (!slot || !vosk) return;
  if (slot.busy) {
    slot.freeAfter = true;
    return;
  }
  slots.delete(rid);
  vosk.recognizerFree(slot.rec);
}

/** libvosk's JSON result → text + words (times in seconds since the recogniser's first sample). */
function parse(json: string, textKey: 'text' | 'partial', wordsKey: 'result' | 'partial_result'): { text: string; words: HostWord[] } {
  const r = JSON.parse(json) as Record<string, unknown>;
  const list = Array.isArray(r[wordsKey]) ? (r[wordsKey] as Array<Record<string, unknown>>) : [];
  return {
    text: typeof r[textKey] === 'string' ? r[textKey] : '',
    words: list.map((w) => ({ word: String(w.word), start: Number(w.start), end: Number(w.end), conf: Number(w.conf ?? 1) })),
  };
}

async function handle(msg: HostRequest): Promise<void> {
  switch (msg.op) {
    case 'load': {
      const t0 = performance.now();
      try {
        vosk = loadVoskBinding(msg.binding);
      } catch (err) {
        send({ op: 'load-failed', reason: 'no-vosk', message: `libvosk could not be loaded (optional packages "vosk"/"koffi"): ${errMsg(err)}` });
        return;
      }
      // -1: no LOG lines; libvosk still prints ERROR lines to stderr, which the parent keeps.
      vosk.setLogLevel(msg.logLevel);
      sampleRateHz = msg.sampleRateHz;
      partialWords = msg.partialWords;
      try {
        // libvosk returns NULL instead of throwing; a recogniser made from it would segfault.
        const m = vosk.modelNew(msg.modelDir);
        if (m === null) {
          send({ op: 'load-failed', reason: 'null-model', message: 'vosk_model_new returned NULL' });
          return;
        }
        model = m;
      } catch (err) {
        send({ op: 'load-failed', reason: 'exception', message: errMsg(err) });
        return;
      }
      send({ op: 'loaded', loadMs: performance.now() - t0, binding: vosk.kind });
      return;
    }
    case 'create': {
      if (!vosk || !model) {
        send({ op: 'failed', req: msg.req, rid: msg.rid, message: 'no model loaded in the ASR host' });
        return;
      }
      try {
        const rec = vosk.recognizerNew(model, sampleRateHz);
        if (rec === null) {
          send({ op: 'failed', req: msg.req, rid: msg.rid, message: 'vosk_recognizer_new returned NULL' });
          return;
        }
        vosk.setWords(rec, true);
        vosk.setPartialWords(rec, partialWords);
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
      if (!vosk || !slot || slot.freeAfter) {
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
          const r = parse(vosk.finalResult(slot.rec), 'text', 'result');
          send({ op: 'result', req: msg.req, rid: msg.rid, final: true, ...r });
        } else {
          const pcm = Buffer.from(msg.pcm.buffer, msg.pcm.byteOffset, msg.pcm.byteLength);
          // Off the JS thread, so several streams decode in parallel and IPC stays responsive.
          const endOfUtterance = await vosk.acceptWaveform(slot.rec, pcm);
          const r = endOfUtterance ? parse(vosk.result(slot.rec), 'text', 'result') : parse(vosk.partialResult(slot.rec), 'partial', 'partial_result');
          send({ op: 'result', req: msg.req, rid: msg.rid, final: endOfUtterance, ...r });
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
    case 'stats': {
      (globalThis as { gc?: () => void }).gc?.();
      vosk?.trimHeap();
      const m = process.memoryUsage();
      send({ op: 'stats', req: msg.req, rssBytes: m.rss, heapUsedBytes: m.heapUsed, recognizers: slots.size });
      return;
    }
  }
}

process.on('message', (msg: HostRequest) => {
  void handle(msg);
});

// The parent went away (close() or its own death): free native memory and leave. A recogniser
// whose accept is still running off-thread is left to the OS (freeing it under libvosk would crash).
process.on('disconnect', () => {
  for (const rid of [...slots.keys()]) freeSlot(rid);
  if (model && vosk && [...slots.values()].every((s) => !s.busy)) vosk.modelFree(model);
  process.exit(0);
});

// Started without an IPC channel, or the parent died before the handler above was in place:
// 'disconnect' will never come, so leave now rather than linger as an orphan.
if (!process.connected) process.exit(0);

send({ op: 'ready' });
