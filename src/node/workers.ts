/**
 * Frames in parallel: a pool of worker_threads, each with its own tfjs
 * backend instance (the wasm backend runs one thread per process in Node),
 * each holding its own W and G. The main thread keeps the cheap per-frame
 * work (M, keypoint math, S) and sends every worker the source feature f_s
 * once, then (x_s, x_d) per frame; a worker answers with the decoded image.
 * `mapOrdered` keeps frame order with several frames in flight.
 */
import { createRequire } from 'node:module';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FramePool, PoolFrame, WorkerWeights } from '../pipeline/frame_pool.js';
import type { LivePortrait } from '../pipeline/live_portrait.js';
import { backendInfo } from '../backend.js';
import { InputError } from '../errors.js';

export interface PoolOptions {
  weights: WorkerWeights;
  /** Number of workers (default: `defaultWorkerCount()`). */
  workers?: number;
  /** Backend for the workers (default: LIVEPORTRAIT_BACKEND, else auto). */
  backend?: string;
}

/**
 * Peak resident memory of one frame worker on wasm: W and G with their
 * Winograd filters and the transient tiles of one convolution. 8.3 GiB
 * (8453 MiB) was the whole process's peak with two workers here, main
 * thread included.
 */
const WORKER_PEAK_BYTES = 3.5 * 2 ** 30;
/** Left for the main thread (F, M, faces, video) and everything else. */
const MAIN_RESERVE_BYTES = 2 * 2 ** 30;

/**
 * Workers worth starting on this machine for this backend: one per core for
 * the single-threaded CPU backends (wasm, cpu), as many as 80% of the
 * machine's memory holds; none (render in-process) for backends that use
 * the whole machine themselves (tensorflow, webgpu), or where memory holds
 * fewer than two.
 */
export function defaultWorkerCount(backend: string | undefined, memoryBytes: number = totalmem()): number {
  if (backend === 'tensorflow' || backend === 'webgpu' || backend === 'webgl') return 0;
  const byMemory = Math.floor((0.8 * memoryBytes - MAIN_RESERVE_BYTES) / WORKER_PEAK_BYTES);
  const n = Math.min(availableParallelism(), byMemory);
  return n > 1 ? n : 0;
}

interface Pending {
  resolve(f: PoolFrame): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  inFlight: number;
  ready: Promise<void>;
}

