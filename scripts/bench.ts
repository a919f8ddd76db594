/**
 * Benchmark of the five networks on the active tfjs backend, with synthetic
 * weights (no download needed).
 *
 *   npm run bench -- [--backend wasm|cpu|tensorflow|webgpu|all] [--runs N] [--warmup N]
 *                    [--only F,M,W,G,S|none] [--batch N] [--seed N] [--layers]
 *                    [--profile [--dry-run]]
 *                    [--pipeline FRAMES] [--workers N] [--json]
 *
 * --pipeline FRAMES: the whole per-frame pipeline (M on the driving frame,
 * keypoint math and stitching, W, G) over FRAMES driving frames through
 * LivePortrait.animate, with --workers frame workers (default: the
 * library's choice, one per core on wasm and cpu): frames per second,
 * seconds per frame (after the first), worker start-up time, time to the
 * first frame, the process's peak RSS (worker threads included), RSS and the
 * main thread's tensors after frames 1, 10 and the last (a soak: --pipeline
 * 120), and each worker's tensor bytes and wasm heap. --layers: time per tfjs kernel type in one call
 * of each network. --backend all: every backend that starts here, in turn.
 * --profile: the GPU cost report of scripts/bench/profile.ts instead of
 * timings (kernels, webgpu dispatches, bytes created, host reads and
 * uploads per network, and with --pipeline for one frame); --dry-run counts
 * webgpu programs without dispatching them.
 *
 * Per network: ms per call (mean, min over --runs timed calls after the
 * warm-up), GMAC per call and GMAC/s, the peak of tf.memory().numBytes
 * during a call (tf.profile's peakBytes, from the first warm-up call) and
 * the process's peak RSS so far (networks run small to large, so the figure
 * after a network is dominated by the largest one yet).
 *
 * GMAC per call: W and G use the counts measured on the PyTorch reference
 * (171 and 446 GMAC at batch 1). F, M and S are counted here from the shapes
 * of the convolution and matrix-product kernels the port runs in its first
 * warm-up call (MACs = output size × reduction length); grid sampling,
 * normalisation and element-wise work are not counted.
 */
import { Driving } from '../src/pipeline/driving.js';
import * as tf from '@tensorflow/tfjs';
import { backendMemory, gpuAdapterInfo, initBackend } from '../src/backend.js';
import '../src/node/dawn.js';
import { ParamReader } from '../src/layers/params.js';
import { type NetworkName as SyntheticModule, syntheticModuleWeights } from '../src/models/registry.js';
import { WarpDecodePool, type WorkerStats, startFrameWorkers } from '../src/node/workers.js';
import { syntheticStateDict } from '../src/models/synthetic.js';
import { type CostReport, costOf, formatCost, frameCost } from './bench/profile.js';

type NetId = 'F' | 'M' | 'W' | 'G' | 'S';
const ORDER: NetId[] = ['S', 'M', 'F', 'W', 'G'];

/** GMAC per call measured on the reference (batch 1). */
const REFERENCE_GMAC: Partial<Record<NetId, number>> = { W: 171, G: 446 };

interface Bench {
  id: NetId;
  name: string;
  /** One call; returns every output tensor. */
  call(): tf.Tensor[];
  dispose(): void;
}

interface Result {
  id: NetId;
  name: string;
  msMean: number;
  msMin: number;
  runs: number;
  gmac?: number;
  gmacSource?: 'reference' | 'counted';
  gmacPerS?: number;
  /** Convolution and matrix-product MACs counted in the port's own kernels (cross-check of the reference counts). */
  gmacCounted: number;
  tfPeakBytes: number;
  rssPeakBytes: number;
  /** With --layers: ms per tfjs kernel type in the profiled call, largest first. */
  layers?: { kernel: string; ms: number; calls: number }[];
}

