/**
 * Emotion terms with human-rated positions for `circumplex validate`.
 *
 * Two sources, kept apart because their scales differ:
 *
 * 1. `russell` — Russell, J. A. (1980). A circumplex model of affect. Journal of Personality and
 *    Social Psychology, 39(6), 1161–1178. The 28 terms in core/emotion-terms.ts: directions only,
 *    every term on the unit circle (valence = cos θ, arousal = sin θ).
 *
 * 2. `nrc-vad` — Mohammad, S. M. (2018). Obtaining Reliable Human Ratings of Valence, Arousal, and
 *    Dominance for 20,000 English Words. Proceedings of ACL 2018, 174–184.
 *    https://saifmohammad.com/WebPages/nrc-vad.html — crowdsourced best–worst scaling, scores in
 *    [0, 1]. The values below are the lexicon's v1 valence and arousal columns, copied unchanged for
 *    187 emotion/mood words (adjectives describing a person's state) from the public copy of
 *    NRC-VAD-Lexicon.txt at github.com/alexander-schott/LyricGenerator (commit
 *    08de2d24845e2a76f741cae2680af9fc0d8c714f). Scale conversion to the circumplex: x' = 2x − 1, so
 *    0.5 (neutral) maps to 0 and the ends to ±1. The lexicon is free for research use; commercial use
 *    needs a licence from the NRC (see the URL above). Not every term is rated: the words were chosen
 *    for coverage of all four quadrants, not sampled at random, and the selection is ours.
 *    Note that NRC arousal for some words differs from the Russell placement (e.g. "tense" 0.439,
 *    "aroused" 0.952); that is the human data, not a typo.
 */
import { RUSSELL_1980_TERMS } from '../../core/emotion-terms.js';
import { angleDegOf } from './stats.js';

/** Where a rated term comes from. */
export type TermSource = 'russell-1980' | 'nrc-vad-2018';

/** A term with its human-rated position on the circumplex (both axes in [-1, 1]). */
export interface RatedTerm {
  readonly term: string;
  readonly source: TermSource;
  readonly valence: number;
  readonly arousal: number;
  /** Direction on the circumplex, degrees in [0, 360): 0 = pleasant, 90 = aroused. */
  readonly angleDeg: number;
}

/** Which terms to validate against. */
export type TermSet = 'russell' | 'extended' | 'all';

export const TERM_SETS: readonly TermSet[] = ['russell', 'extended', 'all'];

