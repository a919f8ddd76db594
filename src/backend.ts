/**
 * Backend selection.
 *
 * Order when nothing is asked for: a native TensorFlow binding if the user has
 * installed one (`@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`,
 * both optional and never installed by us), then the WebAssembly backend, then
 * the plain JavaScript `cpu` backend. The choice can be forced by the `backend`
 * option or the environment variable `LIVEPORTRAIT_BACKEND`.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';

export interface BackendInfo {
  /** The tfjs backend now active. */
  name: string;
  /** Where it came from: the npm package that provides it. */
  provider: string;
  /** Why it was picked: 'option', 'env' or 'auto'. */
  reason: 'option' | 'env' | 'auto';
  /** The GPU adapter, for webgpu: e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) 0.0.1, software". */
  device?: string;
}

export interface BackendOptions {
  /** 'auto' (default), 'tensorflow' (tfjs-node / tfjs-node-gpu), 'wasm', 'cpu' or 'webgpu'. */
  backend?: string;
  /** Print the one-line report (default true). */
  log?: boolean | ((line: string) => void);
  /** Threads for the wasm backend where the platform allows them. */
  wasmThreads?: number;
}

export const BACKEND_ENV = 'LIVEPORTRAIT_BACKEND';
const KNOWN = ['auto', 'tensorflow', 'wasm', 'cpu', 'webgpu'];

const require = createRequire(import.meta.url);
let current: BackendInfo | undefined;

/** The backend chosen by the last `initBackend`, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

function tryRequire(pkg: string): boolean {
  try {
    require(pkg);
    return true;
  } catch {
    return false;
  }
}

async function tryNative(): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (tryRequire(pkg) && (await tf.setBackend('tensorflow').catch(() => false))) return pkg;
  }
  return undefined;
}

async function tryWasm(threads?: number): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (threads && threads > 0) wasm.setThreadsCount(threads);
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

/** What Dawn reports about the GPU adapter the webgpu backend runs on. */
export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for a software (CPU) implementation, e.g. Mesa's llvmpipe (lavapipe) or SwiftShader. */
  isFallbackAdapter: boolean;
}

let adapterInfo: GpuAdapterInfo | undefined;

/** The adapter of the webgpu backend, once initBackend has started it. */
export function gpuAdapterInfo(): GpuAdapterInfo | undefined {
  return adapterInfo;
}

interface GpuAdapterLike {
  info?: Partial<GpuAdapterInfo>;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<Partial<GpuAdapterInfo>>;
}
interface GpuLike {
  requestAdapter(opts?: object): Promise<GpuAdapterLike | null>;
}

async function readAdapterInfo(adapter: GpuAdapterLike): Promise<GpuAdapterInfo> {
  // adapter.info (current spec) or requestAdapterInfo() (older bindings); the fields are getters.
  const i = adapter.info ?? (await adapter.requestAdapterInfo?.()) ?? {};
  return {
    vendor: i.vendor ?? '',
    architecture: i.architecture ?? '',
    device: i.device ?? '',
    description: i.description ?? '',
    isFallbackAdapter: Boolean(i.isFallbackAdapter ?? adapter.isFallbackAdapter),
  };
}

/** "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6), software" from an adapter's info. */
export function describeAdapter(a: GpuAdapterInfo): string {
  const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter';
  return a.isFallbackAdapter ? `${name}, software` : name;
}

const NO_DRIVER_HINT = "install your GPU's Vulkan driver (or a software one: apt-get install mesa-vulkan-drivers), or run with --backend wasm";

/**
 * Why Dawn found no adapter. Dawn prints its reasons to the process's stderr
 * from native code, out of reach of JavaScript, so the adapter request is
 * repeated in a child process whose stderr is read. One line.
 */
