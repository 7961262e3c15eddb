/**
 * An in-process agent loop: audio goes into the engine as it arrives, and the caller's affect state
 * decides the style of the agent's next reply. Each time the caller finishes speaking (a `turn`
 * event: the end of a voiced segment, or with a speech recogniser each final result) the agent picks
 * a style from that turn's mean valence and arousal; an escalation alert hands the call to a person.
 * With a Vosk model folder in CIRCUMPLEX_VOSK_MODEL, each turn also carries what the caller said.
 *
 *   npx tsx --tsconfig examples/tsconfig.json examples/agent/agent-loop.ts [audio.wav|.flac] [--json]
 *
 * In your own project (after `npm install circumplex`) the imports below work as written. Here the
 * audio comes from a file, read in 20 ms packets the way a telephony or WebRTC callback delivers it.
 */
import { audioFileSource, createAudioFeed, createEngine, type AffectPoint, type AlertEvent, type TurnEvent } from 'circumplex';

/** How the agent should answer. */
export type ReplyStyle = 'de-escalate' | 'reassure' | 'match-energy' | 'relaxed' | 'neutral';

/** What the style means for the reply generator (e.g. an LLM system prompt addition). */
export const STYLE_INSTRUCTIONS: Record<ReplyStyle, string> = {
  'de-escalate': 'Calm and brief. Acknowledge the problem first, no jokes, offer one concrete next step.',
  reassure: 'Warm and patient. Slow down, encourage, check understanding.',
  'match-energy': 'Upbeat and quick. Keep momentum, mirror their enthusiasm.',
  relaxed: 'Friendly and easy-going. Conversational, no pressure.',
  neutral: 'Clear and polite. Default register.',
};

/** Options of {@link replyStyle}: how far from the centre a turn must be to count as affect. */
export interface ReplyStyleOptions {
  /** Below this distance from the circumplex centre the style is 'neutral'. Default 0.15. */
  minIntensity: number;
}
export const DEFAULT_REPLY_STYLE: ReplyStyleOptions = { minIntensity: 0.15 };

/**
 * The reply style for an affect reading (valence and arousal in [-1, 1]): the quadrant of the
 * circumplex it falls in, or 'neutral' near the centre.
 */
export function replyStyle(a: { valence: number; arousal: number }, opts: Partial<ReplyStyleOptions> = {}): ReplyStyle {
  const { minIntensity } = { ...DEFAULT_REPLY_STYLE, ...opts };
  if (Math.hypot(a.valence, a.arousal) < minIntensity) return 'neutral';
  if (a.valence < 0) return a.arousal >= 0 ? 'de-escalate' : 'reassure';
  return a.arousal >= 0 ? 'match-energy' : 'relaxed';
}

/** One decision of the loop. */
export interface Decision {
  /** The turn that ended (audio ms). */
  startMs: number;
  endMs: number;
  valence: number;
  arousal: number;
  label: string;
  /** What the caller said in the turn (with a speech recogniser). */
  transcript?: string;
  style: ReplyStyle;
  /** The latest smoothed frame when the turn ended (the agent's running view of the caller). */
  latest: { valence: number; arousal: number; label: string } | undefined;
  handOff: boolean;
}

/** Runs the loop over one recording; resolves to the decisions made. */
export async function runAgent(
  file: string,
  onDecision: (d: Decision) => void = () => undefined,
  asrModel: string | undefined = process.env.CIRCUMPLEX_VOSK_MODEL,
): Promise<Decision[]> {
  // A Vosk model folder adds transcripts (and the text modality); without one the loop is speech-only.
  const engine = await createEngine({ device: 'cpu', ...(asrModel ? { asrModel } : {}) });
  const decisions: Decision[] = [];
  try {
    // 'offline': lossless (every window analysed) because a file arrives faster than real time;
    // a live call would use mode 'live' and never wait.
    const feed = createAudioFeed(engine, { streamId: 'caller', mode: 'offline' });
    let latest: AffectPoint | undefined;
    let escalated = false;
    const finished = new Promise<void>((resolve, reject) => {
      feed.frames$.subscribe({
        next: (e) => {
          if (e.kind === 'affect') latest = e.point;
          else if (e.kind === 'alert') onAlert(e.alert);
          else if (e.kind === 'turn') onTurn(e.turn);
        },
        error: reject,
        complete: resolve,
      });
    });
    const onAlert = (alert: AlertEvent): void => {
      // Escalation: arousal rising while valence falls, sustained. A person takes over.
      escalated = true;
      process.stderr.write(`agent: ${alert.alert} at ${(alert.tMs / 1000).toFixed(1)} s (${alert.reason}); handing off\n`);
    };
    const onTurn = (turn: TurnEvent): void => {
      const style = replyStyle(turn.mean);
      const d: Decision = {
        startMs: turn.startMs,
        endMs: turn.endMs,
        valence: turn.mean.valence,
        arousal: turn.mean.arousal,
        label: turn.label,
        ...(turn.transcript !== undefined ? { transcript: turn.transcript } : {}),
        style,
        latest: latest && { valence: latest.valence, arousal: latest.arousal, label: latest.label },
        handOff: escalated,
      };
      decisions.push(d);
      onDecision(d);
    };
    // Packets of 20 ms, as a call delivers them.
    await new Promise<void>((resolve, reject) => {
      let chain = Promise.resolve();
      audioFileSource(file, { streamId: 'caller' }).subscribe({
        next: (chunk) => {
          for (let at = 0; at < chunk.samples.length; at += 320) {
            const packet = chunk.samples.subarray(at, at + 320);
            chain = chain.then(() => feed.write(packet));
          }
        },
        error: reject,
        complete: () => void chain.then(resolve, reject),
      });
    });
    await feed.end();
    await finished;
  } finally {
    await engine.close();
  }
  return decisions;
}

// Run as a script (not when a test imports the functions above).
if (process.argv[1]?.endsWith('agent-loop.ts') || process.argv[1]?.endsWith('agent-loop.js')) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const file = args.find((a) => !a.startsWith('--')) ?? new URL('../../test/fixtures/audio/speech.wav', import.meta.url).pathname;
  runAgent(file, (d) => {
    if (json) process.stdout.write(`${JSON.stringify(d)}\n`);
    else {
      const span = `${(d.startMs / 1000).toFixed(1)}-${(d.endMs / 1000).toFixed(1)} s`;
      process.stdout.write(
        `caller turn ${span}: ${d.transcript !== undefined ? `"${d.transcript}" ` : ''}${d.label} (v=${d.valence.toFixed(2)}, a=${d.arousal.toFixed(2)}) → ${d.handOff ? 'HAND OFF' : d.style}: ${STYLE_INSTRUCTIONS[d.style]}\n`,
      );
    }
  }).then(
    (ds) => process.stderr.write(`agent: ${ds.length} turns answered\n`),
    (err: unknown) => {
      process.stderr.write(`agent: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
