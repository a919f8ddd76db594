// The GPU cost report of `liveportrait bench --profile` (scripts/bench/profile.ts)
// on webgpu: dispatches per frame with the fused kernels at most half of
// those without, for the kernels a hardware GPU takes (no Winograd), counted
// in a dry run (programs counted and not dispatched: a software adapter
// would take minutes a frame). The dry count is checked against a real
// run's on M.
import { expect, it } from 'vitest';
import { type CostReport, costOf, frameCost } from '../scripts/bench/profile.js';
import { MotionExtractor } from '../src/models/motion_extractor.js';
import { ParamReader } from '../src/layers/params.js';
import { syntheticModuleWeights } from '../src/models/registry.js';
import * as tf from '@tensorflow/tfjs';
import { describeBackend } from './helpers/parity.js';

function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

describeBackend('GPU cost report (webgpu)', () => {
  it('a frame costs at most half the dispatches with the fused kernels, on a hardware GPU\'s kernel choice', async () => {
    const frame = (kernels: '0' | '1') => withEnv({ LIVEPORTRAIT_WINOGRAD: '0', LIVEPORTRAIT_GPU_KERNELS: kernels }, () => frameCost(1, 100, { dryRun: true }));
    const before: CostReport = await frame('0');
    const after: CostReport = await frame('1');
    console.log(`frame: ${before.dispatches} dispatches, ${(before.bytes / 2 ** 20).toFixed(0)} MiB created without the fused kernels; ${after.dispatches}, ${(after.bytes / 2 ** 20).toFixed(0)} MiB with them`);
    expect(before.dispatches).toBeGreaterThan(0);
    expect(after.dispatches! * 2).toBeLessThanOrEqual(before.dispatches!);
    expect(after.bytes).toBeLessThan(before.bytes);
    expect(after.programs!.map((p) => p.kernel)).toContain('LivePortraitConv3dTapSum');
  });

  it('a dry run counts what a real run dispatches (M)', async () => {
    const net = new MotionExtractor(new ParamReader(syntheticModuleWeights('motion_extractor', 1), 'motion_extractor', 'synthetic'));
    const x = tf.randomUniform([1, 256, 256, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const call = () => tf.dispose(Object.values(net.apply(x)));
    await costOf('warm-up', call, 0);
    const real = await costOf('M', call);
    const dry = await costOf('M', call, 8, { dryRun: true });
    console.log(`M: ${real.dispatches} dispatches run, ${dry.dispatches} counted dry`);
    expect(real.dispatches).toBeGreaterThan(100);
    expect(dry.dispatches).toBe(real.dispatches);
    expect(dry.kernels).toBe(real.kernels);
    x.dispose();
    net.dispose();
  });
});
