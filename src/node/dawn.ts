/**
 * WebGPU in Node: navigator.gpu from Dawn's binding (the npm package
 * `webgpu`, which ships dawn.node for linux-x64 and needs a Vulkan driver).
 * Importing this module registers it with the core's backend choice.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { type GpuLike, NO_DRIVER_HINT, setGpuProvider } from '../backend.js';

const require = createRequire(import.meta.url);
const DAWN_PKG = 'webgpu';
let dawnEntry: string | undefined;

/**
 * Why Dawn found no adapter. Dawn prints its reasons to the process's stderr
 * from native code, out of reach of JavaScript, so the adapter request is
 * repeated in a child process whose stderr is read. One line.
 */
function dawnAdapterFailure(entry: string): string {
  const script = `const { create, globals } = await import(${JSON.stringify(entry)});
Object.assign(globalThis, globals);
const a = await create([]).requestAdapter({ powerPreference: 'high-performance' });
process.stdout.write(a ? 'adapter' : 'null');`;
  let stderr = '';
  let stdout = '';
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    stderr = r.stderr ?? '';
    stdout = r.stdout ?? '';
  } catch {
    /* no child processes here: no reason to add */
  }
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(Warning|Error):/.test(l) && !/artificially reduced/.test(l))
    .map((l) => l.replace(/^(Warning|Error):\s*/, ''));
  if (lines.some((l) => /Found no drivers|VK_ERROR_INCOMPATIBLE_DRIVER|Failed to open JSON file|libvulkan/i.test(l)) || (lines.length === 0 && stdout === 'null'))
    return `no Vulkan driver found${lines.length ? ` (Dawn: ${lines.join('; ')})` : ''}: ${NO_DRIVER_HINT}`;
  return `no usable WebGPU adapter${lines.length ? ` (Dawn: ${lines.join('; ')})` : ''}: ${NO_DRIVER_HINT}`;
}

setGpuProvider({
  async install() {
    try {
      dawnEntry = require.resolve(DAWN_PKG);
    } catch {
      return { ok: false, reason: 'the WebGPU binding for Node is not installed: npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0, or run with --backend wasm' };
    }
    let dawn: { create(flags: string[]): GpuLike; globals: object };
    try {
      dawn = (await import(DAWN_PKG)) as typeof dawn;
    } catch (e) {
      // e.g. "GLIBCXX_3.4.32 not found" from an older binding's dawn.node.
      const msg = String((e as Error)?.message ?? e).split('\n')[0];
      return { ok: false, reason: `Dawn's binding (npm package webgpu) does not load: ${msg}; use webgpu@0.6.2, or run with --backend wasm` };
    }
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    const g = globalThis as { navigator?: { gpu?: GpuLike } };
    if (g.navigator) Object.assign(g.navigator, { gpu });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    return { ok: true };
  },
  adapterFailure() {
    return dawnEntry ? dawnAdapterFailure(dawnEntry) : `navigator.gpu has no adapter: ${NO_DRIVER_HINT}`;
  },
});
