/**
 * Execution-provider selection. `auto` tries what this machine can plausibly run — CUDA only when
 * onnxruntime-node's CUDA provider library is installed, WebGPU only when a GPU API loader is
 * present — and always ends with CPU. An explicit device is tried alone: if it is unavailable,
 * loading fails with AFFECT_ERR_DEVICE_UNAVAILABLE instead of silently running elsewhere.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Device } from './ports.js';
import { AffectError } from '../core/errors.js';

/** Every device name the CLI accepts. */
export const DEVICES: readonly Device[] = ['auto', 'cuda', 'webgpu', 'cpu'];

/** Validates a device string from a flag or the environment. */
export function parseDevice(value: string): Device {
  if ((DEVICES as readonly string[]).includes(value)) return value as Device;
  throw new AffectError('AFFECT_ERR_CONFIG', `Unsupported device "${value}". Should be one of: ${DEVICES.join(', ')}`, {
    hint: 'pass --device auto|cuda|webgpu|cpu',
  });
}

/** onnxruntime-node's native folder for this platform (where the provider libraries live), if found. */
export function ortBinDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const root = path.resolve(path.dirname(require.resolve('onnxruntime-node')), '..');
    const bin = path.join(root, 'bin');
    for (const napi of readdirSync(bin)) {
      const dir = path.join(bin, napi, process.platform, process.arch);
      if (existsSync(dir)) return dir;
    }
  } catch {
    // not installed where we expect: no optional providers
  }
  return undefined;
}

/** True when onnxruntime-node's CUDA provider library is installed (`--onnxruntime-node-install=cuda12`). */
export function cudaProviderInstalled(binDir = ortBinDir()): boolean {
  if (!binDir) return false;
  try {
    return readdirSync(binDir).some((f) => /onnxruntime_providers_cuda\.(so|dll)/.test(f));
  } catch {
    return false;
  }
}

const VULKAN_LOADERS = [
  '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
  '/usr/lib/aarch64-linux-gnu/libvulkan.so.1',
  '/usr/lib64/libvulkan.so.1',
  '/usr/lib/libvulkan.so.1',
];

/**
 * True when a WebGPU adapter may exist: on Linux ORT's Dawn needs the Vulkan loader (without it,
 * session creation fails with "No supported adapters"); on macOS (Metal) and Windows (D3D12) we
 * let ORT try.
 */
export function webgpuMayWork(): boolean {
  if (process.platform !== 'linux') return true;
  return VULKAN_LOADERS.some((p) => existsSync(p));
}

/** Folders the Vulkan loader reads driver manifests (ICDs) from. */
export const VULKAN_ICD_DIRS: readonly string[] = [
  '/usr/share/vulkan/icd.d',
  '/etc/vulkan/icd.d',
  '/usr/local/share/vulkan/icd.d',
  '/usr/local/etc/vulkan/icd.d',
];

/** Vulkan drivers that only emulate a GPU on the CPU: WebGPU on them is slower than ORT's CPU provider. */
const SOFTWARE_ICD = /lvp|lavapipe|swiftshader|llvmpipe/i;

/**
 * Where the Vulkan loader looks for driver manifests, as the loader itself decides: only the
 * entries of `VK_DRIVER_FILES` (or the older `VK_ICD_FILENAMES`) when set, files or folders, `:`
 * separated; otherwise the standard folders plus `vulkan/icd.d` under each of `XDG_CONFIG_DIRS`
 * and `XDG_DATA_DIRS`; `VK_ADD_DRIVER_FILES` adds to either. (GPU containers often mount the
 * NVIDIA manifest outside the standard folders and point `VK_DRIVER_FILES` at it.)
 */
export function vulkanIcdSources(env: NodeJS.ProcessEnv = process.env): string[] {
  const split = (v: string | undefined): string[] => (v ?? '').split(':').filter((p) => p.length > 0);
  const add = split(env['VK_ADD_DRIVER_FILES']);
  const only = split(env['VK_DRIVER_FILES'] ?? env['VK_ICD_FILENAMES']);
  if (only.length > 0) return [...only, ...add];
  const xdg = [...split(env['XDG_CONFIG_DIRS']), ...split(env['XDG_DATA_DIRS'])].map((d) => path.join(d, 'vulkan', 'icd.d'));
  return [...new Set([...VULKAN_ICD_DIRS, ...xdg, ...add])];
}

/** Manifests of hardware Vulkan drivers (ICD json files, software rasterisers left out) in `sources` (folders or files). */
export function vulkanHardwareDrivers(sources: readonly string[] = vulkanIcdSources()): string[] {
  const out: string[] = [];
  for (const d of sources) {
    try {
      if (statSync(d).isFile()) {
        if (d.endsWith('.json') && !SOFTWARE_ICD.test(path.basename(d))) out.push(d);
        continue;
      }
      for (const f of readdirSync(d)) if (f.endsWith('.json') && !SOFTWARE_ICD.test(f)) out.push(path.join(d, f));
    } catch {
      // no such file or folder
    }
  }
  return out;
}

/**
 * True when `--device auto` should try WebGPU: besides the loader ({@link webgpuMayWork}), Linux
 * needs a hardware Vulkan driver. Without one, trying it only made Dawn print
 * `vkCreateInstance: Found no drivers!` / `XDG_RUNTIME_DIR` errors on stderr before falling back to
 * the CPU, so auto leaves it out quietly (an explicit `--device webgpu` still tries).
 */
export function webgpuLikely(): boolean {
  if (process.platform !== 'linux') return true;
  return webgpuMayWork() && vulkanHardwareDrivers().length > 0;
}

/** Providers to try, in order, for a device. */
export function providersFor(device: Device): string[] {
  switch (device) {
    case 'cpu':
      return ['cpu'];
    case 'cuda':
      return ['cuda'];
    case 'webgpu':
      return ['webgpu'];
    case 'auto': {
      const list: string[] = [];
      if (cudaProviderInstalled()) list.push('cuda');
      if (webgpuLikely()) list.push('webgpu');
      list.push('cpu');
      return list;
    }
  }
}

/** Fails fast (before starting a worker) for an explicit device that cannot work here. */
export function assertDeviceAvailable(device: Device, modelId: string): void {
  if (device === 'cuda' && !cudaProviderInstalled()) {
    throw new AffectError(
      'AFFECT_ERR_DEVICE_UNAVAILABLE',
      `--device cuda for ${modelId}: onnxruntime-node's CUDA provider is not installed (no libonnxruntime_providers_cuda in ${ortBinDir() ?? 'onnxruntime-node/bin'})`,
      {
        stage: modelId,
        hint: 'with internet: npm ci --onnxruntime-node-install=cuda12 (needs CUDA 12 + cuDNN 9); or use --device auto|cpu',
      },
    );
  }
  if (device === 'webgpu' && !webgpuMayWork()) {
    throw new AffectError(
      'AFFECT_ERR_DEVICE_UNAVAILABLE',
      `--device webgpu for ${modelId}: no WebGPU adapter (the Vulkan loader libvulkan.so.1 is not installed)`,
      {
        stage: modelId,
        hint: 'install a Vulkan driver (apt-get install libvulkan1 mesa-vulkan-drivers) or use --device auto|cpu',
      },
    );
  }
}
