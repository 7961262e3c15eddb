/**
 * The house layout (docs/architecture.md): imports run down the floors src → streams → models → core and
 * clients → core. The ESLint rule `circumplex/import-floors` (scripts/eslint-floors.js) enforces it in
 * `npm run lint`; here it is checked on examples of each kind of import, then run over the real tree.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ESLint, RuleTester, type Rule } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/config.js';

interface FloorsModule {
  default: { rules: { 'import-floors': Rule.RuleModule } };
  FLOORS: Record<string, string[]>;
}
// A plain-JavaScript module (ESLint loads it from eslint.config.js): imported by URL, typed here.
const floors = (await import(pathToFileURL(path.join(REPO_ROOT, 'scripts', 'eslint-floors.js')).href)) as FloorsModule;
const rule = floors.default.rules['import-floors'];

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const root = '/repo';
const at = (file: string) => path.join(root, file);
const options = [{ root }];
const tester = new RuleTester({ languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: 'module' } });

describe('import floors: the rule', () => {
  tester.run('import-floors', rule, {
    valid: [
      { filename: at('core/errors.ts'), code: "import { z } from 'zod';\nimport { x } from './types.js';", options },
      {
        filename: at('models/speech-onnx.ts'),
        code: "import type { AudioWindow } from '../core/types.js';\nimport * as ort from 'onnxruntime-node';",
        options,
      },
      {
        filename: at('streams/operators/infer-speech.ts'),
        code: "import type { SpeechAffectModel } from '../../models/ports.js';\nimport { AffectError } from '../../core/errors.js';",
        options,
      },
      {
        filename: at('src/commands/watch.ts'),
        code: "import { CircumplexClient } from '../../clients/node-client.js';\nimport { affectPipeline } from '../../streams/pipeline.js';",
        options,
      },
      { filename: at('clients/client.ts'), code: "export * from '../core/protocol.js';", options },
      { filename: at('test/unit/x.test.ts'), code: "import { createEngine } from '../../src/engine.js';\nimport * as ort from 'onnxruntime-node';", options },
      { filename: at('bench/run-bench.ts'), code: "const t = await import('../test/helpers/asr-tiny-vosk-model.js');", options },
    ],
    invalid: [
      {
        filename: at('models/silero-vad.ts'),
        code: "import type { VoiceDetector } from '../streams/vad.js';",
        options,
        errors: [{ message: /^models\/ imports streams\/ \('\.\.\/streams\/vad\.js'\): models\/ may import core\// }],
      },
      {
        filename: at('core/types.ts'),
        code: "import type { TurnEvent } from '../streams/turns.js';",
        options,
        errors: [{ message: /^core\/ imports streams\/.*may import no other floor/ }],
      },
      {
        filename: at('clients/client.ts'),
        code: "import { AffectError } from '../src/errors.js';",
        options,
        errors: [{ message: /^clients\/ imports src\// }],
      },
      {
        filename: at('clients/client.ts'),
        code: "import type { AffectPoint } from '../streams/types.js';",
        options,
        errors: [{ message: /^clients\/ imports streams\// }],
      },
      {
        filename: at('streams/operators/x.ts'),
        code: "const m = await import('../../src/engine.js');",
        options,
        errors: [{ message: /^streams\/ imports src\// }],
      },
      { filename: at('streams/x.ts'), code: "export { createEngine } from '../src/engine.js';", options, errors: [{ message: /^streams\/ imports src\// }] },
      { filename: at('streams/x.ts'), code: "export * from '../src/engine.js';", options, errors: [{ message: /^streams\/ imports src\// }] },
      { filename: at('core/x.ts'), code: "type D = import('../models/ports.js').Device;", options, errors: [{ message: /^core\/ imports models\// }] },
      {
        filename: at('models/x.ts'),
        code: "import { fake } from '../test/helpers/fakes.js';",
        options,
        errors: [{ message: /^models\/ imports test\/.*outside it/ }],
      },
      { filename: at('src/x.ts'), code: "import x from '../../elsewhere/x.js';", options, errors: [{ message: /outside the repository/ }] },
      {
        filename: at('streams/x.ts'),
        code: "import * as ort from 'onnxruntime-node';",
        options,
        errors: [{ message: /model runtime 'onnxruntime-node': only models\// }],
      },
      { filename: at('src/x.ts'), code: "import { pipeline } from '@huggingface/transformers';", options, errors: [{ message: /only models\// }] },
    ],
  });
});

describe('import floors: the tree', () => {
  it('no file in core/, models/, streams/, clients/ or src/ imports upwards', async () => {
    const eslint = new ESLint({
      cwd: REPO_ROOT,
      overrideConfigFile: true,
      overrideConfig: [
        {
          files: ['**/*.ts'],
          languageOptions: { parser: tseslint.parser },
          plugins: { circumplex: floors.default },
          rules: { 'circumplex/import-floors': ['error', { root: REPO_ROOT }] },
        },
      ],
    });
    const results = await eslint.lintFiles(Object.keys(floors.FLOORS));
    const problems = results.flatMap((r) => r.messages.map((m) => `${path.relative(REPO_ROOT, r.filePath)}:${m.line}: ${m.message}`));
    expect(results.length).toBeGreaterThan(100);
    expect(problems).toEqual([]);
  }, 60_000);
});
