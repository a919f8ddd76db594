// The fused webgpu kernels (src/layers/webgpu_kernels.ts) against the tfjs-op
// paths they replace, on the backend under test (webgpu project only: on any
// other backend the kernels are not used and this file is not run). The
// networks that use them are checked against PyTorch in the parity tests
// (W whole, G whole); here each kernel alone, on shapes with edges: points
// outside the volume, depth padding larger than a tap, a negative bias,
// inputs negative after the modulation.
import * as tf from '@tensorflow/tfjs';
import { afterEach, expect, it } from 'vitest';
import { Conv3d } from '../src/layers/core.js';
import { gridSample3d } from '../src/layers/grid_sample3d.js';
import { ParamReader } from '../src/layers/params.js';
import { SPADE } from '../src/layers/spade.js';
import { ConvNeXtV2Block, LayerNorm, convNeXtV2BlockSpecs } from '../src/layers/convnext.js';
import { syntheticTensor } from '../src/models/synthetic.js';
import { gpuKernels } from '../src/layers/webgpu_kernels.js';
import { TapRecorder } from '../src/layers/taps.js';
import { describeBackend } from './helpers/parity.js';

const ENV = 'LIVEPORTRAIT_GPU_KERNELS';

/** Runs `fn` with the fused kernels on (1) or off (0). */
function withKernels<T>(on: boolean, fn: () => T): T {
  const before = process.env[ENV];
  process.env[ENV] = on ? '1' : '0';
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env[ENV];
    else process.env[ENV] = before;
  }
}

async function maxAbs(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  expect(a.shape).toEqual(b.shape);
  const d = tf.max(tf.abs(tf.sub(a, b)));
  const v = (await d.data())[0];
  d.dispose();
  return v;
}

/** The names of the kernels `fn` runs. */
async function kernelsOf(fn: () => tf.Tensor): Promise<string[]> {
  const p = await tf.profile(() => tf.dispose(fn()));
  return p.kernels.map((k) => k.name);
}

/** Kernel path and op path of `fn`, their largest difference (both freed), and the kernels of the first. */
async function bothPaths(fn: () => tf.Tensor): Promise<{ diff: number; scale: number; kernels: string[] }> {
  const fused = withKernels(true, () => tf.tidy(fn));
  const ops = withKernels(false, () => tf.tidy(fn));
  const diff = await maxAbs(fused, ops);
  const scale = (await tf.max(tf.abs(ops)).data())[0];
  tf.dispose([fused, ops]);
  const kernels = await withKernels(true, () => kernelsOf(fn));
  return { diff, scale, kernels };
}

const rand = (shape: number[], seed: number, lo = -1, hi = 1) => tf.randomUniform(shape, lo, hi, 'float32', seed);
/** Weights for a ParamReader: [key, shape, lo, hi] each. */
const reader = (prefix: string, specs: [string, number[], number, number][]) =>
  new ParamReader(new Map(specs.map(([k, shape, lo, hi], i) => [`${prefix}.${k}`, syntheticTensor(k, shape, lo, hi, i + 1)])), prefix, 'test');

