import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StitchingRetargetingModule, stitchingRetargetingSpecs, STITCHING_CHECKPOINT_NAMES } from '../src/models/stitching_retargeting_module.js';
import { ParamReader } from '../src/layers/params.js';
import { syntheticStateDict } from '../src/models/synthetic.js';
import { checkFixture, describeParity, fixtureStateDict, fixtureTensor, manifestSpecs } from './helpers/parity.js';

const FIX = 'stitching_retargeting_module';
const parts = ['stitching', 'lip', 'eye'] as const;

describe('stitching/retargeting specs', () => {
  it('lists the official keys and shapes', () => {
    const specs = stitchingRetargetingSpecs();
    expect(specs.stitching.map((s) => s.shape)).toEqual([[128, 126], [128], [128, 128], [128], [64, 128], [64], [65, 64], [65]]);
    expect(specs.eye.at(-2)).toEqual({ key: 'mlp.10.weight', shape: [63, 64] });
    expect(specs.lip[0]).toEqual({ key: 'mlp.0.weight', shape: [128, 65] });
  });

  it('rejects inputs of the wrong shape with one clear line', () => {
    const readers = Object.fromEntries(parts.map((p) => [p, new ParamReader(syntheticStateDict(p, stitchingRetargetingSpecs()[p], 3), p, 'synthetic')])) as never;
    const s = new StitchingRetargetingModule(readers);
    const kp = tf.zeros([1, 21, 3]) as tf.Tensor3D;
    const bad = tf.zeros([1, 20, 3]) as tf.Tensor3D;
    expect(() => s.stitching(kp, bad)).toThrow(/same shape/);
    const r = tf.zeros([1, 2]) as tf.Tensor2D;
    expect(() => s.retargetEye(kp, r)).toThrow(/eye ratio must be \[1, 3\]/);
    tf.dispose([kp, bad, r]);
    s.dispose();
  });
});

describeParity('stitching/retargeting module parity', () => {
  let S: StitchingRetargetingModule;
  beforeAll(() => {
    const specs = stitchingRetargetingSpecs();
    const readers = {} as Record<(typeof parts)[number], ParamReader>;
    for (const p of parts) {
      const module = `stitching_retargeting_module/${STITCHING_CHECKPOINT_NAMES[p]}`;
      // Our specs agree with the manifest of the reference's checkpoint.
      expect(manifestSpecs(module)).toEqual(specs[p]);
      readers[p] = new ParamReader(fixtureStateDict(module), module, 'fixture');
    }
    S = new StitchingRetargetingModule(readers);
    for (const p of parts) expect(readers[p].unused()).toEqual([]);
  });
  afterAll(() => S.dispose());

  it('stitch delta, stitched keypoints, eye and lip deltas within the table\'s tolerance', async () => {
    const before = tf.memory().numTensors;
    const kpS = fixtureTensor(FIX, 'kp_source') as tf.Tensor3D;
    const kpD = fixtureTensor(FIX, 'kp_driving') as tf.Tensor3D;
    const eye = fixtureTensor(FIX, 'eye_ratio') as tf.Tensor2D;
    const lip = fixtureTensor(FIX, 'lip_ratio') as tf.Tensor2D;
    const outs = {
      stitch_delta: S.stitchDelta(kpS, kpD),
      stitched_kp_driving: S.stitching(kpS, kpD),
      eye_delta: S.retargetEye(kpS, eye),
      lip_delta: S.retargetLip(kpS, lip),
    };
    const r = await checkFixture(FIX, outs);
    for (const row of r.rows) console.log(`S parity ${row.tensor}: max abs err ${row.maxAbs?.toExponential(3)} (tolerance ${row.tolerance})`);
    expect(r.failed).toEqual([]);
    tf.dispose([kpS, kpD, eye, lip, ...Object.values(outs)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
