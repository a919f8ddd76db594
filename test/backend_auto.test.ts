// Backend `auto` (issue 20): WebGPU only on a hardware adapter. The rule
// (isSoftwareAdapter) over adapter info as Dawn and Chromium report it, and
// initBackend on this machine's software Vulkan driver (lavapipe in CI):
// auto passes over it to wasm and says why in its one line, webgpu asked by
// name still runs on it, and a process that chose auto prints nothing of
// Dawn's and exits at once. Skipped with the reason printed where Dawn finds
// no adapter at all (a failure under CI=true, whose setup installs lavapipe).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import '../src/node/dawn.js';
import { type GpuAdapterInfo, initBackend, isSoftwareAdapter } from '../src/backend.js';
import { ROOT } from './helpers/browser.js';

const info = (i: Partial<GpuAdapterInfo>): GpuAdapterInfo => ({ vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false, ...i });

// Measured here: Dawn in Node (webgpu 0.6.2) on Mesa 25.0.7's lavapipe and on Chromium 156's SwiftShader ICD; Chromium 156 (headless, --enable-unsafe-webgpu).
const LAVAPIPE_DAWN = info({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1', isFallbackAdapter: true });
const SWIFTSHADER_DAWN = info({ vendor: 'google', architecture: 'swiftshader', device: 'swiftshader-device-subzero-', description: 'SwiftShader driver 5.0.0', isFallbackAdapter: true });
const SWIFTSHADER_CHROMIUM = info({ vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true });
const SWIFTSHADER_CHROMIUM_DEV = info({ vendor: 'google', architecture: 'swiftshader', device: '0xc0de', description: 'SwiftShader Device (Subzero)', isFallbackAdapter: true });

describe('isSoftwareAdapter', () => {
  it('software adapters as measured here: lavapipe (Dawn in Node), SwiftShader (Dawn in Node, Chromium)', () => {
    for (const a of [LAVAPIPE_DAWN, SWIFTSHADER_DAWN, SWIFTSHADER_CHROMIUM, SWIFTSHADER_CHROMIUM_DEV]) expect(isSoftwareAdapter(a), JSON.stringify(a)).toBe(true);
  });

  it('the names decide without isFallbackAdapter (older bindings and browsers do not report it)', () => {
    for (const a of [LAVAPIPE_DAWN, SWIFTSHADER_DAWN, SWIFTSHADER_CHROMIUM, SWIFTSHADER_CHROMIUM_DEV]) expect(isSoftwareAdapter({ ...a, isFallbackAdapter: false }), JSON.stringify(a)).toBe(true);
    // each field alone
    expect(isSoftwareAdapter(info({ architecture: 'software' }))).toBe(true); // Dawn's architecture for Mesa's software vendor
    expect(isSoftwareAdapter(info({ architecture: 'swiftshader' }))).toBe(true);
    expect(isSoftwareAdapter(info({ description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) 0.0.1' }))).toBe(true);
    expect(isSoftwareAdapter(info({ device: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toBe(true);
    expect(isSoftwareAdapter(info({ description: 'lavapipe' }))).toBe(true);
    expect(isSoftwareAdapter(info({ description: 'softpipe' }))).toBe(true);
    // Microsoft WARP (D3D12's software rasteriser): Dawn's vendor "microsoft", architecture "warp"; DXGI's description
    expect(isSoftwareAdapter(info({ vendor: 'microsoft', architecture: 'warp' }))).toBe(true);
    expect(isSoftwareAdapter(info({ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }))).toBe(true);
    expect(isSoftwareAdapter(info({ isFallbackAdapter: true, vendor: 'nvidia', architecture: 'ampere' }))).toBe(true);
    expect(isSoftwareAdapter({ isFallbackAdapter: true })).toBe(true);
  });

  it('hardware adapters: what Chromium shows (vendor and architecture, Dawn\'s names) and Dawn in Node on Vulkan', () => {
    // Not measured here (no GPU): vendor and architecture as Dawn's gpu_info names them (what Chromium shows
    // without developer features); description and device in the form Dawn gave for lavapipe above
    // ("<driver>: <driver info> <version>", the device name in lower case with dashes).
    const hardware = [
      info({ vendor: 'nvidia', architecture: 'ampere' }),
      info({ vendor: 'nvidia', architecture: 'lovelace', device: 'nvidia-geforce-rtx-4090', description: 'NVIDIA: 550.54.14 550.54.14.0' }),
      info({ vendor: 'nvidia', architecture: '', description: 'NVIDIA: 570.86.15 570.86.15.0' }), // a device newer than Dawn's table
      info({ vendor: 'amd', architecture: 'rdna-3' }),
      info({ vendor: 'amd', architecture: 'rdna-2', device: 'amd-radeon-rx-6800-xt-radv-navi21-', description: 'radv: Mesa 23.2.1 23.2.1' }),
      info({ vendor: 'amd', architecture: 'gcn-5', description: 'AMD open-source driver: 2023.Q3.1 (LLVM 15.0.0)' }),
      info({ vendor: 'intel', architecture: 'gen-12lp' }),
      info({ vendor: 'intel', architecture: 'gen-9', device: 'intel-r-uhd-graphics-630-cfl-gt2-', description: 'Intel open-source Mesa driver: Mesa 23.2.1 23.2.1' }),
      info({ vendor: 'intel', architecture: 'xe-lpg' }),
      info({ vendor: 'apple', architecture: 'metal-3' }),
      info({ vendor: 'apple', architecture: 'common-3', description: 'Apple M2' }),
      info({ vendor: 'qualcomm', architecture: 'adreno-7xx' }),
      info({ vendor: 'arm', architecture: 'valhall' }),
      info({}), // nothing reported: not known to be software
    ];
    for (const a of hardware) expect(isSoftwareAdapter(a), JSON.stringify(a)).toBe(false);
  });
});

// What auto does here, asked once (the child-process probe: about 0.15 s).
const lines: string[] = [];
const t0 = performance.now();
const auto = await initBackend({ backend: 'auto', log: (l) => lines.push(l) });
const autoSeconds = (performance.now() - t0) / 1000;
const why =
  auto.name === 'webgpu'
    ? `this machine has a hardware adapter (${auto.device}): auto took it`
    : !auto.softwareAdapter
      ? `Dawn found no software adapter here (${auto.webgpuSkipped ?? 'webgpu not probed'}; scripts/setup-test-env.sh installs lavapipe)`
      : undefined;

function describeSoftwareGpu(name: string, fn: () => void): void {
  if (!why) describe.sequential(name, fn);
  else if (process.env.CI === 'true' && auto.name !== 'webgpu')
    describe(name, () => {
      it('has a software Vulkan driver', () => {
        throw new Error(`${why}; CI=true requires it`);
      });
    });
  else {
    console.warn(`skipping '${name}': ${why}`);
    describe.skip(name, fn);
  }
}

// Before the tests that start the real webgpu backend (tfjs keeps a started backend: it would start again here).
describe('backend auto on a hardware adapter whose backend does not start (a stand-in navigator.gpu)', () => {
  it('auto tries webgpu on it, then takes wasm and says why', async () => {
    const own = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    const adapter = {
      info: info({ vendor: 'nvidia', architecture: 'ampere' }),
      features: new Set<string>(),
      limits: {},
      requestDevice: async () => {
        throw new Error('no device behind this stand-in adapter');
      },
    };
    let asked = 0;
    const requestAdapter = async () => {
      asked++;
      return adapter;
    };
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: { requestAdapter } }, configurable: true, writable: true });
    try {
      const r = await initBackend({ backend: 'auto', log: false });
      console.log(`auto, stand-in hardware adapter: ${r.name}; ${r.webgpuSkipped}`);
      expect(asked).toBeGreaterThanOrEqual(2); // the probe, then the backend's start
      expect(r.name).toBe('wasm');
      expect(r.softwareAdapter).toBeUndefined();
      expect(r.webgpuSkipped).toMatch(/^webgpu: the webgpu backend did not start on nvidia ampere: .*no device behind this stand-in adapter$/);
      expect(r.webgpuSkipped).not.toMatch(/--backend wasm/);
    } finally {
      if (own) Object.defineProperty(globalThis, 'navigator', own);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
  });
});

describeSoftwareGpu('backend auto on a software Vulkan driver', () => {
  it('auto passes over the software adapter to wasm, and its one line names the adapter and how to use it', () => {
    console.log(`auto here (${autoSeconds.toFixed(2)} s): ${lines.join(' | ')}`);
    expect(auto.name).toBe('wasm');
    expect(auto.provider).toBe('@tensorflow/tfjs-backend-wasm');
    expect(isSoftwareAdapter(auto.softwareAdapter!)).toBe(true);
    expect(auto.webgpuSkipped).toMatch(/^webgpu adapter .*(llvmpipe|SwiftShader).* is software$/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^liveportrait: backend wasm \(@tensorflow\/tfjs-backend-wasm, option; webgpu adapter .*(llvmpipe|SwiftShader).* is software: ask for --backend webgpu to use it\)$/);
  });

  it('webgpu asked for by name runs on the software adapter', async () => {
    const named: string[] = [];
    const gpu = await initBackend({ backend: 'webgpu', log: (l) => named.push(l) });
    try {
      expect(gpu.name).toBe('webgpu');
      expect(gpu.device).toMatch(/(llvmpipe|SwiftShader).*, software$/);
      expect(gpu.webgpuSkipped).toBeUndefined();
      expect(named[0]).toMatch(/^liveportrait: backend webgpu \(@tensorflow\/tfjs-backend-webgpu, .*, software, option\)$/);
    } finally {
      await initBackend({ backend: 'wasm', log: false });
    }
  });

  it('a process on auto prints its one line and nothing of Dawn (no "artificially reduced" warnings) and exits at once', () => {
    const env = { ...process.env };
    delete env.LIVEPORTRAIT_BACKEND;
    const script = "await import('./src/node/dawn.ts'); const { initBackend } = await import('./src/backend.ts'); await initBackend();";
    const t = performance.now();
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    const seconds = (performance.now() - t) / 1000;
    console.log(`a process on auto: ${seconds.toFixed(2)} s in all`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const err = r.stderr.trim().split('\n');
    expect(err, r.stderr).toHaveLength(1);
    expect(err[0]).toMatch(/^liveportrait: backend wasm \(@tensorflow\/tfjs-backend-wasm, auto; webgpu adapter .* is software: ask for --backend webgpu to use it\)$/);
    expect(seconds).toBeLessThan(30);
  });
});
