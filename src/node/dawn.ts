/**
 * WebGPU in Node: navigator.gpu from Dawn's binding (the npm package
 * `webgpu`, which ships dawn.node for linux-x64 and needs a Vulkan driver).
 * Importing this module registers it with the core's backend choice; it
 * loads nothing until a backend is chosen. For `auto` the adapter is looked
 * at in a child process (`probe`): Dawn prints warnings from native code
 * and keeps its instance, neither of which a process that ends up on wasm
 * should get.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { type GpuAdapterInfo, type GpuLike, type GpuProbe, NO_DRIVER_HINT, setGpuProvider } from '../backend.js';

const require = createRequire(import.meta.url);
const DAWN_PKG = 'webgpu';
let dawnEntry: string | undefined;

/**
 * Why Dawn found no adapter. Dawn prints its reasons to the process's stderr
 * from native code, out of reach of JavaScript, so the adapter request is
 * repeated in a child process whose stderr is read. One line.
 */
function dawnAdapterFailure(entry: string): string {
  const script = `const { create, globals } = await import(${JSON.stringify(pathToFileURL(entry).href)});
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
  const { lines, noDriver } = dawnMessages(stderr);
  if (noDriver || (lines.length === 0 && stdout === 'null')) return `no Vulkan driver found${lines.length ? ` (Dawn: ${lines.join('; ')})` : ''}: ${NO_DRIVER_HINT}`;
  return `no usable WebGPU adapter${lines.length ? ` (Dawn: ${lines.join('; ')})` : ''}: ${NO_DRIVER_HINT}`;
}

/** Dawn's warnings and errors on stderr (less the limits it always reduces on lavapipe), and whether they say there is no Vulkan driver. */
function dawnMessages(stderr: string): { lines: string[]; noDriver: boolean } {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(Warning|Error):/.test(l) && !/artificially reduced/.test(l))
    .map((l) => l.replace(/^(Warning|Error):\s*/, ''));
  return { lines, noDriver: lines.some((l) => /Found no drivers|VK_ERROR_INCOMPATIBLE_DRIVER|Failed to open JSON file|libvulkan/i.test(l)) };
}

/** How long `auto` waits for the adapter probe (a hung driver must not hang the CLI). */
const PROBE_TIMEOUT_MS = 20_000;

/**
 * The adapter Dawn would give, asked in a child process: its info, or in a
 * few words why there is none. Nothing of Dawn's is left in this process and
 * its native warnings go to the child's stderr (read here only for a reason).
 * About 0.1 s here (lavapipe).
 */
function dawnProbe(entry: string): Promise<GpuProbe> {
  // The child answers with one line of JSON: the adapter's info, null (no adapter) or why the binding did not load.
  const script = `let dawn;
try { dawn = await import(${JSON.stringify(pathToFileURL(entry).href)}); }
catch (e) { process.stdout.write(JSON.stringify({ load: String(e?.message ?? e).split('\\n')[0] }), () => process.exit(0)); await new Promise(() => {}); }
const a = await dawn.create([]).requestAdapter({ powerPreference: 'high-performance' });
const i = a ? (a.info ?? {}) : undefined;
const info = i && { vendor: i.vendor ?? '', architecture: i.architecture ?? '', device: i.device ?? '', description: i.description ?? '', isFallbackAdapter: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter) };
process.stdout.write(JSON.stringify({ info: info ?? null }), () => process.exit(0));`;
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // the child is plain JavaScript: no loaders, no inspector
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS, env, windowsHide: true }, (err, stdout, stderr) => {
      let answer: { info?: GpuAdapterInfo | null; load?: string } | undefined;
      try {
        answer = JSON.parse(stdout.trim().split('\n').at(-1) ?? '');
      } catch {
        answer = undefined;
      }
      if (answer?.info) return resolve({ ok: true, info: answer.info });
      if (answer?.load) return resolve({ ok: false, reason: `no webgpu: Dawn's binding (npm package webgpu) does not load: ${answer.load}` });
      const { lines, noDriver } = dawnMessages(stderr);
      const dawn = lines.length ? ` (Dawn: ${lines.join('; ')})` : '';
      if (answer && answer.info === null) return resolve({ ok: false, reason: noDriver || !dawn ? `no webgpu adapter (no Vulkan driver found)` : `no webgpu adapter${dawn}` });
      const e = err as (Error & { killed?: boolean; signal?: string; code?: number | string }) | null;
      if (e?.killed) return resolve({ ok: false, reason: `no webgpu: the adapter probe gave no answer in ${PROBE_TIMEOUT_MS / 1000} s` });
      resolve({ ok: false, reason: `no webgpu: the adapter probe failed (${e?.signal ?? `exit ${e?.code ?? '?'}`})${dawn}` });
    });
  });
}

function resolveDawn(): string | undefined {
  try {
    return require.resolve(DAWN_PKG);
  } catch {
    return undefined;
  }
}

setGpuProvider({
  async install() {
    dawnEntry = resolveDawn();
    if (!dawnEntry) {
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
  async probe() {
    const entry = resolveDawn();
    if (!entry) return { ok: false, reason: "no webgpu: Dawn's binding (npm package webgpu) is not installed" };
    return dawnProbe(entry);
  },
});
