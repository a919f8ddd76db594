import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WarpingModule, type WarpingTaps, warpingModuleSpecs } from '../src/models/warping_module.js';
import { ParamReader } from '../src/weights/params.js';
import { describeParity, fixtureStateDict, fixtureTensor, manifestSpecs, maxAbsDiff, TO_NCDHW, TO_NCHW, TO_NDHWC } from './helpers/parity.js';

describeParity('warping module W vs PyTorch (seed fixtures)', () => {
  let reader: ParamReader;
  let net: WarpingModule;
  let taps: WarpingTaps;
  let tensorsBefore: number;
  let tensorsAfter: number;
  const errors: Record<string, number> = {};

  /** Max abs error of a channel-last output against the fixture tensor in PyTorch layout. */
  const err = async (key: string, actual: tf.Tensor, perm?: number[]) => {
    const expected = fixtureTensor('warping_module', key);
    const a = perm ? tf.transpose(actual, perm) : actual;
    const e = await maxAbsDiff(a, expected);
    if (a !== actual) a.dispose();
    expected.dispose();
    errors[key] = e;
    return e;
  };

  beforeAll(async () => {
    reader = new ParamReader(fixtureStateDict('warping_module'), 'warping_module', 'parity fixture');
    net = new WarpingModule(reader);
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

  it('has the official parameter specs and reads every weight', () => {
    expect(warpingModuleSpecs()).toEqual(manifestSpecs('warping_module'));
    expect(reader.unused()).toEqual([]);
  });

  it('leaks no tensors', () => {
    expect(tensorsAfter).toBe(tensorsBefore);
  });

  it('compress_out (the compress conv, before norm) and the hourglass output match', async () => {
    expect(await err('compress_out', taps.compressOut, TO_NCDHW)).toBeLessThanOrEqual(1e-4);
    // hourglass output [:, :, ::4, ::4, ::4] in NCDHW
    const [n, d, h, w, c] = taps.hourglassOut.shape;
    // Strided in rank 4 per batch item (webgpu's strided slice does not compile for rank 5), then to NCDHW.
    const sub = tf.tidy(() => {
      const items = tf.unstack(taps.hourglassOut).map((t) => tf.stridedSlice(t, [0, 0, 0, 0], [d, h, w, c], [4, 4, 4, 1]));
      return tf.transpose(tf.stack(items), TO_NCDHW);
    });
    expect(await err('hourglass_out_sub', sub, undefined)).toBeLessThanOrEqual(1e-3);
    sub.dispose();
  });

  it('deformation matches within 1e-4', async () => {
    expect(await err('deformation', taps.deformation)).toBeLessThanOrEqual(1e-4);
  });

  it('occlusion_map matches within 1e-4', async () => {
    expect(await err('occlusion_map', taps.occlusionMap, TO_NCHW)).toBeLessThanOrEqual(1e-4);
  });

  it('out matches within 1e-3', async () => {
    expect(await err('out', taps.out, TO_NCHW)).toBeLessThanOrEqual(1e-3);
  });
});