/** NRC VAD v1 (Mohammad 2018) raw scores in [0, 1]: [term, valence, arousal]. */
// prettier-ignore
const NRC_VAD_2018_RAW: ReadonlyArray<readonly [string, number, number]> = [
  ['affectionate', 0.949, 0.422],
  ['afraid', 0.010, 0.775],
  ['aggravated', 0.079, 0.760],
  ['agitated', 0.444, 0.882],
  ['alarmed', 0.188, 0.822],
  ['alert', 0.479, 0.820],
  ['amazed', 0.796, 0.779],
  ['amused', 0.942, 0.847],
  ['angry', 0.122, 0.830],
  ['annoyed', 0.104, 0.783],
  ['anxious', 0.281, 0.875],
  ['apathetic', 0.188, 0.292],
  ['appalled', 0.194, 0.792],
  ['appreciative', 0.857, 0.380],
  ['apprehensive', 0.406, 0.592],
  ['aroused', 0.708, 0.952],
  ['ashamed', 0.156, 0.588],
  ['asleep', 0.604, 0.100],
  ['astonished', 0.510, 0.775],
  ['awestruck', 0.615, 0.767],
  ['baffled', 0.151, 0.600],
  ['bashful', 0.400, 0.406],
  ['blissful', 0.885, 0.639],
  ['bored', 0.153, 0.167],
  ['brokenhearted', 0.130, 0.598],
  ['brooding', 0.327, 0.367],
  ['bummed', 0.296, 0.430],
  ['calm', 0.875, 0.100],
  ['carefree', 0.755, 0.220],
  ['chagrined', 0.112, 0.745],
  ['charmed', 0.938, 0.570],
  ['cheerful', 0.990, 0.720],
  ['cheerless', 0.204, 0.373],
  ['cheery', 0.949, 0.657],
  ['comfortable', 0.927, 0.163],
  ['composed', 0.684, 0.385],
  ['concerned', 0.292, 0.698],
  ['confident', 0.765, 0.324],
  ['confused', 0.220, 0.650],
  ['contempt', 0.206, 0.635],
  ['content', 0.764, 0.296],
  ['contented', 0.857, 0.612],
  ['cranky', 0.194, 0.776],
  ['crestfallen', 0.235, 0.346],
  ['curious', 0.635, 0.600],
  ['cynical', 0.156, 0.760],
  ['dejected', 0.104, 0.654],
  ['delighted', 0.938, 0.664],
  ['depressed', 0.024, 0.445],
  ['desperate', 0.083, 0.842],
  ['despondent', 0.133, 0.378],
  ['determined', 0.760, 0.528],
  ['devastated', 0.120, 0.544],
  ['disappointed', 0.071, 0.472],
  ['discouraged', 0.220, 0.304],
  ['disgruntled', 0.104, 0.658],
  ['disgusted', 0.051, 0.773],
  ['disheartened', 0.153, 0.343],
  ['dismayed', 0.165, 0.735],
  ['dispirited', 0.204, 0.280],
  ['displeased', 0.135, 0.690],
  ['dissatisfied', 0.042, 0.561],
  ['distracted', 0.194, 0.392],
  ['distraught', 0.115, 0.903],
  ['distressed', 0.143, 0.771],
  ['disturbed', 0.125, 0.870],
  ['docile', 0.604, 0.259],
  ['doubtful', 0.250, 0.465],
  ['downcast', 0.071, 0.500],
  ['downhearted', 0.119, 0.461],
  ['dreamy', 0.837, 0.350],
  ['dreary', 0.260, 0.490],
  ['droopy', 0.438, 0.350],
  ['drowsy', 0.375, 0.180],
  ['dull', 0.194, 0.120],
  ['eager', 0.521, 0.812],
  ['easygoing', 0.823, 0.276],
  ['ecstatic', 0.875, 0.769],
  ['edgy', 0.281, 0.895],
  ['elated', 0.792, 0.960],
  ['embarrassed', 0.184, 0.560],
  ['enchanted', 0.917, 0.633],
  ['encouraged', 0.953, 0.702],
  ['energetic', 0.847, 0.868],
  ['enraged', 0.083, 0.962],
  ['entertained', 0.902, 0.644],
  ['enthralled', 0.745, 0.602],
  ['enthusiastic', 0.885, 0.868],
  ['envious', 0.110, 0.754],
  ['euphoric', 0.745, 0.904],
  ['exasperated', 0.229, 0.816],
  ['excited', 0.908, 0.931],
  ['exhausted', 0.123, 0.423],
  ['exhilarated', 0.890, 0.963],
  ['forlorn', 0.316, 0.571],
  ['frantic', 0.210, 0.890],
  ['frazzled', 0.344, 0.415],
  ['frightened', 0.153, 0.817],
  ['frisky', 0.700, 0.632],
  ['frustrated', 0.080, 0.651],
  ['fulfilled', 0.896, 0.480],
  ['fuming', 0.240, 0.660],
  ['furious', 0.062, 0.953],
  ['giddy', 0.438, 0.847],
  ['glad', 0.938, 0.760],
  ['gleeful', 0.906, 0.806],
  ['gloomy', 0.107, 0.410],
  ['glum', 0.244, 0.337],
  ['grateful', 0.958, 0.353],
  ['gratified', 0.781, 0.519],
  ['grieving', 0.093, 0.673],
  ['groggy', 0.235, 0.265],
  ['grouchy', 0.143, 0.708],
  ['grumpy', 0.198, 0.808],
  ['guilty', 0.135, 0.770],
  ['haggard', 0.115, 0.510],
  ['happy', 1.000, 0.735],
  ['hateful', 0.071, 0.819],
  ['melancholy', 0.188, 0.260],
  ['mellow', 0.633, 0.069],
  ['miffed', 0.204, 0.726],
  ['miserable', 0.062, 0.461],
  ['moody', 0.245, 0.811],
  ['morose', 0.240, 0.663],
  ['mortified', 0.073, 0.731],
  ['peaceful', 0.867, 0.108],
  ['peeved', 0.156, 0.750],
  ['pensive', 0.540, 0.220],
  ['perky', 0.896, 0.792],
  ['perplexed', 0.312, 0.705],
  ['pessimistic', 0.088, 0.394],
  ['petrified', 0.221, 0.625],
  ['placid', 0.640, 0.317],
  ['playful', 0.892, 0.688],
  ['pleased', 0.939, 0.548],
  ['reassured', 0.854, 0.186],
  ['refreshed', 0.910, 0.377],
  ['regretful', 0.167, 0.480],
  ['rejected', 0.102, 0.480],
  ['rejuvenated', 0.809, 0.673],
  ['relaxed', 0.865, 0.090],
  ['relieved', 0.896, 0.314],
  ['reluctant', 0.292, 0.630],
  ['remorseful', 0.347, 0.429],
  ['rueful', 0.173, 0.429],
  ['sad', 0.225, 0.333],
  ['satisfied', 0.959, 0.510],
  ['scared', 0.146, 0.828],
  ['scornful', 0.173, 0.608],
  ['secure', 0.844, 0.380],
  ['sedate', 0.656, 0.157],
  ['seething', 0.312, 0.821],
  ['sentimental', 0.583, 0.378],
  ['serene', 0.802, 0.132],
  ['shaken', 0.344, 0.657],
  ['sheepish', 0.326, 0.441],
  ['shocked', 0.292, 0.773],
  ['shy', 0.280, 0.153],
  ['skeptical', 0.207, 0.500],
  ['skittish', 0.156, 0.815],
  ['sleepy', 0.604, 0.125],
  ['sluggish', 0.224, 0.124],
  ['smug', 0.198, 0.552],
  ['snug', 0.867, 0.173],
  ['sympathetic', 0.796, 0.434],
  ['tearful', 0.208, 0.500],
  ['tense', 0.396, 0.439],
  ['terrified', 0.090, 0.902],
  ['testy', 0.135, 0.640],
  ['thankful', 0.969, 0.344],
  ['thoughtful', 0.667, 0.290],
  ['threatened', 0.052, 0.928],
  ['thrilled', 0.898, 0.818],
  ['tickled', 0.755, 0.707],
  ['timid', 0.327, 0.276],
  ['tired', 0.125, 0.317],
  ['uncomfortable', 0.188, 0.610],
  ['unconcerned', 0.562, 0.283],
  ['uneasy', 0.115, 0.598],
  ['unhappy', 0.112, 0.500],
  ['uninterested', 0.365, 0.240],
  ['unsettled', 0.208, 0.647],
  ['unsure', 0.143, 0.580],
  ['untroubled', 0.750, 0.213],
  ['upbeat', 0.878, 0.531],
  ['upset', 0.071, 0.680],
  ['uptight', 0.184, 0.716],
];

