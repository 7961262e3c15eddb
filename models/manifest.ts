/**
 * The model manifest: every model circumplex knows, as data. Fixture models are built by
 * `npm run models:fixtures` into `models/fixtures/` and committed; downloaded models live in the
 * models folder (`CIRCUMPLEX_MODELS_DIR`, default `models/weights/`) under `<id>/<file>`.
 *
 * A `sha256` of `null` means the project cannot vouch for the upstream file's hash (it was never
 * downloaded while writing the manifest, and upstream publishes none we could copy offline):
 * `circumplex models pull <id> --accept-unverified` then records the hash it saw in
 * `<modelsDir>/<id>/.verified.json`, and later loads check against that.
 */

/** What a model is for. */
export type ModelRole = 'speech' | 'text-classifier' | 'text-embed' | 'text-regression' | 'fusion' | 'asr';

/** A tensor in a model's signature. Dims: a number is fixed, a string is symbolic (dynamic). */
export interface TensorSpec {
  readonly name: string;
  readonly type: 'float32' | 'int64';
  readonly dims: ReadonlyArray<number | string>;
}

/** One file of a model. */
export interface ModelFile {
  /** Path relative to the model's folder, e.g. `model.onnx` or `onnx/model.onnx`. */
  readonly path: string;
  /** Where `models pull` fetches it; null for fixtures built by the repo. */
  readonly url: string | null;
  /** Expected sha256 (hex), or null when unknown (see module doc). */
  readonly sha256: string | null;
  /** Size in bytes, or null when unknown. */
  readonly sizeBytes: number | null;
  /** For archives: unpack into the model folder after download. */
  readonly unpack?: 'zip';
}

/**
 * Where valence/arousal(/dominance) sit in a speech model's output tensor and the range they come
 * in, so a model with another order or range (audeering's `logits` is [arousal, dominance,
 * valence] in roughly 0..1) maps onto the circumplex's -1..1.
 */
export interface AffectOutputMapping {
  /** Output tensor holding the dimensions, shape [batch, n]. */
  readonly output: string;
  readonly arousal: number;
  readonly valence: number;
  readonly dominance?: number;
  /** The model's native range, mapped linearly to [-1, 1]. */
  readonly range: readonly [number, number];
  /** Output tensor holding a pooled embedding [batch, d], if any. */
  readonly embedding?: string;
  /**
   * Output tensor [batch, n] holding the model's own predictive standard deviation per dimension,
   * in the same columns and units as `output` after mapping to [-1, 1] (trained models whose
   * confidence is real uncertainty, e.g. the spread of an ensemble).
   */
  readonly sigma?: string;
  /** Output tensor [batch, 1]: fraction of the window that is voiced speech, 0..1. */
  readonly voiced?: string;
}

/** A model as data. */
export interface ModelSpec {
  readonly id: string;
  readonly role: ModelRole;
  readonly description: string;
  /** True for the small deterministic models the repo builds itself (resolved from models/fixtures/). */
  readonly fixture: boolean;
  /**
   * True for trained models committed to the repo in their own folder `models/<id>/` (model file,
   * MODEL_CARD.md and model-card.json, rebuilt by a training recipe under training/).
   */
  readonly bundled?: boolean;
  /** Upstream page (model card). */
  readonly source: string;
  readonly license: string;
  readonly files: readonly ModelFile[];
  /** The ONNX file the session loads (one of `files`), for ONNX roles. */
  readonly onnxFile?: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** Speech: the window length in samples the model expects (null: any length). */
  readonly windowSamples?: number | null;
  /**
   * Speech: per-window input normalisation the model was trained with and does not do itself
   * (wav2vec2 feature extractors use zero mean, unit variance).
   */
  readonly inputNormalization?: 'none' | 'zero-mean-unit-var';
  /** Speech: where the affect dimensions are in the outputs. */
  readonly affect?: AffectOutputMapping;
  /** Text classifier: label order of the logits (GoEmotions names). */
  readonly labels?: readonly string[];
}

