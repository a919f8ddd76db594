/**
 * The GPU cost report of `liveportrait bench --profile`: per network and per
 * frame, how many kernels ran, how many GPU dispatches they cost (webgpu:
 * counted at tfjs-backend-webgpu's program runner, one compute dispatch
 * each; a kernel such as Reshape costs none), the bytes of the tensors they
 * created, the host reads and uploads, and the top kernels by count and by
 * bytes. The counts do not depend on the adapter's speed: a software adapter
 * counts what a GPU would run, for the same kernel choices (the Winograd
 * path is taken on software adapters only: `LIVEPORTRAIT_WINOGRAD=0` gives
 * the kernels of a hardware GPU).
 */
import * as tf from '@tensorflow/tfjs';

export interface KernelTally {
  kernel: string;
  calls: number;
  /** Bytes of the output tensors it created (4 bytes an element but for bool). */
  bytes: number;
}

export interface CostReport {
  name: string;
  /** tfjs kernels run (op wrappers left out). */
  kernels: number;
  /** GPU compute dispatches (webgpu only). */
  dispatches?: number;
  /** Bytes of every tensor the kernels created. */
  bytes: number;
  /** Peak of tf.memory().numBytes during the call. */
  peakBytes: number;
  /** Tensors read back to the host (webgpu; each read waits for the GPU). */
  reads?: number;
  /** Tensors uploaded from the host (webgpu). */
  uploads?: number;
  /** Dispatches by shader program (webgpu), most first. */
  programs?: KernelTally[];
  byCount: KernelTally[];
  byBytes: KernelTally[];
}

type Program = { constructor: { name: string }; outputShape: number[]; shaderKey?: string };
interface TensorData {
  values?: unknown;
  resource?: unknown;
  shape: number[];
  dtype: string;
}
interface WebGpuBackendLike {
  runWebGPUProgram(program: Program, inputs: unknown[], dtype: string, uniforms?: unknown, output?: unknown): unknown;
  makeTensorInfo(shape: number[], dtype: string): unknown;
  read(dataId: object): Promise<unknown>;
  uploadToGPU(dataId: object): void;
  tensorMap: { get(dataId: object): TensorData };
}

export interface CountOptions {
  /**
   * Count without running (webgpu): programs are counted and their outputs
   * made, never dispatched; reads give zeros. The counts are a real run's
   * (the kernels chosen depend on shapes, not values): for quick comparisons
   * on a slow adapter. Times and values mean nothing then.
   */
  dryRun?: boolean;
}

/** Counts, while `fn` runs, the webgpu backend's dispatches, downloads (reads) and uploads. */
async function countGpu<T>(fn: () => Promise<T>, opts: CountOptions = {}): Promise<{ value: T; dispatches?: number; reads?: number; uploads?: number; programs?: Map<string, number> }> {
  if (tf.getBackend() !== 'webgpu') return { value: await fn() };
  const b = tf.backend() as unknown as WebGpuBackendLike;
  const programs = new Map<string, number>();
  let dispatches = 0;
  let reads = 0;
  let uploads = 0;
  const { runWebGPUProgram: run, read, uploadToGPU: upload } = b;
  b.runWebGPUProgram = function (this: WebGpuBackendLike, program, inputs, dtype, uniforms, output) {
    if (program.outputShape.reduce((x, y) => x * y, 1) > 0) {
      dispatches++;
      // tfjs's programs are classes; ours (src/layers/webgpu_kernels.ts) are named by their key.
      const name = program.constructor.name === 'Object' ? String(program.shaderKey).split('_')[0] : program.constructor.name;
      programs.set(name, (programs.get(name) ?? 0) + 1);
    }
    if (opts.dryRun) {
      // The output gets its GPU buffer, unwritten, as a real run's would (so later kernels do not take it for host data).
      const out = (output ?? this.makeTensorInfo(program.outputShape, dtype)) as { dataId: object };
      upload.call(this, out.dataId);
      return out;
    }
    return run.call(this, program, inputs, dtype, uniforms, output);
  };
  b.read = function (this: WebGpuBackendLike, id: object) {
    const d = this.tensorMap.get(id);
    if (d.values == null) {
      reads++;
      if (opts.dryRun && d.resource == null) return Promise.resolve(new (d.dtype === 'int32' ? Int32Array : Float32Array)(d.shape.reduce((x, y) => x * y, 1)));
    }
    return read.call(this, id);
  };
  b.uploadToGPU = function (this: WebGpuBackendLike, id: object) {
    const d = this.tensorMap.get(id);
    if (d.resource == null && d.values != null) uploads++;
    return upload.call(this, id);
  };
  try {
    const value = await fn();
    return { value, dispatches, reads, uploads, programs };
  } finally {
    b.runWebGPUProgram = run;
    b.read = read;
    b.uploadToGPU = upload;
  }
}

