import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AppearanceFeatureExtractor, appearanceFeatureExtractorSpecs } from '../src/models/appearance_feature_extractor.js';
import type { ParamReader } from '../src/layers/params.js';
import { TO_NCDHW, TO_NHWC, checkFixture, describeParity, fixtureNetwork, fixtureTensor, manifestSpecs } from './helpers/parity.js';

const MODULE = 'appearance_feature_extractor';

describeParity('appearance feature extractor F (parity)', () => {
  let net: AppearanceFeatureExtractor;
  let reader: ParamReader;

  beforeAll(() => {
    const built = fixtureNetwork(MODULE);
    net = built.net as AppearanceFeatureExtractor;
    reader = built.reader;
  });
  afterAll(() => net?.dispose());

  it('lists the checkpoint keys and shapes in order', () => {
    expect(appearanceFeatureExtractorSpecs()).toEqual(manifestSpecs(MODULE));
  });

  it('reads every parameter', () => {
    expect(reader.unused()).toEqual([]);
  });

  it('matches the reference output, without leaking', async () => {
    const x = fixtureTensor(MODULE, 'input', TO_NHWC) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const f_s = net.apply(x);
    await f_s.data();
    const ms = performance.now() - t0;
    const r = await checkFixture(MODULE, { output: { actual: f_s, perm: TO_NCDHW } });
    f_s.dispose();
    const after = tf.memory().numTensors;
    const [row] = r.rows;
    console.log(`F [${tf.getBackend()}]: max abs err ${row.maxAbs?.toExponential(3)} (relative to the output's scale ${row.maxRel?.toExponential(3)}, tolerance ${row.tolerance}), forward ${ms.toFixed(0)} ms (batch 1)`);
    x.dispose();
    expect(r.failed).toEqual([]);
    expect(after).toBe(before);
  });
});