describeBackend('fused webgpu kernels against the tfjs-op paths', () => {
  afterEach(() => expect(tf.getBackend()).toBe('webgpu'));

  it('are used on webgpu and can be turned off', () => {
    expect(withKernels(true, gpuKernels)).toBe(true);
    expect(withKernels(false, gpuKernels)).toBe(false);
  });

  it('grid sampling: every point, inside and outside the volume, as the gather path', async () => {
    const input = rand([1, 5, 6, 7, 3], 1) as tf.Tensor5D;
    // Coordinates over [-1.4, 1.4]: a band of points reads the zero padding or nothing.
    const grid = rand([1, 4, 5, 9, 3], 2, -1.4, 1.4) as tf.Tensor5D;
    const { diff, scale, kernels } = await bothPaths(() => gridSample3d(input, grid));
    expect(kernels).toEqual(['LivePortraitGridSample3d']);
    expect(scale).toBeGreaterThan(0.1);
    console.log(`gridSample3d: fused vs gather max abs ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-6);
    tf.dispose([input, grid]);
  });

  it('Conv3d (3x3x3 and 7x7x7, stacked taps summed by one kernel) as the per-tap path, bias and ReLU included', async () => {
    for (const [kd, pad, relu] of [
      [3, 1, true],
      [7, 3, false],
    ] as const) {
      const specs: [string, number[], number, number][] = [
        ['weight', [5, 4, kd, 3, 3], -0.3, 0.3],
        ['bias', [5], -0.5, 0.1],
      ];
      const x = rand([1, 6, 8, 8, 4], 30 + kd) as tf.Tensor5D;
      const make = (on: boolean) => withKernels(on, () => new Conv3d(reader('c', specs), 'c', { padding: [pad, 1, 1] }));
      const fused = make(true);
      const ops = make(false);
      expect(await withKernels(true, () => kernelsOf(() => fused.apply(x, relu ? 'relu' : 'linear')))).toContain('LivePortraitConv3dTapSum');
      const a = withKernels(true, () => fused.apply(x, relu ? 'relu' : 'linear'));
      const b = withKernels(false, () => ops.apply(x, relu ? 'relu' : 'linear'));
      const diff = await maxAbs(a, b);
      console.log(`Conv3d ${kd}x3x3 (padding ${pad}): fused vs per-tap max abs ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-5);
      tf.dispose([a, b, x]);
      fused.dispose();
      ops.dispose();
    }
  });

  it("SPADE's instance norm and modulation, with and without the LeakyReLU, as the op chain", async () => {
    const h = 128; // SPADE's hidden width
    const spade = new SPADE(
      reader('s', [
        ['mlp_shared.0.weight', [h, 3, 3, 3], -0.2, 0.2],
        ['mlp_shared.0.bias', [h], -0.1, 0.1],
        ['mlp_gamma.weight', [6, h, 3, 3], -0.05, 0.05],
        ['mlp_gamma.bias', [6], -0.1, 0.1],
        ['mlp_beta.weight', [6, h, 3, 3], -0.05, 0.05],
        ['mlp_beta.bias', [6], -0.1, 0.1],
      ]),
      's',
    );
    // Two images, 192 pixels each: the statistics kernel's threads take three pixels each.
    const x = tf.add(rand([2, 16, 12, 6], 46, -2, 2), 3) as tf.Tensor4D;
    const seg = rand([2, 4, 4, 3], 47) as tf.Tensor4D;
    for (const slope of [undefined, 0.2]) {
      const { diff, scale, kernels } = await bothPaths(() => spade.apply(x, seg, undefined, slope));
      expect(kernels.filter((k) => k.startsWith('LivePortrait'))).toEqual(['LivePortraitInstanceNormStats', 'LivePortraitInstanceNormModulate']);
      expect(scale).toBeGreaterThan(0.5);
      console.log(`SPADE (LeakyReLU ${slope ?? 'none'}): fused vs op chain max abs ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(2e-6);
    }
    // With a tap, the fused path still offers the reference's intermediate tensors (made only when asked for).
    const tapped = (on: boolean) =>
      withKernels(on, () => {
        const rec = new TapRecorder(['param_free_norm', '']);
        tf.dispose(spade.apply(x, seg, rec.tap, 0.2));
        return rec;
      });
    const [fusedTaps, opTaps] = [tapped(true), tapped(false)];
    for (const path of ['param_free_norm', '']) expect(await maxAbs(fusedTaps.calls(path)[0], opTaps.calls(path)[0])).toBeLessThan(2e-6);
    fusedTaps.dispose();
    opTaps.dispose();
    tf.dispose([x, seg]);
    spade.dispose();
  });

  it('ConvNeXt-V2 block (norm, erf-GELU, GRN) and LayerNorm as the op chains', async () => {
    const dim = 24; // GRN runs over 4 · dim = 96 channels
    const specs = convNeXtV2BlockSpecs('b', dim).map(({ key, shape }): [string, number[], number, number] => [key.slice(2), shape, key.endsWith('weight') ? -0.3 : -0.2, 0.3]);
    const block = new ConvNeXtV2Block(reader('b', specs), 'b', dim);
    const norm = new LayerNorm(reader('n', [['weight', [dim], 0.5, 1.5], ['bias', [dim], -0.2, 0.2]]), 'n');
    const x = rand([2, 12, 10, dim], 50, -2, 2) as tf.Tensor4D;
    const b = await bothPaths(() => block.apply(x));
    console.log(`ConvNeXt-V2 block: fused vs op chain max abs ${b.diff.toExponential(2)} (output scale ${b.scale.toFixed(2)})`);
    expect(b.kernels.filter((k) => k.startsWith('LivePortrait'))).toEqual(['LivePortraitNormalizeLastAxis', 'LivePortraitGeluErf', 'LivePortraitSpatialSumOfSquares', 'LivePortraitGrnScale']);
    expect(b.scale).toBeGreaterThan(1);
    expect(b.diff).toBeLessThan(1e-5 * b.scale);
    const n = await bothPaths(() => norm.apply(x));
    console.log(`LayerNorm: fused vs op chain max abs ${n.diff.toExponential(2)}`);
    expect(n.kernels).toContain('LivePortraitNormalizeLastAxis');
    expect(n.diff).toBeLessThan(2e-6);
    tf.dispose(x);
    block.dispose();
    norm.dispose();
  });
});
