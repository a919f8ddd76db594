import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type WarpingModule, type WarpingTaps, warpingModuleSpecs } from '../src/models/warping_module.js';
import type { ParamReader } from '../src/layers/params.js';
import { checkFixture, describeParity, fixtureNetwork, fixtureTensor, manifestSpecs, TO_NCDHW, TO_NCHW, TO_NDHWC } from './helpers/parity.js';

describeParity('warping module W vs PyTorch (seed fixtures)', () => {
  let reader: ParamReader;
  let net: WarpingModule | undefined;
  let taps: WarpingTaps;
  let tensorsBefore: number;
  let tensorsAfter: number;
  const errors: Record<string, number> = {};

  beforeAll(async () => {
    const built = fixtureNetwork('warping_module');
    reader = built.reader;
    net = built.net as WarpingModule;
    const feature = fixtureTensor('appearance_feature_extractor', 'output', TO_NDHWC) as tf.Tensor5D;
    const kpSource = fixtureTensor('warping_module', 'kp_source') as tf.Tensor3D;
    const kpDriving = fixtureTensor('warping_module', 'kp_driving') as tf.Tensor3D;
    // Leak check around one forward pass: taps disposed afterwards count nothing.
    tensorsBefore = tf.memory().numTensors;
    const t0 = performance.now();
    taps = net.applyWithTaps(feature, kpSource, kpDriving);
    await taps.out.data();
    console.log(`W forward (${tf.getBackend()}): ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    tensorsAfter = tf.memory().numTensors - Object.keys(taps).length;
    tf.dispose([feature, kpSource, kpDriving]);
  });

  afterAll(() => {
    console.log('W max abs errors', errors);
    if (taps) tf.dispose(Object.values(taps));
    net?.dispose();
  });

  const check = async (checks: Parameters<typeof checkFixture>[1]) => {
    const r = await checkFixture('warping_module', checks);
    Object.assign(errors, r.errors);
    expect(r.failed).toEqual([]);
  };

  it('has the official parameter specs and reads every weight', () => {
    expect(warpingModuleSpecs()).toEqual(manifestSpecs('warping_module'));
    expect(reader.unused()).toEqual([]);
  });

  it('leaks no tensors', () => {
    expect(tensorsAfter).toBe(tensorsBefore);
  });

  it('compress_out (the compress conv, before norm) and the hourglass output match', async () => {
    // hourglass output [:, :, ::4, ::4, ::4] in NCDHW (the strides: src/parity/cases.ts)
    await check({
      compress_out: { actual: taps.compressOut, perm: TO_NCDHW },
      hourglass_out_sub: { actual: taps.hourglassOut, perm: TO_NCDHW },
    });
  });

  it('deformation matches', async () => {
    await check({ deformation: taps.deformation });
  });

  it('occlusion_map matches', async () => {
    await check({ occlusion_map: { actual: taps.occlusionMap, perm: TO_NCHW } });
  });

  it('out matches', async () => {
    await check({ out: { actual: taps.out, perm: TO_NCHW } });
  });
});
