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
import type { FramePool, HostArray, PoolFrame, WorkerWeights } from '../pipeline/frame_pool.js';
import type { LivePortrait } from '../pipeline/live_portrait.js';
import { type BackendMemory, backendInfo } from '../backend.js';
import { InputError } from '../errors.js';

export interface PoolOptions {
  weights: WorkerWeights;
  /** Number of workers (default: `defaultWorkerCount()`). */
  workers?: number;
  /** Backend for the workers (default: LIVEPORTRAIT_BACKEND, else auto). */
  backend?: string;
  /**
   * Pair the workers, each pair splitting the frame (default true): one runs
   * W and G's first stages, the other the rest of G, so each holds about
   * half the weights and its own part's intermediate tensors, and the pair
   * keeps two frames in flight. With an odd number, the last worker renders
   * whole frames.
   */
  split?: boolean;
}

/** What a worker runs: the whole frame, or the head (W, G's first stages) or tail (the rest of G) of a split pair. */
export type WorkerRole = 'whole' | 'head' | 'tail';

/**
 * Where a pair splits G: the head runs W and G's stages before this one (fc,
 * G_middle_0..2), the tail the rest. Balanced by time on wasm here: W 13 s
 * plus fc and three middle blocks 4 s, against three middle blocks, up_0
 * (3.9 s) and up_1 (7.7 s).
 */
export const SPLIT_STAGE = 4;

/**
 * Peak resident memory of one frame worker of a split pair on wasm: its
 * part of W and G (tensors, and XNNPACK's packed copies of the filters) and
 * the wasm heap its part's intermediate tensors grow. Measured with
 * `npm run bench -- --only none --pipeline N`: 1.46 GiB (head) and 1.26 GiB
 * (tail) of wasm heap; a whole-frame worker (an odd one out) needs about
 * 2.7 GiB.
 */
const WORKER_PEAK_BYTES = 1.75 * 2 ** 30;
/** Left for the main thread (F, M, faces, video) and everything else. */
const MAIN_RESERVE_BYTES = 1.5 * 2 ** 30;

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
  ready: Promise<void>;
  stats: WorkerStats;
}

/** One whole-frame worker, or a split pair: frames go to the head; a head's 'mid' answers go on to the tail. */
interface Lane {
  head: Slot;
  tail?: Slot;
  inFlight: number;
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
  private lanes: Lane[] = [];
  private jobs = new Map<number, Pending>();
  private nextJob = 0;
  private sourceId = 0;
  private failed?: Error;
  private readonly n: number;

  private constructor(size: number) {
    this.n = size;
  }

  /** Frames in flight at once: one per worker (0 once one has died: the pool is then of no use, and ensureWorkers starts a new one). */
  get size(): number {
    return this.failed ? 0 : this.n;
  }

  /** Whether the workers run in split pairs. */
  get split(): boolean {
    return this.lanes.some((l) => l.tail);
  }

  /** The worker threads (for tests and monitoring). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  /** Each worker's role and backend memory (for benchmarks and monitoring). */
  get stats(): readonly WorkerStats[] {
    return this.slots.map((s) => ({ ...s.stats }));
  }

  /** Frames sent to the workers and not answered yet. */
  get pending(): number {
    return this.jobs.size;
  }

