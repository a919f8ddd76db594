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
import { BackendError } from './errors.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu' | 'webgpu';

export interface BackendInfo {
  /** The tfjs backend now active. */
  name: string;
  /** Where it came from: the npm package that provides it. */
  provider: string;
  /** Why it was picked: 'option', 'env' or 'auto'. */
  reason: 'option' | 'env' | 'auto';
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

let current: BackendInfo | undefined;

/** The backend chosen by the last `initBackend`, if any. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}

/** Import an optional package by name (kept in a variable so bundlers leave it out). */
async function tryImport(pkg: string): Promise<boolean> {
  try {
    await import(/* @vite-ignore */ pkg);
    return true;
  } catch {
    return false;
  }
}

/** An environment variable where there is one (Node), else undefined (a page). */
export function envVar(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

async function tryNative(): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if ((await tryImport(pkg)) && (await tf.setBackend('tensorflow').catch(() => false))) return pkg;
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

async function tryWebGpu(): Promise<boolean> {
  try {
    // Optional: needs `@tensorflow/tfjs-backend-webgpu` and a navigator.gpu.
    // In Node that comes from Dawn's binding, the `webgpu` package, which
    // ships dawn.node for linux-x64 and needs a Vulkan driver. The package
    // names are kept in variables so TypeScript does not require them.
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (!g.navigator?.gpu) {
      const dawnPkg = 'webgpu';
      const dawn = (await import(dawnPkg)) as { create(flags: string[]): unknown; globals: object };
      Object.assign(globalThis, dawn.globals);
      const gpu = dawn.create([]);
      if (g.navigator) Object.assign(g.navigator, { gpu });
      else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    }
    // A page bundles the backend itself (it is registered then); Node imports it here.
    if (!tf.findBackendFactory('webgpu')) {
      const pkg = '@tensorflow/tfjs-backend-webgpu';
      await import(pkg);
    }
    return await tf.setBackend('webgpu');
  } catch {
    return false;
  }
}

/**
 * Choose and initialise the tfjs backend. Safe to call more than once; a
 * later call with another backend switches.
 */
export async function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  const fromEnv = envVar(BACKEND_ENV);
  const asked = (opts.backend ?? fromEnv ?? 'auto').trim().toLowerCase();
  const reason: BackendInfo['reason'] = opts.backend ? 'option' : fromEnv ? 'env' : 'auto';
  if (!KNOWN.includes(asked)) {
    const where = opts.backend ? 'the backend option' : `${BACKEND_ENV}`;
    throw new BackendError(`Unknown backend '${asked}' in ${where}: use one of ${KNOWN.join(', ')}.`);
  }
  let provider: string | undefined;
  if (asked === 'tensorflow') {
    provider = await tryNative();
    if (!provider)
      throw new BackendError(
        "Backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node: install one (npm install @tensorflow/tfjs-node) or pick 'wasm' or 'cpu'.",
      );
  } else if (asked === 'wasm') {
    if (!(await tryWasm(opts.wasmThreads)))
      throw new BackendError("Backend 'wasm' could not start: is @tensorflow/tfjs-backend-wasm installed? Try --backend cpu.");
    provider = '@tensorflow/tfjs-backend-wasm';
  } else if (asked === 'webgpu') {
    if (!(await tryWebGpu()))
      throw new BackendError(
        "Backend 'webgpu' could not start: install @tensorflow/tfjs-backend-webgpu and a WebGPU binding (npm install webgpu) on a machine with a Vulkan driver.",
      );
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
  const log = opts.log ?? true;
  if (log) {
    const line = `liveportrait: backend ${current.name} (${current.provider}, ${current.reason})`;
    if (typeof log === 'function') log(line);
    else console.error(line);
  }
  return current;
}
