import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { OrtWorkerSession } from '../../models/worker/host.js';
import { FIXTURES_DIR } from '../../models/files.js';
import {
  assertDeviceAvailable,
  parseDevice,
  providersFor,
  webgpuLikely,
  webgpuMayWork,
  cudaProviderInstalled,
  vulkanHardwareDrivers,
  vulkanIcdSources,
  VULKAN_ICD_DIRS,
} from '../../models/device.js';
import { REPO_ROOT } from '../../core/config.js';
import { loadSpeechModel, loadTextModel } from '../../models/registry.js';
import { AffectError } from '../../core/errors.js';

const SPEECH = path.join(FIXTURES_DIR, 'speech-fixture.onnx');

describe('device selection', () => {
  it('parses --device and names the choices on a bad one', () => {
    expect(parseDevice('cpu')).toBe('cpu');
    expect(() => parseDevice('tpu')).toThrow(/Should be one of: auto, cuda, webgpu, cpu/);
  });

  it('auto always ends with cpu and only lists providers that can exist here', () => {
    const list = providersFor('auto');
    expect(list.at(-1)).toBe('cpu');
    expect(list.includes('cuda')).toBe(cudaProviderInstalled());
    expect(list.includes('webgpu')).toBe(webgpuLikely());
  });

  it('auto tries WebGPU only with a hardware Vulkan driver: software rasterisers (lavapipe, SwiftShader) and empty driver folders do not count', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'icd-'));
    const soft = path.join(root, 'soft');
    const hard = path.join(root, 'hard');
    mkdirSync(soft);
    mkdirSync(hard);
    writeFileSync(path.join(soft, 'lvp_icd.x86_64.json'), '{}');
    writeFileSync(path.join(soft, 'vk_swiftshader_icd.json'), '{}');
    writeFileSync(path.join(hard, 'nvidia_icd.json'), '{}');
    expect(vulkanHardwareDrivers([soft, path.join(root, 'missing')])).toEqual([]);
    expect(vulkanHardwareDrivers([soft, hard])).toEqual([path.join(hard, 'nvidia_icd.json')]);
    if (process.platform === 'linux') expect(webgpuLikely()).toBe(webgpuMayWork() && vulkanHardwareDrivers().length > 0);
  });

  it('finds driver manifests where the Vulkan loader does: VK_DRIVER_FILES (files or folders) replaces the search, VK_ADD_DRIVER_FILES and XDG dirs add to it', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'icd-env-'));
    const mounted = path.join(root, 'usr-local-nvidia', 'share', 'vulkan', 'icd.d');
    mkdirSync(mounted, { recursive: true });
    const nvidia = path.join(mounted, 'nvidia_icd.json');
    writeFileSync(nvidia, '{}');
    const lvp = path.join(root, 'lvp_icd.x86_64.json');
    writeFileSync(lvp, '{}');
    // A GPU container: the manifest outside the standard folders, named by VK_DRIVER_FILES.
    expect(vulkanIcdSources({ VK_DRIVER_FILES: `${nvidia}:${lvp}` })).toEqual([nvidia, lvp]);
    expect(vulkanHardwareDrivers(vulkanIcdSources({ VK_DRIVER_FILES: `${nvidia}:${lvp}` }))).toEqual([nvidia]);
    expect(vulkanHardwareDrivers(vulkanIcdSources({ VK_ICD_FILENAMES: mounted }))).toEqual([nvidia]);
    expect(vulkanIcdSources({ VK_DRIVER_FILES: lvp, VK_ICD_FILENAMES: nvidia })).toEqual([lvp]); // the newer name wins
    // Without it: the standard folders, then XDG_DATA_DIRS/vulkan/icd.d, plus VK_ADD_DRIVER_FILES.
    const xdg = vulkanIcdSources({ XDG_DATA_DIRS: path.join(root, 'usr-local-nvidia', 'share') });
    expect(xdg.slice(0, VULKAN_ICD_DIRS.length)).toEqual([...VULKAN_ICD_DIRS]);
    expect(xdg).toContain(mounted);
    expect(vulkanHardwareDrivers(xdg.filter((d) => d.startsWith(root)))).toEqual([nvidia]);
    expect(vulkanIcdSources({ VK_ADD_DRIVER_FILES: nvidia })).toEqual([...VULKAN_ICD_DIRS, nvidia]);
  });

  it('run and serve with --device auto on a machine without a GPU driver print no Vulkan/Dawn/XDG_RUNTIME_DIR noise and log the provider chosen', () => {
    if (webgpuLikely() || cudaProviderInstalled()) return; // a GPU machine: auto may legitimately try it
    const env: NodeJS.ProcessEnv = { ...process.env, CIRCUMPLEX_LOG_LEVEL: 'info' };
    delete env.CIRCUMPLEX_DEVICE;
    delete env.CIRCUMPLEX_VOSK_MODEL;
    const wav = path.join(REPO_ROOT, 'test', 'fixtures', 'audio', 'speech.wav');
    const run = spawnSync(process.execPath, ['bin/circumplex.mjs', 'run', '--input', wav, '--device', 'auto', '--json'], {
      cwd: REPO_ROOT,
      env,
      timeout: 90_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const serve = spawnSync(process.execPath, ['bin/circumplex.mjs', 'serve', '--port', '0', '--input', wav, '--device', 'auto', '--exit-on-end'], {
      cwd: REPO_ROOT,
      env,
      timeout: 90_000,
    });
    for (const [name, r] of [
      ['run', run],
      ['serve', serve],
    ] as const) {
      const err = r.stderr.toString();
      expect(r.status, `${name}: ${err}`).toBe(0);
      expect(err, name).not.toMatch(/vkCreateInstance|VK_ERROR|Vulkan|Dawn|dawn|XDG_RUNTIME_DIR|No supported adapters/);
      // The provider is still logged once per model: cpu, with nothing "unavailable".
      expect(err, name).toMatch(/"msg":"model speech-va runs on cpu, 1 intra-op thread \(auto: 0.74 MiB model\)"/);
    }
  });

  it('falls back provider by provider in the worker and reports what failed', async () => {
    // webgpu is tried for real: on a machine without an adapter ORT refuses it and cpu takes over
    const s = await OrtWorkerSession.open(SPEECH, { providers: ['webgpu', 'cpu'] });
    try {
      expect(['webgpu', 'cpu']).toContain(s.provider);
      if (s.provider === 'cpu') expect(s.failedProviders[0]?.provider).toBe('webgpu');
    } finally {
      await s.close();
    }
  });

  it('an explicit provider that fails in the worker is AFFECT_ERR_DEVICE_UNAVAILABLE', async () => {
    if (webgpuMayWork()) return; // a machine with a WebGPU adapter: nothing to fail
    const err = (await OrtWorkerSession.open(SPEECH, { providers: ['webgpu'] }).catch((e: unknown) => e)) as AffectError;
    expect(err).toBeInstanceOf(AffectError);
    expect(err.code).toBe('AFFECT_ERR_DEVICE_UNAVAILABLE');
    expect(err.message).toContain('webgpu');
  });

  it('explicit unavailable devices fail before loading, for speech and text models', async () => {
    const logger = pino({ level: 'silent' });
    if (!webgpuMayWork()) {
      expect(() => assertDeviceAvailable('webgpu', 'x')).toThrow(AffectError);
      await expect(loadSpeechModel('speech-fixture', { device: 'webgpu', logger })).rejects.toMatchObject({ code: 'AFFECT_ERR_DEVICE_UNAVAILABLE' });
    }
    if (!cudaProviderInstalled()) {
      await expect(loadTextModel('text-classifier-fixture', { device: 'cuda', logger })).rejects.toMatchObject({
        code: 'AFFECT_ERR_DEVICE_UNAVAILABLE',
        hint: expect.stringContaining('npm ci --onnxruntime-node-install=cuda12'),
      });
    }
  });
});

describe('closing a worker session with runs in flight', () => {
  it('finishes every started run, then releases the session (no "worker exited", no hang, no native abort)', async () => {
    // Before: close() raced the pending runs (ORT defers run() to a setImmediate), so runs failed
    // with "inference worker exited", close() could hang with the worker unref'd, and a CLI process
    // (`run | head`) sometimes aborted with "terminate called after throwing an instance of Napi::Error".
    for (let round = 0; round < 3; round++) {
      const s = await OrtWorkerSession.open(SPEECH, { providers: ['cpu'] });
      const name = s.inputNames[0] ?? 'audio';
      const runs = Array.from({ length: 4 }, () =>
        s.run({ [name]: { type: 'float32', data: new Float32Array(4 * 16000), dims: [4, 16000] } }).then(
          () => 'ok',
          (e: unknown) => (e as Error).message,
        ),
      );
      await s.close();
      expect(await Promise.all(runs)).toEqual(['ok', 'ok', 'ok', 'ok']);
      // A run asked for after close is refused clearly.
      await expect(s.run({ [name]: { type: 'float32', data: new Float32Array(16000), dims: [1, 16000] } })).rejects.toThrow(/model is closed/);
    }
  }, 30_000);
});