interface Args {
  backend?: string;
  layers: boolean;
  pipeline: number;
  workers?: number;
  runs: number;
  warmup: number;
  only: NetId[];
  batch: number;
  seed: number;
  json: boolean;
  /** The GPU cost report: kernels, dispatches, bytes per network and per frame. */
  profile: boolean;
  /** With --profile on webgpu: count without dispatching (see scripts/bench/profile.ts). */
  dryRun: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 3, warmup: 1, only: ORDER, batch: 1, seed: 1, json: false, layers: false, pipeline: 0, profile: false, dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = (min: number): number => {
      const v = Number(value());
      if (!Number.isInteger(v) || v < min) throw new Error(`${flag} needs an integer ≥ ${min}`);
      return v;
    };
    if (flag === '--backend') args.backend = value();
    else if (flag === '--runs') args.runs = int(1);
    else if (flag === '--warmup') args.warmup = int(1);
    else if (flag === '--batch') args.batch = int(1);
    else if (flag === '--seed') args.seed = int(0);
    else if (flag === '--json') args.json = true;
    else if (flag === '--layers') args.layers = true;
    else if (flag === '--profile') args.profile = true;
    else if (flag === '--dry-run') args.dryRun = true;
    else if (flag === '--pipeline') args.pipeline = int(1);
    else if (flag === '--workers') args.workers = int(0);
    else if (flag === '--only') {
      const ids = value().toUpperCase().split(',').map((s) => s.trim()).filter((id) => id !== 'NONE');
      for (const id of ids) if (!ORDER.includes(id as NetId)) throw new Error(`--only: unknown network '${id}' (use F, M, W, G, S)`);
      args.only = ORDER.filter((id) => ids.includes(id));
    } else if (flag === '--help' || flag === '-h') {
      console.log('npm run bench -- [--backend NAME|all] [--runs N] [--warmup N] [--only F,M,W,G,S|none] [--batch N] [--seed N] [--layers] [--profile [--dry-run]] [--pipeline FRAMES] [--workers N] [--json]');
      process.exit(0);
    } else throw new Error(`unknown option '${argv[i]}'`);
  }
  return args;
}

function reader(module: SyntheticModule, seed: number): ParamReader {
  return new ParamReader(syntheticModuleWeights(module, seed), module, `synthetic seed ${seed}`);
}

