/**
 * Backend selection.
 *
 * Order when nothing is asked for (`auto`): a native TensorFlow binding if the
 * user has installed one (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`, both optional and never installed by us; Node
 * only), then WebGPU when its adapter is a hardware GPU, then the WebAssembly
 * backend, then the plain JavaScript `cpu` backend. A software adapter
 * (SwiftShader, Mesa's llvmpipe/lavapipe, WARP: `isSoftwareAdapter`) runs
 * about 20x slower than wasm, so `auto` passes over it; it is used when
 * `webgpu` is asked for by name. The choice can be forced by the `backend`
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
  /**
   * With `auto` on another backend than webgpu: why webgpu was not taken, in
   * a few words, e.g. "webgpu adapter google swiftshader is software" or "no
   * webgpu adapter (no Vulkan driver found)". Absent when a native binding
   * was taken (webgpu is not looked at then).
   */
  webgpuSkipped?: string;
  /** With `auto`: the software adapter it passed over (used when webgpu is asked for by name). */
  softwareAdapter?: GpuAdapterInfo;
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

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

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

/**
 * Words a software (CPU) WebGPU adapter has in its info, as Dawn and Chromium
 * report them: SwiftShader (Chromium: vendor "google", architecture
 * "swiftshader"; description "SwiftShader Device (Subzero)" with developer
 * features), Mesa's llvmpipe through lavapipe (Dawn: vendor "mesa",
 * architecture "software", description "llvmpipe: Mesa …"), softpipe, and
 * Microsoft's Basic Render Driver (WARP).
 */
const SOFTWARE_WORDS = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render/i;

/**
 * Whether a WebGPU adapter is a software implementation running on the CPU
 * (SwiftShader, llvmpipe/lavapipe, softpipe, WARP) rather than a GPU: its
 * `isFallbackAdapter`, or its vendor, architecture, device or description
 * naming one (architecture "warp" is Dawn's name for WARP). `auto` takes
 * webgpu only when this is false.
 */
export function isSoftwareAdapter(info: Partial<GpuAdapterInfo>): boolean {
  if (info.isFallbackAdapter) return true;
  if ((info.architecture ?? '').trim().toLowerCase() === 'warp') return true;
  return [info.vendor, info.architecture, info.device, info.description].some((s) => typeof s === 'string' && SOFTWARE_WORDS.test(s));
}

/** The adapter's name: its description, else vendor, architecture and device ("google swiftshader"). */
function adapterName(a: GpuAdapterInfo): string {
  return a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unknown adapter';
}

/** "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6), software" from an adapter's info. */
export function describeAdapter(a: GpuAdapterInfo): string {
  const name = adapterName(a);
  return isSoftwareAdapter(a) ? `${name}, software` : name;
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
  /**
   * For `auto`: the adapter's info without installing anything in this
   * process (nothing left alive, nothing printed), or in a few words why
   * there is none.
   */
  probe?(): Promise<GpuProbe>;
}

/** The adapter a WebGPU probe found, or in a few words why none. */
export type GpuProbe = { ok: true; info: GpuAdapterInfo } | { ok: false; reason: string };

let gpuProvider: GpuProvider | undefined;

/** Register how navigator.gpu is made where there is none (Node adapters do this on import). */
export function setGpuProvider(p: GpuProvider): void {
  gpuProvider = p;
}

let providerProbe: Promise<GpuProbe> | undefined;

/**
 * The adapter webgpu would run on, for `auto`: navigator.gpu's where there is
 * one (a page), else the provider's probe (Node: Dawn in a child process,
 * once per process), else why there is none.
 */
async function probeWebGpu(): Promise<GpuProbe> {
  const gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (gpu) {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
    return adapter ? { ok: true, info: await readAdapterInfo(adapter) } : { ok: false, reason: 'no webgpu adapter' };
  }
  if (gpuProvider?.probe) return (providerProbe ??= gpuProvider.probe().catch((e) => ({ ok: false, reason: `webgpu probe failed: ${String((e as Error)?.message ?? e).split('\n')[0]}` })));
  return { ok: false, reason: isNode ? 'no webgpu: no navigator.gpu (import liveportrait-tfjs/node for Dawn\'s binding)' : 'no webgpu in this browser (no navigator.gpu)' };
}

/**
 * `auto`'s WebGPU step: the webgpu backend when the probe finds a hardware
 * adapter and the backend starts; else why not (a software adapter, none, or
 * a failed start), and the others are tried.
 */
async function tryAutoWebGpu(): Promise<{ ok: true } | { ok: false; reason: string; software?: GpuAdapterInfo }> {
  const p = await probeWebGpu();
  if (!p.ok) return p;
  if (isSoftwareAdapter(p.info)) return { ok: false, reason: `webgpu adapter ${adapterName(p.info)} is software`, software: p.info };
  const r = await tryWebGpu();
  if (r.ok) return r;
  return { ok: false, reason: `webgpu: ${r.reason.replace(/(;|,? or) run with --backend wasm$/, '')}` };
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
    // "Initialization of backend webgpu failed", then the error itself: keep the error.
    const line = a.map((x) => String((x as Error)?.message ?? x)).join(' ').split('\n')[0];
    if (!failure || /^Initialization of backend/.test(failure)) failure = line;
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
  let webgpuSkipped: string | undefined;
  let softwareAdapter: GpuAdapterInfo | undefined;
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
    provider = isNode ? await tryNative() : undefined;
    if (!provider) {
      const gpu = await tryAutoWebGpu();
      if (gpu.ok) provider = '@tensorflow/tfjs-backend-webgpu';
      else {
        webgpuSkipped = gpu.reason;
        softwareAdapter = gpu.software;
      }
    }
    if (!provider && (await tryWasm(opts.wasmThreads))) provider = '@tensorflow/tfjs-backend-wasm';
    if (!provider) {
      await tf.setBackend('cpu');
      provider = '@tensorflow/tfjs-backend-cpu';
    }
  }
  await tf.ready();
  current = { name: tf.getBackend(), provider, reason };
  if (current.name === 'webgpu' && adapterInfo) current.device = describeAdapter(adapterInfo);
  if (webgpuSkipped) current.webgpuSkipped = webgpuSkipped;
  if (softwareAdapter) current.softwareAdapter = softwareAdapter;
  const log = opts.log ?? true;
  if (log) {
    const skipped = webgpuSkipped ? `; ${webgpuSkipped}${softwareAdapter ? ': ask for --backend webgpu to use it' : ''}` : '';
    const line = `liveportrait: backend ${current.name} (${current.provider}${current.device ? `, ${current.device}` : ''}, ${current.reason}${skipped})`;
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