/** NRC VAD (0..1) to the circumplex scale (−1..1). */
export function nrcToCircumplex(x: number): number {
  return 2 * x - 1;
}

/** Russell's (1980) 28 terms on the unit circle. */
export const RUSSELL_TERMS: readonly RatedTerm[] = RUSSELL_1980_TERMS.map((t) => ({
  term: t.term,
  source: 'russell-1980' as const,
  valence: t.valence,
  arousal: t.arousal,
  angleDeg: t.angleDeg,
}));

/** The 187 NRC VAD emotion words, converted to [-1, 1]. */
export const NRC_VAD_TERMS: readonly RatedTerm[] = NRC_VAD_2018_RAW.map(([term, v, a]) => {
  const valence = nrcToCircumplex(v);
  const arousal = nrcToCircumplex(a);
  return { term, source: 'nrc-vad-2018' as const, valence, arousal, angleDeg: angleDegOf(valence, arousal) };
});

/**
 * The terms of a set. `all` is Russell's 28 plus every NRC term not among them, so no word is
 * projected twice (Russell's placement wins for the overlap, which is where the circumplex check
 * is defined).
 */
export function selectTerms(set: TermSet): RatedTerm[] {
  switch (set) {
    case 'russell':
      return [...RUSSELL_TERMS];
    case 'extended':
      return [...NRC_VAD_TERMS];
    case 'all': {
      const seen = new Set(RUSSELL_TERMS.map((t) => t.term));
      return [...RUSSELL_TERMS, ...NRC_VAD_TERMS.filter((t) => !seen.has(t.term))];
    }
    default: {
      const never: never = set;
      throw new RangeError(`selectTerms: unknown term set "${String(never)}". Should be one of: ${TERM_SETS.join(', ')}`);
    }
  }
}

/** Citations for each source, copied into reports. */
export const TERM_SOURCES: Readonly<Record<TermSource, string>> = {
  'russell-1980':
    'Russell, J. A. (1980). A circumplex model of affect. Journal of Personality and Social Psychology, 39(6), 1161-1178. Directions only; unit circle.',
  'nrc-vad-2018':
    "Mohammad, S. M. (2018). Obtaining Reliable Human Ratings of Valence, Arousal, and Dominance for 20,000 English Words. ACL 2018. NRC VAD v1, 187 emotion words; x' = 2x - 1.",
};