  /** Start `workers` workers and wait until each has loaded its part of W and G. */
  static async create(opts: PoolOptions): Promise<WarpDecodePool> {
    const n = Math.max(1, opts.workers ?? defaultWorkerCount(opts.backend));
    const split = opts.split ?? n > 1;
    const pool = new WarpDecodePool(n);
    WarpDecodePool.open.add(pool);
    const start = (i: number, role: WorkerRole, lane: Lane): Slot => {
      const worker = startWorker();
      let readyResolve!: () => void;
      let readyReject!: (e: Error) => void;
      const ready = new Promise<void>((res, rej) => {
        readyResolve = res;
        readyReject = rej;
      });
      const stats: WorkerStats = { role };
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') {
          stats.weights = m.memory;
          readyResolve();
        } else if (m.type === 'init-error') readyReject(new Error(m.message));
        else {
          if ((m.type === 'frame' || m.type === 'mid') && m.memory) stats.latest = m.memory;
          pool.answer(lane, m);
        }
      });
      worker.on('error', (e: unknown) => pool.fail(workerDied(i, n, e instanceof Error ? e.message : String(e)), readyReject));
      worker.on('exit', (code) => {
        if (!pool.closing) pool.fail(workerDied(i, n, `exit code ${code}`), readyReject);
      });
      worker.postMessage({ type: 'init', backend: opts.backend, weights: opts.weights, role, split: SPLIT_STAGE } satisfies WorkerRequest);
      const slot: Slot = { worker, ready, stats };
      pool.slots.push(slot);
      return slot;
    };
    // Pairs while two workers are left; an odd one out renders whole frames.
    for (let i = 0; i < n; ) {
      const lane = { inFlight: 0 } as Lane;
      const pair = split && i + 1 < n;
      lane.head = start(i++, pair ? 'head' : 'whole', lane);
      if (pair) lane.tail = start(i++, 'tail', lane);
      pool.lanes.push(lane);
    }
    try {
      await Promise.all(pool.slots.map((s) => s.ready));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** A worker's answer for a frame: the image, an error, or (a head's) G's running tensor for the lane's tail. */
  private answer(lane: Lane, m: WorkerReply): void {
    if (m.type !== 'frame' && m.type !== 'error' && m.type !== 'mid') return;
    const job = this.jobs.get(m.job);
    if (!job) return;
    if (m.type === 'mid') {
      lane.tail!.worker.postMessage({ type: 'decode', job: m.job, feature: m.feature, x: m.x } satisfies WorkerRequest, [
        m.feature.data.buffer as ArrayBuffer,
        m.x.data.buffer as ArrayBuffer,
      ]);
      return;
    }
    this.jobs.delete(m.job);
    lane.inFlight--;
    if (m.type === 'frame') job.resolve({ data: m.data, shape: m.shape });
    else job.reject(new Error(m.message));
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

  /** Send the source feature volume f_s ([1, 16, 64, 64, 32], NDHWC) to every worker that warps. */
  setSource(f_s: Float32Array, shape: number[]): number {
    const id = ++this.sourceId;
    for (const l of this.lanes) l.head.worker.postMessage({ type: 'source', id, f_s, shape } satisfies WorkerRequest);
    return id;
  }

  /**
   * Warp and decode one frame from keypoints x_s, x_d ([1, 21, 3] each) on
   * the least busy lane, with the feature of setSource, or with `f_s`
   * given for this frame alone (source videos: a new f_s every frame).
   */
  render(x_s: Float32Array, x_d: Float32Array, f_s?: HostArray): Promise<PoolFrame> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closing) return Promise.reject(new Error('WarpDecodePool.render: the frame workers are closed'));
    if (this.sourceId === 0 && !f_s) return Promise.reject(new Error('WarpDecodePool.render: call setSource first or pass f_s'));
    const lane = this.lanes.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const job = this.nextJob++;
    lane.inFlight++;
    return new Promise<PoolFrame>((resolve, reject) => {
      this.jobs.set(job, { resolve, reject });
      lane.head.worker.postMessage({ type: 'render', job, sourceId: this.sourceId, x_s, x_d, f_s } satisfies WorkerRequest);
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
  return new Error(`frame worker ${i + 1} of ${n} stopped unexpectedly (${why}); it may have run out of memory (each needs up to 1.75 GiB, 2.7 GiB alone): try ${fewer}--workers 0`);
}

/** What one worker runs and holds: `weights` at start-up (its W and G), `latest` after its last frame. */
export interface WorkerStats {
  role: WorkerRole;
  weights?: BackendMemory;
  latest?: BackendMemory;
}

/** Messages to a worker. */
export type WorkerRequest =
  | { type: 'init'; backend?: string; weights: WorkerWeights; role?: WorkerRole; split?: number }
  | { type: 'source'; id: number; f_s: Float32Array; shape: number[] }
  | { type: 'render'; job: number; sourceId: number; x_s: Float32Array; x_d: Float32Array; f_s?: HostArray }
  | { type: 'decode'; job: number; feature: HostArray; x: HostArray };

/** Messages from a worker. */
export type WorkerReply =
  | { type: 'ready'; backend: string; memory: BackendMemory }
  | { type: 'init-error'; message: string }
  | { type: 'frame'; job: number; data: Float32Array; shape: [number, number, number, number]; memory?: BackendMemory }
  | { type: 'mid'; job: number; feature: HostArray; x: HostArray; memory: BackendMemory }
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
