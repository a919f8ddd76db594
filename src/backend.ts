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

/**
 * tfjs-backend-wasm 4.22 caps its XNNPACK thread pool at half of
 * navigator.hardwareConcurrency, whatever setThreadsCount asks (backend.cc:
 * `num_cores = emscripten_num_logical_cores() / 2`, read once as the module
 * starts, then `min(threads, num_cores)`): 1 thread on a 2-core machine. In a
 * page (threaded wasm needs cross-origin isolation), the module is started
 * with hardwareConcurrency shown as twice the threads asked for, then the
 * real value comes back. Node runs the single-threaded module: left alone.
 */
async function withLogicalCores<T>(threads: number | undefined, run: () => Promise<T>): Promise<T> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const isNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (!threads || threads <= 0 || !nav || isNode || typeof nav.hardwareConcurrency !== 'number' || threads <= Math.floor(nav.hardwareConcurrency / 2)) return run();
  const own = Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency');
  try {
    Object.defineProperty(nav, 'hardwareConcurrency', { value: threads * 2, configurable: true });
  } catch {
    return run();
  }
  try {
    return await run();
  } finally {
    if (own) Object.defineProperty(nav, 'hardwareConcurrency', own);
    else delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
}

type ProcessEvents = { listeners(e: string): ((...a: unknown[]) => void)[]; removeListener(e: string, f: (...a: unknown[]) => void): void };
const PROCESS_EVENTS = ['uncaughtException', 'unhandledRejection'];

/**
 * Run `start` and take away the process-wide error handlers it installed.
 * The Emscripten glue of tfjs-backend-wasm installs 'uncaughtException' and
 * 'unhandledRejection' handlers in Node that rethrow, so any error in the
 * user's own script would be reported from inside the glue, with 20 KB of
 * its minified source; without them the user sees their own error.
 */
async function withoutGlueHandlers<T>(start: () => Promise<T>): Promise<T> {
  const proc = (globalThis as { process?: ProcessEvents }).process;
  if (!proc?.listeners) return start();
  const before = new Map(PROCESS_EVENTS.map((e) => [e, new Set(proc.listeners(e))]));
  try {
    return await start();
  } finally {
    for (const e of PROCESS_EVENTS) for (const f of proc.listeners(e)) if (!before.get(e)!.has(f)) proc.removeListener(e, f);
  }
}

async function tryWasm(threads?: number): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (threads && threads > 0) wasm.setThreadsCount(threads);
    return await withoutGlueHandlers(() => withLogicalCores(threads, () => tf.setBackend('wasm')));
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

export interface GpuAdapterLike {
  info?: Partial<GpuAdapterInfo>;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<Partial<GpuAdapterInfo>>;
}
export interface GpuLike {
  requestAdapter(opts?: object): Promise<GpuAdapterLike | null>;
}

export async function readAdapterInfo(adapter: GpuAdapterLike): Promise<GpuAdapterInfo> {
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

export const NO_DRIVER_HINT = "install your GPU's Vulkan driver (or a software one: apt-get install mesa-vulkan-drivers), or run with --backend wasm";

/**
 * Where navigator.gpu comes from on a platform without one: Node gets it from
 * Dawn's binding (src/node/dawn.ts registers itself here); a page has its own.
 */
export interface GpuProvider {
  /** Put a navigator.gpu in place, or say in one line why it cannot be. */
  install(): Promise<{ ok: true } | { ok: false; reason: string }>;
  /** Why the installed navigator.gpu gave no adapter, in one line. */
  adapterFailure(): string;
}

let gpuProvider: GpuProvider | undefined;

/** Register how navigator.gpu is made where there is none (Node adapters do this on import). */
export function setGpuProvider(p: GpuProvider): void {
  gpuProvider = p;
}

/** The webgpu backend, or a one-line reason why it cannot start. */
async function tryWebGpu(): Promise<{ ok: true } | { ok: false; reason: string }> {
  // Optional: needs `@tensorflow/tfjs-backend-webgpu` and a navigator.gpu.
  // In Node that comes from Dawn's binding, the `webgpu` package, which
  // ships dawn.node for linux-x64 and needs a Vulkan driver. The package
  // names are kept in variables so TypeScript does not require them.
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  let provided = false;
  if (!g.navigator?.gpu) {
    if (!gpuProvider) return { ok: false, reason: `no navigator.gpu here (in Node, import liveportrait-tfjs/node for Dawn's binding): ${NO_DRIVER_HINT}` };
    const r = await gpuProvider.install();
    if (!r.ok) return r;
    provided = true;
  }
  // tfjs's backend factory dereferences a null adapter; ask first, for the reason and the adapter's name.
  const adapter = await g.navigator!.gpu!.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) return { ok: false, reason: provided && gpuProvider ? gpuProvider.adapterFailure() : `navigator.gpu has no adapter: ${NO_DRIVER_HINT}` };
  adapterInfo = await readAdapterInfo(adapter);
  try {
    // A page bundles the backend itself (it is registered then); Node imports it here.
    if (!tf.findBackendFactory('webgpu')) {
      const pkg = '@tensorflow/tfjs-backend-webgpu';
      await import(/* @vite-ignore */ pkg);
    }
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
    const r = await tryWebGpu();
    if (!r.ok) throw new BackendError(`Backend 'webgpu' could not start: ${r.reason}`);
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

/** The backend's memory: bytes of live tensors, and on wasm the heap's size (it grows to the peak and never shrinks). */
export interface BackendMemory {
  tensorBytes: number;
  heapBytes?: number;
}

/** The active backend's memory now. */
export function backendMemory(): BackendMemory {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return { tensorBytes: tf.memory().numBytes, heapBytes: wasm?.HEAPU8?.buffer.byteLength };
}
