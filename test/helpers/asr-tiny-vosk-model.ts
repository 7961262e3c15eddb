/**
 * Builds a tiny but REAL Vosk model folder, deterministically, for tests that need libvosk to load
 * a model and decode (recogniser lifecycle, crash/restart, leak loops). It recognises nothing
 * useful: two one-state phones (1 = silence, 2 = "speech"), an nnet3 "acoustic model" that is one
 * fixed affine layer scoring frames by log energy (loud → phone 2, quiet → phone 1), and an HCLG
 * graph in which every stretch of phone 2 is the word "hello". Loud audio therefore yields
 * "hello ..." partials, and trailing silence triggers libvosk's endpointing (a final result).
 *
 * Files are written in the formats libvosk (Kaldi + OpenFst) reads: text-mode Kaldi objects for
 * am/final.mdl and an OpenFst binary VectorFst for graph/HCLG.fst.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** MFCC feature dim (Kaldi default num-ceps). */
const DIM = 13;
/** Log-energy threshold between "silence" and "speech" frames. */
const ENERGY_THRESHOLD = 14;

function transitionModel(): string {
  // Phones 1 and 2 share one topology: one emitting state with a self-loop, then the final state.
  // Triples (phone, hmm-state, pdf): transition ids 1,2 = phone 1 loop/forward; 3,4 = phone 2.
  return [
    '<TransitionModel> ',
    '<Topology> ',
    '<TopologyEntry> ',
    '<ForPhones> ',
    '1 2 ',
    '</ForPhones> ',
    '<State> 0 <PdfClass> 0 <Transition> 0 0.5 <Transition> 1 0.5 </State> ',
    '<State> 1 </State> ',
    '</TopologyEntry> ',
    '</Topology> ',
    '<Triples> 2 ',
    '1 0 0 ',
    '2 0 1 ',
    '</Triples> ',
    '<LogProbs> ',
    ' [ 0 -0.6931472 -0.6931472 -0.6931472 -0.6931472 ]',
    '</LogProbs> ',
    '</TransitionModel> ',
  ].join('\n');
}

function nnet(): string {
  // output = W x + b with x[0] = log energy: pdf 0 (silence) wins below the threshold, pdf 1 above.
  const row0 = [-1, ...Array<number>(DIM - 1).fill(0)];
  const row1 = [1, ...Array<number>(DIM - 1).fill(0)];
  return [
    '<Nnet3> ',
    `input-node name=input dim=${DIM}`,
    'component-node name=affine component=affine input=input',
    'output-node name=output input=affine objective=linear',
    '',
    '<NumComponents> 1 ',
    '<ComponentName> affine <FixedAffineComponent> <LinearParams>  [',
    `  ${row0.join(' ')}`,
    `  ${row1.join(' ')} ]`,
    `<BiasParams>  [ ${ENERGY_THRESHOLD} ${-ENERGY_THRESHOLD} ]`,
    '</FixedAffineComponent> ',
    '</Nnet3> ',
    '<LeftContext> 0 <RightContext> 0 <Priors> [ ]',
    '',
  ].join('\n');
}

/** An OpenFst binary VectorFst<StdArc> (tropical float weights). */
function vectorFst(start: number, states: Array<{ final: number; arcs: Array<[ilabel: number, olabel: number, weight: number, next: number]> }>): Buffer {
  const parts: Buffer[] = [];
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    parts.push(b);
  };
  const i64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    parts.push(b);
  };
  const f32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    parts.push(b);
  };
  const str = (s: string) => {
    i32(s.length);
    parts.push(Buffer.from(s, 'ascii'));
  };
  const numArcs = states.reduce((n, s) => n + s.arcs.length, 0);
  i32(2125659606); // kFstMagicNumber
  str('vector');
  str('standard');
  i32(2); // VectorFst file version
  i32(0); // flags: no symbol tables inside
  i64(3); // properties: kExpanded | kMutable (the rest unknown, computed on demand)
  i64(start);
  i64(states.length);
  i64(numArcs);
  for (const s of states) {
    f32(s.final);
    i64(s.arcs.length);
    for (const [il, ol, w, next] of s.arcs) {
      i32(il);
      i32(ol);
      f32(w);
      i32(next);
    }
  }
  return Buffer.concat(parts);
}

function hclg(): Buffer {
  // State 0: between words (final). Phone 2 entered from 0 emits "hello" (word 1); phone 1 emits nothing.
  return vectorFst(0, [
    {
      final: 0,
      arcs: [
        [3, 1, 0.5, 1],
        [1, 0, 0, 2],
      ],
    },
    {
      final: Number.POSITIVE_INFINITY,
      arcs: [
        [3, 0, 0, 1],
        [4, 0, 0, 0],
      ],
    },
    {
      final: Number.POSITIVE_INFINITY,
      arcs: [
        [1, 0, 0, 2],
        [2, 0, 0, 0],
      ],
    },
  ]);
}

/** Options of {@link buildTinyVoskModel}. */
export interface TinyVoskModelOptions {
  /**
   * Leave out graph/phones/word_boundary.int. libvosk then hits a Kaldi assertion
   * (CompactLatticeStateTimes: lat.Start() == 0) and aborts the process when it produces a final
   * result for this model: a real, deterministic libvosk crash for the isolation tests.
   */
  crashOnFinal?: boolean;
  /**
   * Trailing silence (s) libvosk's end-pointing rules 2, 3 and 4 wait for before a final result.
   * Default [0.3, 0.6, 1.0]; the official small English model uses [0.5, 1.0, 2.0], so its finals
   * come later after the speech than the voice activity detector ends a segment.
   */
  endpointSilenceS?: readonly [number, number, number];
}

/** Writes the tiny model into `dir` (created if needed) and returns `dir`. */
export function buildTinyVoskModel(dir: string, opts: TinyVoskModelOptions = {}): string {
  mkdirSync(path.join(dir, 'am'), { recursive: true });
  mkdirSync(path.join(dir, 'conf'), { recursive: true });
  mkdirSync(path.join(dir, 'graph', 'phones'), { recursive: true });
  writeFileSync(path.join(dir, 'am', 'final.mdl'), transitionModel() + '\n' + nnet());
  const [r2, r3, r4] = opts.endpointSilenceS ?? [0.3, 0.6, 1.0];
  writeFileSync(path.join(dir, 'conf', 'mfcc.conf'), '--use-energy=true\n--sample-frequency=16000\n--dither=0\n');
  writeFileSync(
    path.join(dir, 'conf', 'model.conf'),
    [
      '--min-active=20',
      '--max-active=200',
      '--beam=10.0',
      '--lattice-beam=2.0',
      '--acoustic-scale=1.0',
      '--frame-subsampling-factor=3',
      '--endpoint.silence-phones=1',
      `--endpoint.rule2.min-trailing-silence=${r2}`,
      `--endpoint.rule3.min-trailing-silence=${r3}`,
      `--endpoint.rule4.min-trailing-silence=${r4}`,
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'graph', 'HCLG.fst'), hclg());
  writeFileSync(path.join(dir, 'graph', 'words.txt'), '<eps> 0\nhello 1\n');
  if (!opts.crashOnFinal) writeFileSync(path.join(dir, 'graph', 'phones', 'word_boundary.int'), '1 nonword\n2 singleton\n');
  return dir;
}
