/** Test factory for `affect` pipeline events: a speech frame on stream `s` with fixed label/intensity, overridable. */
import type { AffectPoint, PipelineEvent } from '../../core/types.js';

/** An AffectPoint with the fields a test does not care about filled in. */
export function affectPoint(p: Pick<AffectPoint, 'tMs' | 'valence' | 'arousal'> & Partial<AffectPoint>): AffectPoint {
  return {
    streamId: 's',
    confidence: 0.8,
    label: 'x',
    intensity: 0.5,
    angleDeg: 0,
    modalities: ['speech'],
    droppedWindows: 0,
    velocity: { valence: 0, arousal: 0 },
    voiced: 1,
    ...p,
  };
}

/** The `affect` event carrying {@link affectPoint}. */
export function affectFrame(p: Parameters<typeof affectPoint>[0]): PipelineEvent {
  return { kind: 'affect', point: affectPoint(p) };
}