/** GoEmotions' 28 labels in the order of the dataset and of SamLowe/roberta-base-go_emotions. */
export const GO_EMOTIONS_LABELS = [
  'admiration',
  'amusement',
  'anger',
  'annoyance',
  'approval',
  'caring',
  'confusion',
  'curiosity',
  'desire',
  'disappointment',
  'disapproval',
  'disgust',
  'embarrassment',
  'excitement',
  'fear',
  'gratitude',
  'grief',
  'joy',
  'love',
  'nervousness',
  'optimism',
  'pride',
  'realization',
  'relief',
  'remorse',
  'sadness',
  'surprise',
  'neutral',
] as const;

const HF = 'https://huggingface.co';
const AUDEERING_SOURCE = 'https://huggingface.co/audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim';

/** Every model circumplex knows. */
export const MODEL_SPECS = {
  'speech-fixture': {
    id: 'speech-fixture',
    role: 'speech',
    description: 'Tiny in-graph acoustic-feature model with the wav2vec2 emotion contract (tests, CPU demos).',
    fixture: true,
    source: 'models/fixtures/speech-graph.ts (built by npm run models:fixtures)',
    license: 'MIT',
    files: [
      {
        path: 'speech-fixture.onnx',
        url: null,
        sha256: '2121e349603e9ab47ad8362028d5bd99302c8a7f9c0316e706ce89ef2c2d0237',
        sizeBytes: 75519,
      },
    ],
    onnxFile: 'speech-fixture.onnx',
    inputs: [{ name: 'audio', type: 'float32', dims: ['batch', 16000] }],
    outputs: [
      { name: 'va', type: 'float32', dims: ['batch', 3] },
      { name: 'embedding', type: 'float32', dims: ['batch', 32] },
    ],
    windowSamples: 16000,
    affect: { output: 'va', arousal: 0, dominance: 1, valence: 2, range: [-1, 1], embedding: 'embedding' },
  },
  'speech-va': {
    id: 'speech-va',
    role: 'speech',
    description:
      'Trained valence/arousal model (EmoDB + RAVDESS acted speech): in-graph acoustic features (log-mel, energy, ' +
      'pitch/voicing) pooled over voiced frames, an ensemble of 7 speaker-fold MLPs; sigma is the calibrated ensemble spread.',
    fixture: false,
    bundled: true,
    source: 'training/speech (npm run train:speech); card: models/speech-va/MODEL_CARD.md',
    license: 'CC-BY-NC-SA-4.0 AND EmoDB-research-only',
    files: [
      {
        path: 'model.onnx',
        url: null,
        sha256: 'a2b65c6482702846327241e73159fa59c58af14c17de84b380ecee0d9f9f97b4',
        sizeBytes: 777036,
      },
    ],
    onnxFile: 'model.onnx',
    inputs: [{ name: 'audio', type: 'float32', dims: ['batch', 'samples'] }],
    outputs: [
      { name: 'va', type: 'float32', dims: ['batch', 2] },
      { name: 'sigma', type: 'float32', dims: ['batch', 2] },
      { name: 'voiced', type: 'float32', dims: ['batch', 1] },
      { name: 'embedding', type: 'float32', dims: ['batch', 135] },
    ],
    windowSamples: 16000,
    inputNormalization: 'none',
    affect: { output: 'va', valence: 0, arousal: 1, range: [-1, 1], sigma: 'sigma', voiced: 'voiced', embedding: 'embedding' },
  },
  'wav2vec2-msp-dim': {
    id: 'wav2vec2-msp-dim',
    role: 'speech',
    description:
      "audeering's wav2vec2-large-robust fine-tuned on MSP-Podcast (arousal, dominance, valence), exported to ONNX " +
      '(see docs/models.md "Exporting the audeering model"); input is raw 16 kHz audio of any length.',
    fixture: false,
    source: AUDEERING_SOURCE,
    license: 'CC-BY-NC-SA-4.0',
    files: [{ path: 'model.onnx', url: null, sha256: null, sizeBytes: null }],
    onnxFile: 'model.onnx',
    // names as produced by audeering's own export recipe (torch.onnx.export with input_names=['signal'],
    // output_names=['hidden_states', 'logits'])
    inputs: [{ name: 'signal', type: 'float32', dims: ['batch', 'samples'] }],
    outputs: [
      { name: 'hidden_states', type: 'float32', dims: ['batch', 1024] },
      { name: 'logits', type: 'float32', dims: ['batch', 3] },
    ],
    windowSamples: null,
    inputNormalization: 'zero-mean-unit-var',
    affect: { output: 'logits', arousal: 0, dominance: 1, valence: 2, range: [0, 1], embedding: 'hidden_states' },
  },
  'wav2vec2-base-dim': {
    id: 'wav2vec2-base-dim',
    role: 'speech',
    description:
      'A base-size (≈95M parameters) wav2vec 2.0 dimensional model with the same contract as wav2vec2-msp-dim ' +
      '(your own export of a base-size fine-tune; see docs/models.md).',
    fixture: false,
    source: 'https://huggingface.co/facebook/wav2vec2-base (fine-tune and export your own; docs/models.md)',
    license: 'Apache-2.0 (base weights); your fine-tune’s own license',
    files: [{ path: 'model.onnx', url: null, sha256: null, sizeBytes: null }],
    onnxFile: 'model.onnx',
    inputs: [{ name: 'signal', type: 'float32', dims: ['batch', 'samples'] }],
    outputs: [
      { name: 'hidden_states', type: 'float32', dims: ['batch', 768] },
      { name: 'logits', type: 'float32', dims: ['batch', 3] },
    ],
    windowSamples: null,
    inputNormalization: 'zero-mean-unit-var',
    affect: { output: 'logits', arousal: 0, dominance: 1, valence: 2, range: [0, 1], embedding: 'hidden_states' },
  },
  'text-classifier-fixture': {
    id: 'text-classifier-fixture',
    role: 'text-classifier',
    description: 'Tiny BERT-layout GoEmotions classifier (lexicon + seeded weights) for tests; loads through transformers.js.',
    fixture: true,
    source: 'models/fixtures/text-graphs.ts (built by npm run models:fixtures)',
    license: 'MIT',
    files: [
      { path: 'text-classifier-fixture/config.json', url: null, sha256: '1f67764f8afa145139f3f0195e21da91c269969bf09f646e33e6af666be1cdf8', sizeBytes: 1399 },
      {
        path: 'text-classifier-fixture/tokenizer.json',
        url: null,
        sha256: 'f22dafde274cef198f93f45036212b99fba0adb363701bcb590b41355d98184e',
        sizeBytes: 5324,
      },
      {
        path: 'text-classifier-fixture/tokenizer_config.json',
        url: null,
        sha256: 'a0183fad45b69a5798bbb03d39e534e487960cac347b117f7d60fbd89b1be288',
        sizeBytes: 207,
      },
      {
        path: 'text-classifier-fixture/onnx/model.onnx',
        url: null,
        sha256: 'ebfa636cc414af0a84b1afde2bc1836fa65d26982b895a110fd7df85a25a38a1',
        sizeBytes: 44880,
      },
    ],
    onnxFile: 'text-classifier-fixture/onnx/model.onnx',
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 'int64', dims: ['batch', 'sequence'] },
    ],
    outputs: [{ name: 'logits', type: 'float32', dims: ['batch', 28] }],
    labels: GO_EMOTIONS_LABELS,
  },
  'text-embed-fixture': {
    id: 'text-embed-fixture',
    role: 'text-embed',
    description: 'Tiny BERT-layout sentence-embedding model (seeded + rated-lexicon word vectors) for the zero-shot path in tests.',
    fixture: true,
    source: 'models/fixtures/text-graphs.ts (built by npm run models:fixtures)',
    license: 'MIT',
    files: [
      { path: 'text-embed-fixture/config.json', url: null, sha256: 'c45f9a131feb6fc99a81d14b5cf76e3bc5c71058af156676e802ddef0fb5fcec', sizeBytes: 258 },
      { path: 'text-embed-fixture/tokenizer.json', url: null, sha256: 'f22dafde274cef198f93f45036212b99fba0adb363701bcb590b41355d98184e', sizeBytes: 5324 },
      {
        path: 'text-embed-fixture/tokenizer_config.json',
        url: null,
        sha256: 'a0183fad45b69a5798bbb03d39e534e487960cac347b117f7d60fbd89b1be288',
        sizeBytes: 207,
      },
      { path: 'text-embed-fixture/onnx/model.onnx', url: null, sha256: 'a90c4a6913175601b209a2eb0235b3da22f0d10f62350a12b41b9cf3358c2067', sizeBytes: 30351 },
    ],
    onnxFile: 'text-embed-fixture/onnx/model.onnx',
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 'int64', dims: ['batch', 'sequence'] },
    ],
    outputs: [{ name: 'last_hidden_state', type: 'float32', dims: ['batch', 'sequence', 32] }],
  },
  'text-emobank': {
    id: 'text-emobank',
    role: 'text-regression',
    description:
      'Trained valence/arousal/dominance text model (EmoBank train split): GloVe-initialised word vectors + a VADER valence ' +
      'channel, 1-D convolutions, mean/max pooling; confidence = fraction of the words it knows. Loads offline through transformers.js.',
    fixture: false,
    bundled: true,
    source: 'training/text (npm run train:text); card: models/text-emobank/MODEL_CARD.md',
    license: 'CC-BY-SA-4.0 (EmoBank) AND PDDL-1.0 (GloVe vectors) AND MIT (VADER lexicon)',
    files: [
      { path: 'config.json', url: null, sha256: '392686cb4e4d47825818f3c67861b289ab7439a49e825e3ab9bb5bdfbd6d8a6e', sizeBytes: 497 },
      { path: 'tokenizer.json', url: null, sha256: '6e45cf6e722f804fbbac5e0e12320ea437b1f952cf1287412a64fd01b4f9cf97', sizeBytes: 428780 },
      { path: 'tokenizer_config.json', url: null, sha256: 'a0183fad45b69a5798bbb03d39e534e487960cac347b117f7d60fbd89b1be288', sizeBytes: 207 },
      { path: 'onnx/model.onnx', url: null, sha256: '0e4ffbea367e35412d0a2356902c35e88d406d291dc49c1121510c75c9df47b4', sizeBytes: 5941294 },
    ],
    onnxFile: 'onnx/model.onnx',
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 'int64', dims: ['batch', 'sequence'] },
    ],
    outputs: [
      { name: 'vad', type: 'float32', dims: ['batch', 3] },
      { name: 'known', type: 'float32', dims: ['batch', 1] },
    ],
  },
  'fusion-fixture': {
    id: 'fusion-fixture',
    role: 'fusion',
    description: 'Tiny learned-fusion model with the documented fusion contract (masks for missing modalities, log-variance out).',
    fixture: true,
    source: 'models/fixtures/fusion-graph.ts (built by npm run models:fixtures)',
    license: 'MIT',
    files: [{ path: 'fusion-fixture.onnx', url: null, sha256: '4e380a1c9c2484e83a58a385c130444441a3193bc941fac82583f04a4cb3b8d7', sizeBytes: 5557 }],
    onnxFile: 'fusion-fixture.onnx',
    inputs: [
      { name: 'speech_emb', type: 'float32', dims: ['batch', 32] },
      { name: 'text_emb', type: 'float32', dims: ['batch', 32] },
      { name: 'speech_mask', type: 'float32', dims: ['batch', 1] },
      { name: 'text_mask', type: 'float32', dims: ['batch', 1] },
    ],
    outputs: [
      { name: 'va', type: 'float32', dims: ['batch', 2] },
      { name: 'log_var', type: 'float32', dims: ['batch', 2] },
    ],
  },
  'roberta-go-emotions': {
    id: 'roberta-go-emotions',
    role: 'text-classifier',
    description: 'RoBERTa-base fine-tuned on GoEmotions (28 labels, multi-label), ONNX export by SamLowe.',
    fixture: false,
    source: 'https://huggingface.co/SamLowe/roberta-base-go_emotions-onnx',
    license: 'MIT',
    files: [
      { path: 'config.json', url: `${HF}/SamLowe/roberta-base-go_emotions-onnx/resolve/main/config.json`, sha256: null, sizeBytes: null },
      { path: 'tokenizer.json', url: `${HF}/SamLowe/roberta-base-go_emotions-onnx/resolve/main/tokenizer.json`, sha256: null, sizeBytes: null },
      { path: 'tokenizer_config.json', url: `${HF}/SamLowe/roberta-base-go_emotions-onnx/resolve/main/tokenizer_config.json`, sha256: null, sizeBytes: null },
      { path: 'onnx/model.onnx', url: `${HF}/SamLowe/roberta-base-go_emotions-onnx/resolve/main/onnx/model.onnx`, sha256: null, sizeBytes: null },
    ],
    onnxFile: 'onnx/model.onnx',
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 'int64', dims: ['batch', 'sequence'] },
    ],
    outputs: [{ name: 'logits', type: 'float32', dims: ['batch', 28] }],
    labels: GO_EMOTIONS_LABELS,
  },
  'minilm-l6': {
    id: 'minilm-l6',
    role: 'text-embed',
    description: 'all-MiniLM-L6-v2 sentence embeddings (384 dims), ONNX export by Xenova; zero-shot via anchor terms.',
    fixture: false,
    source: 'https://huggingface.co/Xenova/all-MiniLM-L6-v2',
    license: 'Apache-2.0',
    files: [
      { path: 'config.json', url: `${HF}/Xenova/all-MiniLM-L6-v2/resolve/main/config.json`, sha256: null, sizeBytes: null },
      { path: 'tokenizer.json', url: `${HF}/Xenova/all-MiniLM-L6-v2/resolve/main/tokenizer.json`, sha256: null, sizeBytes: null },
      { path: 'tokenizer_config.json', url: `${HF}/Xenova/all-MiniLM-L6-v2/resolve/main/tokenizer_config.json`, sha256: null, sizeBytes: null },
      { path: 'onnx/model.onnx', url: `${HF}/Xenova/all-MiniLM-L6-v2/resolve/main/onnx/model.onnx`, sha256: null, sizeBytes: null },
    ],
    onnxFile: 'onnx/model.onnx',
    inputs: [
      { name: 'input_ids', type: 'int64', dims: ['batch', 'sequence'] },
      { name: 'attention_mask', type: 'int64', dims: ['batch', 'sequence'] },
      { name: 'token_type_ids', type: 'int64', dims: ['batch', 'sequence'] },
    ],
    outputs: [{ name: 'last_hidden_state', type: 'float32', dims: ['batch', 'sequence', 384] }],
  },
  'vosk-small-en': {
    id: 'vosk-small-en',
    role: 'asr',
    description: 'Vosk small English model (≈40 MB, streaming, CPU) for transcripts; used by models/asr.',
    fixture: false,
    source: 'https://alphacephei.com/vosk/models',
    license: 'Apache-2.0',
    files: [
      {
        path: 'vosk-model-small-en-us-0.15.zip',
        url: 'https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip',
        sha256: null,
        sizeBytes: null,
        unpack: 'zip',
      },
    ],
    inputs: [],
    outputs: [],
  },
} as const satisfies Record<string, ModelSpec>;

/** A known model id. */
export type ModelId = keyof typeof MODEL_SPECS;

/** Every spec, as a list. */
export function listModelSpecs(): ModelSpec[] {
  return Object.values(MODEL_SPECS as Record<string, ModelSpec>);
}

/** The spec for an id, or undefined. */
export function findModelSpec(id: string): ModelSpec | undefined {
  return (MODEL_SPECS as Record<string, ModelSpec>)[id];
}
