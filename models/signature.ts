/** Checks a loaded session's input/output names against the manifest. */
import { AffectError } from '../core/errors.js';
import type { ModelSpec } from './manifest.js';

/**
 * Throws AFFECT_ERR_MODEL_SIGNATURE listing expected vs found names when the session lacks an
 * input or output the manifest names (extra outputs are fine; extra inputs are not, since we could
 * not feed them).
 */
export function assertSignature(
  spec: ModelSpec,
  file: string,
  inputNames: readonly string[],
  outputNames: readonly string[],
  /** transformers.js feeds optional inputs (token_type_ids) itself, so text models may have more. */
  allowExtraInputs = false,
): void {
  const wantIn = spec.inputs.map((t) => t.name);
  const wantOut = spec.outputs.map((t) => t.name);
  const missingIn = wantIn.filter((n) => !inputNames.includes(n));
  const extraIn = allowExtraInputs ? [] : inputNames.filter((n) => !wantIn.includes(n));
  const missingOut = wantOut.filter((n) => !outputNames.includes(n));
  if (missingIn.length === 0 && extraIn.length === 0 && missingOut.length === 0) return;
  const fmt = (a: readonly string[]): string => `[${a.join(', ')}]`;
  throw new AffectError(
    'AFFECT_ERR_MODEL_SIGNATURE',
    `model ${spec.id}: ${file} has inputs ${fmt(inputNames)} and outputs ${fmt(outputNames)}; ` +
      `the manifest expects inputs ${fmt(wantIn)} and outputs ${fmt(wantOut)}`,
    {
      stage: spec.id,
      hint: 'the file is not the model this id describes: re-export it with the documented names (docs/models.md), or fix the manifest entry',
    },
  );
}
