/**
 * Twilio Media Streams messages as Twilio sends them (what `/v1/telephony/twilio` reads), for the
 * programs that play a call platform: the warm-up's calls, the Twilio bench, tests.
 * https://www.twilio.com/docs/voice/media-streams/websocket-messages
 */

/** `connected`: the first message of a media stream. */
export function twilioConnected(): string {
  return JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' });
}

/** `start`: 8 kHz mono μ-law on the given tracks (`inbound` = caller, `outbound` = agent). */
export function twilioStart(callSid: string, opts: { streamSid?: string; tracks?: readonly string[]; accountSid?: string } = {}): string {
  const streamSid = opts.streamSid ?? `MZ${callSid}`;
  return JSON.stringify({
    event: 'start',
    sequenceNumber: '1',
    streamSid,
    start: {
      streamSid,
      accountSid: opts.accountSid ?? 'AC0',
      callSid,
      tracks: opts.tracks ?? ['inbound', 'outbound'],
      customParameters: {},
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  });
}

/**
 * `media`: packet `k` (0-based, 20 ms each) of a track, its payload base64 μ-law. `sequenceNumber`
 * counts both tracks' packets after `start` (inbound even, outbound odd), `timestamp` is ms into the call.
 */
export function twilioMedia(streamSid: string, track: 'inbound' | 'outbound', k: number, payload: string): string {
  const seq = 2 * k + 2 + (track === 'inbound' ? 0 : 1);
  return `{"event":"media","sequenceNumber":"${seq}","streamSid":"${streamSid}","media":{"track":"${track}","chunk":"${k + 1}","timestamp":"${k * 20}","payload":"${payload}"}}`;
}

/** `stop`: the call's media stream ended. */
export function twilioStop(streamSid: string, sequenceNumber = 0): string {
  return JSON.stringify({ event: 'stop', sequenceNumber: String(sequenceNumber), streamSid, stop: {} });
}
