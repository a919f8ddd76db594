import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Conv2d, Linear } from '../src/layers/core.js';
import { ConvNeXtV2Block, GRN, LayerNorm, convNeXtV2BlockSpecs, gelu } from '../src/layers/convnext.js';
import { type MotionExtractor, motionExtractorSpecs } from '../src/models/motion_extractor.js';
import type { MotionOutput } from '../src/models/types.js';
import { ParamReader } from '../src/layers/params.js';
import { syntheticStateDict } from '../src/models/synthetic.js';
import { TO_NHWC, checkFixture, describeParity, fixtureNetwork, fixtureTensor, manifestSpecs } from './helpers/parity.js';
import { readScalar } from './helpers/tensors.js';

const MODULE = 'motion_extractor';
const OUTPUTS: (keyof MotionOutput)[] = ['pitch', 'yaw', 'roll', 't', 'exp', 'scale', 'kp'];

it('gelu is the exact (erf) GELU to float32 precision', async () => {
  // float64 reference: erf from its Maclaurin series (converges for the |z| <= 2.9 used here).
  const erf = (z: number): number => {
    let sum = 0;
    let term = z;
    for (let n = 0; n < 200; n++) {
      sum += term / (2 * n + 1);
      term *= (-z * z) / (n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  const xs = Array.from({ length: 161 }, (_, i) => -4 + i * 0.05);
  const g = tf.tidy(() => gelu(tf.tensor1d(xs)));
  const y = await g.data();
  g.dispose();
  const err = Math.max(...xs.map((x, i) => Math.abs(y[i] - 0.5 * x * (1 + erf(x / Math.SQRT2)))));
  expect(err).toBeLessThan(2e-6);
});

it('the folded ConvNeXt-V2 block equals the plain composition dwconv, LN, pwconv1, GELU, GRN, pwconv2', async () => {
  const dim = 8;
  const sd = syntheticStateDict('block', convNeXtV2BlockSpecs('b', dim), 3);
  const block = new ConvNeXtV2Block(new ParamReader(sd, 'block', 'synthetic'), 'b', dim);
  const p = new ParamReader(sd, 'block', 'synthetic');
  const parts = {
    dw: new Conv2d(p, 'b.dwconv', { padding: 3, groups: dim }),
    ln: new LayerNorm(p, 'b.norm', 1e-6),
    pw1: new Linear(p, 'b.pwconv1'),
    grn: new GRN(p, 'b.grn'),
    pw2: new Linear(p, 'b.pwconv2'),
  };
  const before = tf.memory().numTensors;
  const err = await readScalar(() => {
    const x = tf.randomNormal([2, 9, 11, dim], 0, 1, 'float32', 5) as tf.Tensor4D;
    const h = gelu(parts.pw1.apply(parts.ln.apply(parts.dw.apply(x))) as tf.Tensor4D);
    const ref = tf.add(x, parts.pw2.apply(parts.grn.apply(h)));
    return tf.max(tf.abs(tf.sub(block.apply(x), ref)));
  });
  expect(tf.memory().numTensors).toBe(before);
  block.dispose();
  for (const m of Object.values(parts)) m.dispose();
  expect(err).toBeLessThan(1e-5);
});

describeParity('motion extractor M (parity)', () => {
  let net: MotionExtractor;
  let reader: ParamReader;

  beforeAll(() => {
    const built = fixtureNetwork(MODULE);
    net = built.net as MotionExtractor;
    reader = built.reader;
  });
  afterAll(() => net?.dispose());

  it('lists the checkpoint keys and shapes in order', () => {
    expect(motionExtractorSpecs()).toEqual(manifestSpecs(MODULE));
  });

  it('reads every parameter', () => {
    expect(reader.unused()).toEqual([]);
  });

  it('matches the reference raw outputs, without leaking', async () => {
    const x = fixtureTensor(MODULE, 'input', TO_NHWC) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const out = net.apply(x);
    await Promise.all(OUTPUTS.map((k) => out[k].data()));
    const ms = performance.now() - t0;
    const r = await checkFixture(MODULE, Object.fromEntries(OUTPUTS.map((k) => [k, out[k]])));
    for (const k of OUTPUTS) out[k].dispose();
    const after = tf.memory().numTensors;
    x.dispose();
    const report = OUTPUTS.map((k) => `${k} ${r.errors[k].toExponential(2)}`).join(', ');
    console.log(`M [${tf.getBackend()}]: max abs err ${report} (tolerance ${r.rows[0].tolerance}); forward ${ms.toFixed(0)} ms (batch 2)`);
    expect(r.rows.map((x) => x.tensor)).toEqual(OUTPUTS);
    expect(r.failed).toEqual([]);
    expect(after).toBe(before);
  });
});
