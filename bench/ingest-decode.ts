/**
 * μ-law 8 kHz → 16 kHz decoding cost (`npx tsx bench/ingest-decode.ts [seconds]`): the ingest
 * decoder (μ-law table, 8 → 16 kHz resampler) fed one 20 ms Twilio packet at a time, against the
 * same audio fed once per 250 ms hop, as `/v1/telephony/twilio` now does (it holds a track's bytes
 * until they reach the next hop end). Prints ms of CPU per second of audio, three rounds.
 */
import { FrameDecoder, type IngestStats } from '../src/server/ingest.js';

const stats: IngestStats = { framesAccepted: 0, framesRejected: 0, samplesNonFinite: 0, samplesClipped: 0, samplesOut: 0 };
const hop = Buffer.alloc(2000);
for (let i = 0; i < hop.length; i++) hop[i] = (i * 37) & 0xff;

function msPerAudioSecond(bytesPerCall: number, seconds: number): number {
  const d = new FrameDecoder({ encoding: 'mulaw', sampleRateHz: 8000, channels: 1 });
  const t0 = process.cpuUsage();
  for (let s = 0; s < seconds * 4; s++) for (let at = 0; at < hop.length; at += bytesPerCall) d.decode(hop.subarray(at, at + bytesPerCall), stats);
  const c = process.cpuUsage(t0);
  return (c.user + c.system) / 1000 / seconds;
}

const seconds = Number(process.argv[2] ?? 4000);
for (let r = 0; r < 3; r++) {
  const perPacket = msPerAudioSecond(160, seconds);
  const perHop = msPerAudioSecond(2000, seconds);
  console.log(
    `ms CPU per second of audio: per 20 ms packet ${perPacket.toFixed(3)}, per 250 ms hop ${perHop.toFixed(3)} (${((1 - perHop / perPacket) * 100).toFixed(0)} % less)`,
  );
}