/** Start the worker script; from TypeScript sources (tests, tsx) through tsx's loader. */
function startWorker(): Worker {
  const self = new URL(import.meta.url);
  if (!self.pathname.endsWith('.ts')) return new Worker(new URL('./worker.js', self));
  // tsx's ESM API (its "import" export of tsx/esm/api), found from its package.json.
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsxApi = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  const script = new URL('./worker.ts', self).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(script)}); });`;
  return new Worker(boot, { eval: true });
}

export class WarpDecodePool implements FramePool {
  /** The pools that are running (tests reach their workers through `threads`). */
  static readonly open = new Set<WarpDecodePool>();
  private slots: Slot[] = [];
  private jobs = new Map<number, Pending>();
  private nextJob = 0;
  private sourceId = 0;
  private failed?: Error;
  private readonly n: number;

  private constructor(size: number) {
    this.n = size;
  }

  /** Workers rendering (0 once one has died: the pool is then of no use, and ensureWorkers starts a new one). */
  get size(): number {
    return this.failed ? 0 : this.n;
  }

  /** The worker threads (for tests and monitoring). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  /** Frames sent to the workers and not answered yet. */
  get pending(): number {
    return this.jobs.size;
  }

  /** Start `workers` workers and wait until each has loaded W and G. */
  static async create(opts: PoolOptions): Promise<WarpDecodePool> {
    const n = Math.max(1, opts.workers ?? defaultWorkerCount(opts.backend));
    const pool = new WarpDecodePool(n);
    WarpDecodePool.open.add(pool);
    for (let i = 0; i < n; i++) {
      const worker = startWorker();
      let readyResolve!: () => void;
      let readyReject!: (e: Error) => void;
      const ready = new Promise<void>((res, rej) => {
        readyResolve = res;
        readyReject = rej;
      });
      const slot: Slot = { worker, inFlight: 0, ready };
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') readyResolve();
        else if (m.type === 'init-error') readyReject(new Error(m.message));
        else if (m.type === 'frame' || m.type === 'error') {
          const job = pool.jobs.get(m.job);
          if (!job) return;
          pool.jobs.delete(m.job);
          slot.inFlight--;
          if (m.type === 'frame') job.resolve({ data: m.data, shape: m.shape });
          else job.reject(new Error(m.message));
        }
      });
      worker.on('error', (e: unknown) => pool.fail(workerDied(i, n, e instanceof Error ? e.message : String(e)), readyReject));
      worker.on('exit', (code) => {
        if (!pool.closing) pool.fail(workerDied(i, n, `exit code ${code}`), readyReject);
      });
      worker.postMessage({ type: 'init', backend: opts.backend, weights: opts.weights } satisfies WorkerRequest);
      pool.slots.push(slot);
    }
    try {
      await Promise.all(pool.slots.map((s) => s.ready));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private closing = false;

  /** A worker died: every frame in flight fails with one clear error, and the other workers are stopped. */
  private fail(e: Error, readyReject: (e: Error) => void): void {
    if (this.closing && !this.failed) return;
    const first = !this.failed;
    this.failed ??= e;
    readyReject(e);
    for (const job of this.jobs.values()) job.reject(this.failed);
    this.jobs.clear();
    if (first) void this.close();
  }

  /** Send the source feature volume f_s ([1, 16, 64, 64, 32], NDHWC) to every worker. */
  setSource(f_s: Float32Array, shape: number[]): number {
    const id = ++this.sourceId;
    for (const s of this.slots) s.worker.postMessage({ type: 'source', id, f_s, shape } satisfies WorkerRequest);
    return id;
  }

  /**
   * Warp and decode one frame from keypoints x_s, x_d ([1, 21, 3] each) on
   * the least busy worker, with the feature of setSource, or with `f_s`
   * given for this frame alone (source videos: a new f_s every frame).
   */
  render(x_s: Float32Array, x_d: Float32Array, f_s?: { data: Float32Array; shape: number[] }): Promise<PoolFrame> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new Error('WarpDecodePool.render: the frame workers are closed'));
    if (this.sourceId === 0 && !f_s) return Promise.reject(new Error('WarpDecodePool.render: call setSource first or pass f_s'));
    const slot = this.slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const job = this.nextJob++;
    slot.inFlight++;
    return new Promise<PoolFrame>((resolve, reject) => {
      this.jobs.set(job, { resolve, reject });
      slot.worker.postMessage({ type: 'render', job, sourceId: this.sourceId, x_s, x_d, f_s } satisfies WorkerRequest);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    WarpDecodePool.open.delete(this);
    const slots = this.slots;
    await Promise.all(slots.map((s) => s.worker.terminate()));
    for (const job of this.jobs.values()) job.reject(this.failed ?? new Error('frame workers closed'));
    this.jobs.clear();
  }
}

/** The error of a worker that stopped unexpectedly (crash, out of memory, killed). */
function workerDied(i: number, n: number, why: string): Error {
  const fewer = n > 1 ? `--workers ${n - 1} or ` : '';
  return new Error(`frame worker ${i + 1} of ${n} stopped unexpectedly (${why}); it may have run out of memory (each needs about 3.5 GiB): try ${fewer}--workers 0`);
}

/** Messages to a worker. */
export type WorkerRequest =
  | { type: 'init'; backend?: string; weights: WorkerWeights }
  | { type: 'source'; id: number; f_s: Float32Array; shape: number[] }
  | { type: 'render'; job: number; sourceId: number; x_s: Float32Array; x_d: Float32Array; f_s?: { data: Float32Array; shape: number[] } };

/** Messages from a worker. */
export type WorkerReply =
  | { type: 'ready'; backend: string }
  | { type: 'init-error'; message: string }
  | { type: 'frame'; job: number; data: Float32Array; shape: [number, number, number, number] }
  | { type: 'error'; job: number; message: string };

/**
 * Render `lp`'s frames in `n` worker threads (default `defaultWorkerCount()`:
 * one per core on the wasm and cpu backends as memory allows, none on
 * backends that use the whole machine). Each worker has its own backend and
 * its own W and G, loaded from `lp.workerWeights`; animate() then keeps
 * several frames in flight and yields them in order. 0 stops the workers.
 * Returns the number of workers running.
 */
export async function startFrameWorkers(lp: LivePortrait, n: number = defaultWorkerCount(backendInfo()?.name), opts: { backend?: string } = {}): Promise<number> {
  await lp.usePool(undefined);
  if (n <= 0) return 0;
  if (!lp.workerWeights) throw new InputError('frame workers need a weights source: this LivePortrait was built from networks, not weights');
  await lp.usePool(await WarpDecodePool.create({ weights: lp.workerWeights, workers: n, backend: opts.backend ?? backendInfo()?.name }));
  return lp.workers;
}
