/**
 * One-off scorer (not a test): any speech model id on the fidelity test's unseen speakers (the first two
 * speakers of each corpus), per clip = mean of voiced 1 s windows at 250 ms hop, through the real adapter.
 *   npx tsx training/speech/score-unseen.ts speech-fixture
 * prints {arousalCcc, valenceCcc, arousalAuc}; compare with the floors in test/integration/models-speech-va.test.ts.
 */
import { pino } from 'pino';
import { loadSpeechModel } from '../../models/registry.js';
import { allClips, arousalAuc, ccc, decodeClip, holdoutSpeakers, predictClip } from '../../test/helpers/speech-corpus.js';

const id = process.argv[2] ?? 'speech-fixture';
const clips = allClips();
const speakers = holdoutSpeakers(clips, 2);
const held = clips.filter((c) => speakers.includes(c.speaker));
const model = await loadSpeechModel(id, { device: 'cpu', logger: pino({ level: 'silent' }) });
const preds = [];
for (const c of held) preds.push(await predictClip(model, await decodeClip(c.file)));
await model.close();
const pa = preds.map((p) => p.arousal);
console.log(
  JSON.stringify({
    model: id,
    speakers,
    clips: held.length,
    arousalCcc: ccc(
      held.map((c) => c.arousal),
      pa,
    ),
    valenceCcc: ccc(
      held.map((c) => c.valence),
      preds.map((p) => p.valence),
    ),
    arousalAuc: arousalAuc(held, pa),
  }),
);