const ELEMENT_BYTES: Record<string, number> = { bool: 1 };
/** Kernels that make a view of their input's data: no bytes created (and on webgpu no dispatch). */
const VIEW_KERNELS = new Set(['Reshape', 'Identity']);

function tally(entries: Map<string, { calls: number; bytes: number }>): KernelTally[] {
  return [...entries].map(([kernel, t]) => ({ kernel, ...t }));
}

/**
 * The cost of one run of `fn` (which may be async and should leave no
 * tensors but those it returns to be disposed). `top`: how many kernels to
 * list by count and by bytes.
 */
export async function costOf(name: string, fn: () => Promise<void> | void, top = 8, opts: CountOptions = {}): Promise<CostReport> {
  let info: Awaited<ReturnType<typeof tf.profile>> | undefined;
  const gpu = await countGpu(async () => {
    info = await tf.profile(fn as () => tf.TensorContainer);
  }, opts);
  const kernels = new Map<string, { calls: number; bytes: number }>();
  let count = 0;
  let bytes = 0;
  for (const k of info!.kernels as unknown as { name: string; outputShapes: number[][]; outputs?: { dtype: string }[] }[]) {
    if (k.name.endsWith('__op')) continue;
    count++;
    const b = VIEW_KERNELS.has(k.name) ? 0 : (k.outputShapes ?? []).reduce((s, shape, i) => s + (shape ?? []).reduce((a, c) => a * c, 1) * (ELEMENT_BYTES[k.outputs?.[i]?.dtype ?? ''] ?? 4), 0);
    bytes += b;
    const t = kernels.get(k.name) ?? { calls: 0, bytes: 0 };
    t.calls++;
    t.bytes += b;
    kernels.set(k.name, t);
  }
  const all = tally(kernels);
  return {
    name,
    kernels: count,
    dispatches: gpu.dispatches,
    bytes,
    peakBytes: info!.peakBytes,
    reads: gpu.reads,
    uploads: gpu.uploads,
    programs: gpu.programs && [...gpu.programs].map(([kernel, calls]) => ({ kernel, calls, bytes: 0 })).sort((a, b) => b.calls - a.calls).slice(0, top),
    byCount: [...all].sort((a, b) => b.calls - a.calls).slice(0, top),
    byBytes: [...all].sort((a, b) => b.bytes - a.bytes).slice(0, top),
  };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** The report as text lines. */
export function formatCost(r: CostReport): string[] {
  const lines = [
    `${r.name}: ${r.kernels} kernels${r.dispatches !== undefined ? `, ${r.dispatches} GPU dispatches` : ''}, tensors created ${mib(r.bytes)}, peak ${mib(r.peakBytes)}` +
      (r.reads !== undefined ? `, ${r.reads} host reads, ${r.uploads} uploads` : ''),
    `    by count: ${r.byCount.map((k) => `${k.kernel} ${k.calls}`).join(', ')}`,
    `    by bytes: ${r.byBytes.map((k) => `${k.kernel} ${mib(k.bytes)}`).join(', ')}`,
  ];
  if (r.programs?.length) lines.push(`    dispatches by program: ${r.programs.map((k) => `${k.kernel} ${k.calls}`).join(', ')}`);
  return lines;
}

/** Deterministic 256x256 RGB noise on the host (no tensors). */
export function noiseRgb(seed: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(256 * 256 * 3);
  let x = seed * 2654435761;
  for (let i = 0; i < data.length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return { width: 256, height: 256, data };
}

/**
 * The cost of one whole frame (M on the driving frame, keypoint math and
 * stitching, W, G) on this thread, through LivePortrait.animate with
 * synthetic weights: frame 2 of 2 is profiled (the first pays one-time work).
 */
export async function frameCost(seed: number, top = 8, opts: CountOptions = {}): Promise<CostReport> {
  const { LivePortrait } = await import('../../src/pipeline/live_portrait.js');
  const { Driving } = await import('../../src/pipeline/driving.js');
  const lp = LivePortrait.synthetic(seed);
  // The source and the first frame pay one-time work (shader builds, weight uploads); dry too in a dry run.
  const untimed = <T>(fn: () => Promise<T>) => countGpu(fn, opts).then((r) => r.value);
  const source = await untimed(() => lp.prepareSource(noiseRgb(100)));
  try {
    const driving = (async function* () {
      for (let i = 0; i < 2; i++) yield noiseRgb(200 + i);
    })();
    // pose-friendly: expression-friendly reads the first frame's keypoints for a hull volume, zeros in a dry run.
    const frames = lp.animate(source, Driving.frames(driving), { relativeMotion: true, stitching: true, drivingOption: 'pose-friendly' });
    await untimed(() => frames.next());
    const report = await costOf('frame', async () => void (await frames.next()), top, opts);
    await frames.return?.(undefined);
    return report;
  } finally {
    lp.disposeSource(source);
    await lp.dispose();
  }
}