/** Deterministic inputs. */
const image = (n: number) => tf.randomUniform([n, 256, 256, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
const keypoints = (n: number, seed: number) => tf.randomUniform([n, 21, 3], -0.5, 0.5, 'float32', seed) as tf.Tensor3D;

/** Builds network `id` with synthetic weights, or says why it cannot. */
async function build(id: NetId, seed: number, n: number): Promise<Bench> {
  if (id === 'F') {
    const m = await import('../src/models/appearance_feature_extractor.js');
    const net = new m.AppearanceFeatureExtractor(reader('appearance_feature_extractor', seed));
    const x = image(n);
    return { id, name: 'appearance feature extractor', call: () => [net.apply(x)], dispose: () => (net.dispose(), x.dispose()) };
  }
  if (id === 'M') {
    const m = await import('../src/models/motion_extractor.js');
    const net = new m.MotionExtractor(reader('motion_extractor', seed));
    const x = image(n);
    return { id, name: 'motion extractor', call: () => Object.values(net.apply(x)), dispose: () => (net.dispose(), x.dispose()) };
  }
  if (id === 'W') {
    const m = await import('../src/models/warping_module.js');
    const net = new m.WarpingModule(reader('warping_module', seed));
    const f = tf.randomNormal([n, 16, 64, 64, 32], 0, 1, 'float32', 2) as tf.Tensor5D;
    const kpS = keypoints(n, 3);
    const kpD = keypoints(n, 4);
    return {
      id,
      name: 'warping module',
      call: () => {
        const o = net.apply(f, kpS, kpD);
        return [o.out, o.occlusionMap, o.deformation];
      },
      dispose: () => (net.dispose(), tf.dispose([f, kpS, kpD])),
    };
  }
  if (id === 'G') {
    const m = await import('../src/models/spade_generator.js');
    const net = new m.SpadeGenerator(reader('spade_generator', seed));
    const x = tf.randomNormal([n, 64, 64, 256], 0, 1, 'float32', 5) as tf.Tensor4D;
    return { id, name: 'SPADE generator', call: () => [net.apply(x)], dispose: () => (net.dispose(), x.dispose()) };
  }
  // S: one frame's worth of the three MLPs (stitching, eye and lip retargeting).
  const m = await import('../src/models/stitching_retargeting_module.js');
  const specs = m.stitchingRetargetingSpecs();
  const readerOf = (part: keyof typeof specs) => {
    const name = `stitching_retargeting_module/${m.STITCHING_CHECKPOINT_NAMES[part]}`;
    return new ParamReader(syntheticStateDict(name, specs[part], seed), name, `synthetic seed ${seed}`);
  };
  const net = new m.StitchingRetargetingModule({ stitching: readerOf('stitching'), lip: readerOf('lip'), eye: readerOf('eye') });
  const kpS = keypoints(n, 6);
  const kpD = keypoints(n, 7);
  const eye = tf.randomUniform([n, 3], 0, 0.5, 'float32', 8) as tf.Tensor2D;
  const lip = tf.randomUniform([n, 2], 0, 0.5, 'float32', 9) as tf.Tensor2D;
  return {
    id,
    name: 'stitching + eye/lip retargeting',
    call: () => [net.stitching(kpS, kpD), net.retargetEye(kpS, eye), net.retargetLip(kpS, lip)],
    dispose: () => (net.dispose(), tf.dispose([kpS, kpD, eye, lip])),
  };
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** MACs of one profiled kernel from its shapes (convolutions and matrix products only). */
export function kernelMacs(k: { name: string; inputShapes: (number[] | null)[]; outputShapes: number[][] }): number {
  const out = k.outputShapes[0];
  const [x, w] = k.inputShapes;
  if (!out || !x || !w) return 0;
  switch (k.name) {
    case 'Conv2D':
    case 'FusedConv2D':
      return numel(out) * w[0] * w[1] * w[2]; // filter [kh, kw, in, out]
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D':
      return numel(out) * w[0] * w[1];
    case 'BatchMatMul':
    case '_FusedMatMul': {
      const m = out[out.length - 2];
      const [r, c] = x.slice(-2);
      const inner = r === m ? c : r; // a is [.., m, k] or, transposed, [.., k, m]
      return numel(out) * inner;
    }
    default:
      return 0;
  }
}

async function sync(outputs: tf.Tensor[]): Promise<void> {
  await Promise.all(outputs.map((t) => t.data()));
  tf.dispose(outputs);
}

async function measure(b: Bench, args: Args): Promise<Result> {
  // First warm-up call under the profiler: peak bytes and kernel shapes.
  const profile = await tf.profile(() => {
    tf.dispose(b.call()); // only the kernels' shapes and the byte counts are kept
  });
  const counted = profile.kernels.reduce((s, k) => s + kernelMacs(k as unknown as Parameters<typeof kernelMacs>[0]), 0) / 1e9;
  const layers = args.layers ? kernelTimes(profile.kernels as unknown as { name: string; kernelTimeMs: number }[]) : undefined;
  for (let i = 1; i < args.warmup; i++) await sync(b.call());
  const times: number[] = [];
  for (let i = 0; i < args.runs; i++) {
    const t0 = performance.now();
    await sync(b.call());
    times.push(performance.now() - t0);
  }
  const msMean = times.reduce((a, c) => a + c, 0) / times.length;
  const ref = REFERENCE_GMAC[b.id];
  const gmac = ref !== undefined ? ref * args.batch : counted > 0 ? counted : undefined;
  return {
    id: b.id,
    name: b.name,
    msMean,
    msMin: Math.min(...times),
    runs: args.runs,
    gmac,
    gmacSource: ref !== undefined ? 'reference' : gmac !== undefined ? 'counted' : undefined,
    gmacPerS: gmac !== undefined ? gmac / (msMean / 1000) : undefined,
    gmacCounted: counted,
    tfPeakBytes: profile.peakBytes,
    rssPeakBytes: process.resourceUsage().maxRSS * 1024,
    layers,
  };
}

/** Kernel time by kernel type. tfjs reports a fused op both as its op wrapper (`*__op`) and its kernel: the wrappers are left out. */
function kernelTimes(kernels: { name: string; kernelTimeMs: number }[]): { kernel: string; ms: number; calls: number }[] {
  const agg = new Map<string, { ms: number; calls: number }>();
  for (const k of kernels) {
    if (k.name.endsWith('__op')) continue;
    const a = agg.get(k.name) ?? { ms: 0, calls: 0 };
    a.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    a.calls++;
    agg.set(k.name, a);
  }
  return [...agg].map(([kernel, a]) => ({ kernel, ...a })).sort((x, y) => y.ms - x.ms);
}

interface MemoryPoint {
  frame: number;
  rssBytes: number;
  /** Main thread: live tensors and their bytes. */
  tensors: number;
  tensorBytes: number;
  /** Main thread's wasm heap (grows to its peak, never shrinks). */
  heapBytes?: number;
}

interface PipelineResult {
  frames: number;
  workers: number;
  split: boolean;
  workerStartS: number;
  /** From the call that starts the workers to the first frame out (what a user waits for). */
  firstFrameS: number;
  /** Frames after the first, over the time after the first (start-up left out). */
  fps: number;
  secondsPerFrame: number;
  seconds: number;
  rssPeakBytes: number;
  /** RSS and the main thread's tensors after frame 1, 10 and the last. */
  memory: MemoryPoint[];
  /** Per worker: role, tensor bytes and wasm heap after start-up and after its last frame. */
  workerMemory: WorkerStats[];
}

/** The whole per-frame pipeline over `frames` synthetic driving frames, through LivePortrait.animate. */
async function pipeline(args: Args): Promise<PipelineResult> {
  const { LivePortrait } = await import('../src/pipeline/live_portrait.js');
  const t0 = performance.now();
  const lp = LivePortrait.synthetic(args.seed);
  const workers = await startFrameWorkers(lp, args.workers);
  const workerStartS = (performance.now() - t0) / 1000;
  const pool = [...WarpDecodePool.open].at(-1);
  const rgb = (seed: number) => {
    // Deterministic noise, made on the host (no tensors to leak into the counts).
    const data = new Uint8Array(256 * 256 * 3);
    let x = seed * 2654435761;
    for (let i = 0; i < data.length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    return { width: 256, height: 256, data };
  };
  const source = await lp.prepareSource(rgb(100));
  const driving = (async function* () {
    for (let i = 0; i < args.pipeline; i++) yield rgb(200 + i);
  })();
  let n = 0;
  let tFirst = 0;
  const memory: MemoryPoint[] = [];
  for await (const frame of lp.animate(source, Driving.frames(driving), { relativeMotion: true, stitching: true })) {
    n++;
    const now = performance.now();
    if (n === 1) tFirst = now;
    if (n === 1 || n === 10 || n === args.pipeline) {
      const m = backendMemory();
      memory.push({ frame: n, rssBytes: process.memoryUsage().rss, tensors: tf.memory().numTensors, tensorBytes: m.tensorBytes, heapBytes: m.heapBytes });
    }
    if (!args.json) console.error(`  frame ${frame.index + 1}/${args.pipeline}: ${((now - t0) / 1000).toFixed(1)} s, RSS ${mib(process.memoryUsage().rss)}`);
  }
  const tEnd = performance.now();
  const workerMemory = pool ? [...pool.stats] : [];
  lp.disposeSource(source);
  await lp.dispose();
  const fps = n > 1 ? (n - 1) / ((tEnd - tFirst) / 1000) : 0;
  return {
    frames: n,
    workers,
    split: pool?.split ?? false,
    workerStartS,
    firstFrameS: (tFirst - t0) / 1000,
    fps,
    secondsPerFrame: fps > 0 ? 1 / fps : (tEnd - t0) / 1000,
    seconds: (tEnd - t0) / 1000,
    rssPeakBytes: process.resourceUsage().maxRSS * 1024,
    memory,
    workerMemory,
  };
}

/** 3 significant digits below 100, whole numbers above. */
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

const ALL_BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

async function runOne(args: Args, backend: string | undefined) {
  const info = await initBackend({ backend, log: !args.json });
  // The GPU adapter (webgpu): vendor, architecture, description, isFallbackAdapter (software drivers such as lavapipe).
  const adapter = info.name === 'webgpu' ? gpuAdapterInfo() : undefined;
  if (adapter && !args.json)
    console.log(`adapter: ${adapter.description || adapter.device} (vendor ${adapter.vendor || '?'}, architecture ${adapter.architecture || '?'}, isFallbackAdapter ${adapter.isFallbackAdapter})`);
  if (args.profile) return { backend: info.name, provider: info.provider, adapter, profile: await profileRun(args, info) };
  const results: Result[] = [];
  const skipped: { id: NetId; reason: string }[] = [];
  for (const id of args.only) {
    let b: Bench | undefined;
    try {
      b = await build(id, args.seed, args.batch);
    } catch (e) {
      skipped.push({ id, reason: e instanceof Error ? e.message : String(e) });
      if (!args.json) console.error(`${id}: skipped (${skipped[skipped.length - 1].reason})`);
      continue;
    }
    try {
      const r = await measure(b, args);
      results.push(r);
      if (!args.json) {
        const g = r.gmac !== undefined ? `${fmt(r.gmac)} GMAC (${r.gmacSource === 'reference' ? `reference; counted ${fmt(r.gmacCounted)}` : 'counted'}), ${fmt(r.gmacPerS!)} GMAC/s` : 'GMAC n/a';
        console.log(
          `${id} ${r.name.padEnd(32)} ${r.msMean.toFixed(1).padStart(9)} ms/call (min ${r.msMin.toFixed(1)}, ${r.runs} runs)  ${g}  ` +
            `tf peak ${mib(r.tfPeakBytes)}, RSS peak ${mib(r.rssPeakBytes)}`,
        );
        for (const l of r.layers?.slice(0, 10) ?? []) console.log(`    ${l.kernel.padEnd(28)} ${l.ms.toFixed(1).padStart(9)} ms  ${String(l.calls).padStart(4)} calls`);
      }
    } finally {
      b.dispose();
    }
  }
  let pipe: PipelineResult | undefined;
  if (args.pipeline > 0) {
    pipe = await pipeline(args);
    if (!args.json) {
      console.log(
        `pipeline: ${pipe.frames} frames in ${pipe.seconds.toFixed(1)} s; after the first, ${pipe.fps.toFixed(4)} frames/s (${pipe.secondsPerFrame.toFixed(2)} s/frame); ` +
          `${pipe.workers} worker(s)${pipe.split ? ' in split pairs' : ''} (start-up ${pipe.workerStartS.toFixed(1)} s), first frame at ${pipe.firstFrameS.toFixed(1)} s, RSS peak ${mib(pipe.rssPeakBytes)}`,
      );
      for (const m of pipe.memory)
        console.log(`  after frame ${m.frame}: RSS ${mib(m.rssBytes)}; main thread ${m.tensors} tensors, ${mib(m.tensorBytes)}${m.heapBytes ? `, wasm heap ${mib(m.heapBytes)}` : ''}`);
      pipe.workerMemory.forEach((w, i) =>
        console.log(`  worker ${i + 1} (${w.role}): weights ${w.weights ? mib(w.weights.tensorBytes) : '?'}, wasm heap ${w.weights?.heapBytes ? mib(w.weights.heapBytes) : '?'} after start-up, ${w.latest?.heapBytes ? mib(w.latest.heapBytes) : '?'} after its last frame`),
      );
    }
  }
  return { backend: info.name, provider: info.provider, adapter, batch: args.batch, runs: args.runs, warmup: args.warmup, results, skipped, pipeline: pipe, tfNumTensorsAtEnd: tf.memory().numTensors };
}

/** --profile: the cost report per network (one call after a warm-up) and per frame. */
async function profileRun(args: Args, info: { name: string }): Promise<CostReport[]> {
  const reports: CostReport[] = [];
  const show = (r: CostReport) => {
    reports.push(r);
    if (!args.json) for (const l of formatCost(r)) console.log(l);
  };
  if (args.dryRun && info.name !== 'webgpu') throw new Error('--dry-run counts webgpu dispatches: use it with --backend webgpu');
  if (!args.json)
    console.log(
      `kernel path: Winograd ${process.env.LIVEPORTRAIT_WINOGRAD === '0' ? 'off' : 'by the cost model'} (LIVEPORTRAIT_WINOGRAD=0: a hardware GPU's choice), ` +
        `fused webgpu kernels ${process.env.LIVEPORTRAIT_GPU_KERNELS === '0' ? 'off' : 'on'}${args.dryRun ? '; dry run: counted, not dispatched' : ''}`,
    );
  for (const id of args.only) {
    const b = await build(id, args.seed, args.batch);
    try {
      await costOf('warm-up', () => sync(b.call()), 0, { dryRun: args.dryRun });
      show(await costOf(id, () => tf.dispose(b.call()), 8, { dryRun: args.dryRun }));
    } finally {
      b.dispose();
    }
  }
  if (args.pipeline > 0) show(await frameCost(args.seed, 8, { dryRun: args.dryRun }));
  return reports;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const reports = [];
  if (args.backend === 'all') {
    for (const b of ALL_BACKENDS) {
      try {
        await initBackend({ backend: b, log: false });
      } catch {
        if (!args.json) console.error(`backend ${b}: not available here, skipped`);
        continue;
      }
      reports.push(await runOne(args, b));
    }
  } else reports.push(await runOne(args, args.backend));
  if (args.json) console.log(JSON.stringify(args.backend === 'all' ? reports : reports[0], null, 2));
}

main().catch((e: unknown) => {
  console.error(process.env.LP_DEBUG && e instanceof Error ? e.stack : e instanceof Error ? e.message : e);
  process.exit(1);
});