function dawnAdapterFailure(dawnEntry: string): string {
  const script = `const { create, globals } = await import(${JSON.stringify(dawnEntry)});
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

/** The webgpu backend, or a one-line reason why it cannot start. */
async function tryWebGpu(): Promise<{ ok: true } | { ok: false; reason: string }> {
  // Optional: needs `@tensorflow/tfjs-backend-webgpu` and a navigator.gpu.
  // In Node that comes from Dawn's binding, the `webgpu` package, which
  // ships dawn.node for linux-x64 and needs a Vulkan driver. The package
  // names are kept in variables so TypeScript does not require them.
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  const dawnPkg = 'webgpu';
  let dawnEntry: string | undefined;
  if (!g.navigator?.gpu) {
    try {
      dawnEntry = require.resolve(dawnPkg);
    } catch {
      return { ok: false, reason: 'the WebGPU binding for Node is not installed: npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0, or run with --backend wasm' };
    }
    let dawn: { create(flags: string[]): GpuLike; globals: object };
    try {
      dawn = (await import(dawnPkg)) as typeof dawn;
    } catch (e) {
      // e.g. "GLIBCXX_3.4.32 not found" from an older binding's dawn.node.
      const msg = String((e as Error)?.message ?? e).split('\n')[0];
      return { ok: false, reason: `Dawn's binding (npm package webgpu) does not load: ${msg}; use webgpu@0.6.2, or run with --backend wasm` };
    }
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    if (g.navigator) Object.assign(g.navigator, { gpu });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  // tfjs's backend factory dereferences a null adapter; ask first, for the reason and the adapter's name.
  const adapter = await g.navigator!.gpu!.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) return { ok: false, reason: dawnEntry ? dawnAdapterFailure(dawnEntry) : `navigator.gpu has no adapter: ${NO_DRIVER_HINT}` };
  adapterInfo = await readAdapterInfo(adapter);
  try {
    const pkg = '@tensorflow/tfjs-backend-webgpu';
    await import(pkg);
  } catch {
    return { ok: false, reason: '@tensorflow/tfjs-backend-webgpu is not installed: npm install @tensorflow/tfjs-backend-webgpu@4.22.0, or run with --backend wasm' };
  }
  let failure = '';
  const warn = console.warn;
  // tfjs reports a failing backend factory through console.warn and resolves false.
  console.warn = (...a: unknown[]) => {
    failure ||= a.map(String).join(' ').split('\n')[0];
  };
  try {
    if (await tf.setBackend('webgpu')) return { ok: true };
  } catch (e) {
    failure ||= String((e as Error)?.message ?? e).split('\n')[0];
  } finally {
    console.warn = warn;
  }
  return { ok: false, reason: `the webgpu backend did not start on ${describeAdapter(adapterInfo)}${failure ? `: ${failure}` : ''}; run with --backend wasm` };
}

/**
 * Choose and initialise the tfjs backend. Safe to call more than once; a
 * later call with another backend switches.
 */
export async function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  const fromEnv = process.env[BACKEND_ENV];
  const asked = (opts.backend ?? fromEnv ?? 'auto').trim().toLowerCase();
  const reason: BackendInfo['reason'] = opts.backend ? 'option' : fromEnv ? 'env' : 'auto';
  if (!KNOWN.includes(asked)) {
    const where = opts.backend ? 'the backend option' : `${BACKEND_ENV}`;
    throw new Error(`Unknown backend '${asked}' in ${where}: use one of ${KNOWN.join(', ')}.`);
  }
  let provider: string | undefined;
  if (asked === 'tensorflow') {
    provider = await tryNative();
    if (!provider)
      throw new Error(
        "Backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node: install one (npm install @tensorflow/tfjs-node) or pick 'wasm' or 'cpu'.",
      );
  } else if (asked === 'wasm') {
    if (!(await tryWasm(opts.wasmThreads)))
      throw new Error("Backend 'wasm' could not start: is @tensorflow/tfjs-backend-wasm installed? Try --backend cpu.");
    provider = '@tensorflow/tfjs-backend-wasm';
  } else if (asked === 'webgpu') {
    const r = await tryWebGpu();
    if (!r.ok) throw new Error(`Backend 'webgpu' could not start: ${r.reason}`);
    provider = '@tensorflow/tfjs-backend-webgpu';
  } else if (asked === 'cpu') {
    await tf.setBackend('cpu');
    provider = '@tensorflow/tfjs-backend-cpu';
  } else {
    provider = await tryNative();
    if (!provider && (await tryWasm(opts.wasmThreads))) provider = '@tensorflow/tfjs-backend-wasm';
    if (!provider) {
      await tf.setBackend('cpu');
      provider = '@tensorflow/tfjs-backend-cpu';
    }
  }
  await tf.ready();
  current = { name: tf.getBackend(), provider, reason };
  if (current.name === 'webgpu' && adapterInfo) current.device = describeAdapter(adapterInfo);
  const log = opts.log ?? true;
  if (log) {
    const line = `liveportrait: backend ${current.name} (${current.provider}${current.device ? `, ${current.device}` : ''}, ${current.reason})`;
    if (typeof log === 'function') log(line);
    else console.error(line);
  }
  return current;
}
