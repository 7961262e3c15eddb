/** Audio as Twilio Media Streams carries it, for tests that play a call (messages: src/server/twilio-messages.ts). */
import { float32ToMulaw, resample } from '../../streams/audio.js';

/** 16 kHz float → Twilio media payloads: 20 ms (160 bytes) of 8 kHz μ-law each, base64. */
export function twilioPayloads(samples16k: Float32Array): string[] {
  const mu = float32ToMulaw(resample(samples16k, 16000, 8000));
  const out: string[] = [];
  for (let i = 0; i + 160 <= mu.length; i += 160) out.push(Buffer.from(mu.subarray(i, i + 160)).toString('base64'));
  return out;
}
