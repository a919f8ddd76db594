// The generator G on the backend under test block by block, for backends too
// slow to run all of G in CI (webgpu on a software Vulkan driver runs G's
// 446 GMAC at about 1 GMAC/s): its first convolution and its first SPADE
// residual block (every layer type of G's body: spectral-norm convs,
// instance norm, SPADE modulation, leaky ReLU) against the reference's taps
// fc_out_sub and G_middle_0_out_sub, stopping there. The whole of G runs
// against the reference on wasm (spade_generator.test.ts).
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SpadeGenerator } from '../src/models/spade_generator.js';
import { checkFixture, describeParity, fixtureNetwork, fixtureTensor, TO_NCHW, TO_NHWC } from './helpers/parity.js';

class Stop extends Error {}

describeParity(`G block by block vs PyTorch (seed fixtures)`, () => {
  let net: SpadeGenerator;
  const got: Record<string, tf.Tensor> = {};
  let before = 0;
  let after = 0;

  beforeAll(async () => {
    net = fixtureNetwork('spade_generator').net as SpadeGenerator;
    const feature = fixtureTensor('warping_module', 'out', TO_NHWC) as tf.Tensor4D;
    before = tf.memory().numTensors;
    const t0 = performance.now();
    const keep = (name: string, v: tf.Tensor | (() => tf.Tensor)) => (got[name] = tf.keep((typeof v === 'function' ? v() : v).clone()));
    try {
      net.applyWithTaps(feature, (path, value) => {
        if (path === 'fc') keep('fc_out_sub', value);
        if (path === 'G_middle_0') {
          keep('G_middle_0_out_sub', value);
          throw new Stop('enough');
        }
      });
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
    }
    await got.G_middle_0_out_sub?.data();
    console.log(`G fc + G_middle_0 (${tf.getBackend()}): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    after = tf.memory().numTensors - Object.keys(got).length;
    feature.dispose();
  });

  afterAll(() => {
    tf.dispose(Object.values(got));
    net?.dispose();
  });

  it('stops after the first block without leaking', () => {
    expect(Object.keys(got).sort()).toEqual(['G_middle_0_out_sub', 'fc_out_sub']);
    expect(after).toBe(before);
  });

  it('fc and G_middle_0 match the reference taps ([:, :, ::2, ::2])', async () => {
    const r = await checkFixture('spade_generator', {
      fc_out_sub: { actual: got.fc_out_sub, perm: TO_NCHW },
      G_middle_0_out_sub: { actual: got.G_middle_0_out_sub, perm: TO_NCHW },
    });
    console.log(`G blocks max abs errors (${tf.getBackend()})`, r.errors);
    expect(r.failed).toEqual([]);
  });
});
