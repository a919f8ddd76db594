/**
 * The networks of the benchmark (scripts/bench.ts, and the GPU kit's
 * scripts/gpu-kit/kit.ts): each of F, M, W, G, S built with synthetic weights
 * on deterministic inputs, and timed. See scripts/bench.ts for what is
 * measured.
 */
import * as tf from '@tensorflow/tfjs';
import { ParamReader } from '../../src/layers/params.js';
import { type NetworkName as SyntheticModule, syntheticModuleWeights } from '../../src/models/registry.js';
import { syntheticStateDict } from '../../src/models/synthetic.js';

export type NetId = 'F' | 'M' | 'W' | 'G' | 'S';
export const ORDER: NetId[] = ['S', 'M', 'F', 'W', 'G'];

/** GMAC per call measured on the reference (batch 1). */
export const REFERENCE_GMAC: Partial<Record<NetId, number>> = { W: 171, G: 446 };

export interface Bench {
  id: NetId;
  name: string;
  /** One call; returns every output tensor. */
  call(): tf.Tensor[];
  dispose(): void;
}

/** How `measure` times a network: warm-up calls (the first one profiled), timed calls, batch (for the GMAC counts), per-kernel times. */
export interface MeasureOptions {
  warmup: number;
  runs: number;
  batch: number;
  layers: boolean;
}

export interface Result {
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


function reader(module: SyntheticModule, seed: number): ParamReader {
  return new ParamReader(syntheticModuleWeights(module, seed), module, `synthetic seed ${seed}`);
}

/** Deterministic inputs. */
const image = (n: number) => tf.randomUniform([n, 256, 256, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
const keypoints = (n: number, seed: number) => tf.randomUniform([n, 21, 3], -0.5, 0.5, 'float32', seed) as tf.Tensor3D;

/** Builds network `id` with synthetic weights, or says why it cannot. */
export async function build(id: NetId, seed: number, n: number): Promise<Bench> {
  if (id === 'F') {
    const m = await import('../../src/models/appearance_feature_extractor.js');
    const net = new m.AppearanceFeatureExtractor(reader('appearance_feature_extractor', seed));
    const x = image(n);
    return { id, name: 'appearance feature extractor', call: () => [net.apply(x)], dispose: () => (net.dispose(), x.dispose()) };
  }
  if (id === 'M') {
    const m = await import('../../src/models/motion_extractor.js');
    const net = new m.MotionExtractor(reader('motion_extractor', seed));
    const x = image(n);
    return { id, name: 'motion extractor', call: () => Object.values(net.apply(x)), dispose: () => (net.dispose(), x.dispose()) };
  }
  if (id === 'W') {
    const m = await import('../../src/models/warping_module.js');
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
    const m = await import('../../src/models/spade_generator.js');
    const net = new m.SpadeGenerator(reader('spade_generator', seed));
    const x = tf.randomNormal([n, 64, 64, 256], 0, 1, 'float32', 5) as tf.Tensor4D;
    return { id, name: 'SPADE generator', call: () => [net.apply(x)], dispose: () => (net.dispose(), x.dispose()) };
  }
  // S: one frame's worth of the three MLPs (stitching, eye and lip retargeting).
  const m = await import('../../src/models/stitching_retargeting_module.js');
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

export async function sync(outputs: tf.Tensor[]): Promise<void> {
  await Promise.all(outputs.map((t) => t.data()));
  tf.dispose(outputs);
}

export async function measure(b: Bench, args: MeasureOptions): Promise<Result> {
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
export function kernelTimes(kernels: { name: string; kernelTimeMs: number }[]): { kernel: string; ms: number; calls: number }[] {
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
