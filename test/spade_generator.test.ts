import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { G_STAGES, SpadeGenerator, spadeGeneratorSpecs, spadeGeneratorSyntheticExtras } from '../src/models/spade_generator.js';
import { ParamReader } from '../src/layers/params.js';
import { syntheticStateDict } from '../src/models/synthetic.js';
import { TO_NCHW, TO_NHWC, describeParity, fixtureStateDict, fixtureTensor, manifest, manifestSpecs, maxAbs, maxAbsDiff, paritySeed, readScalar } from './helpers/parity.js';

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

describeParity('SPADE generator G vs PyTorch', () => {
  let g: SpadeGenerator;
  let reader: ParamReader;
  const err: Record<string, number> = {};
  let tensorsBefore = 0;
  let tensorsAfter = 0;
  let outShape: number[] = [];
  let outRange: [number, number] = [0, 0];
  let whole: tf.Tensor4D | undefined;

  beforeAll(async () => {
    reader = new ParamReader(fixtureStateDict('spade_generator'), 'spade_generator', 'parity fixture');
    g = new SpadeGenerator(reader);
    const feature = fixtureTensor('warping_module', 'out', TO_NHWC) as tf.Tensor4D;
    tensorsBefore = tf.memory().numTensors;
    const t0 = performance.now();
    const taps = g.applyWithTaps(feature);
    await taps.output.data();
    const ms = performance.now() - t0;
    tensorsAfter = tf.memory().numTensors - 3; // the three taps
    outShape = taps.output.shape;
    outRange = [await readScalar(() => tf.min(taps.output)), await readScalar(() => tf.max(taps.output))];
    // Fixture taps are [:, :, ::2, ::2] in NCHW.
    const sub = (t: tf.Tensor4D) => tf.tidy(() => tf.transpose(tf.stridedSlice(t, [0, 0, 0, 0], t.shape, [1, 2, 2, 1]), TO_NCHW));
    const expectOut = fixtureTensor('spade_generator', 'output');
    const expectFc = fixtureTensor('spade_generator', 'fc_out_sub');
    const expectMid = fixtureTensor('spade_generator', 'G_middle_0_out_sub');
    const out = tf.transpose(taps.output, TO_NCHW);
    const fcSub = sub(taps.fcOut);
    const midSub = sub(taps.gMiddle0Out);
    err.output = await maxAbsDiff(out, expectOut);
    err.fc_out_sub = await maxAbsDiff(fcSub, expectFc);
    err.G_middle_0_out_sub = await maxAbsDiff(midSub, expectMid);
    const [scaleFc, scaleMid] = [await maxAbs(expectFc), await maxAbs(expectMid)];
    console.log(
      `G (${tf.getBackend()}): forward ${(ms / 1000).toFixed(1)} s; max abs error output ${err.output.toExponential(2)}, ` +
        `fc_out_sub ${err.fc_out_sub.toExponential(2)} (scale ${scaleFc.toFixed(3)}), ` +
        `G_middle_0_out_sub ${err.G_middle_0_out_sub.toExponential(2)} (scale ${scaleMid.toFixed(3)})`,
    );
    whole = taps.output;
    tf.dispose([feature, taps.fcOut, taps.gMiddle0Out, expectOut, expectFc, expectMid, out, fcSub, midSub]);
  });

  afterAll(() => {
    g?.dispose();
    whole?.dispose();
  });

  it('split in two runs of stages (as a pair of frame workers) gives the whole output to the bit', async () => {
    const feature = fixtureTensor('warping_module', 'out', TO_NHWC) as tf.Tensor4D;
    const mid = g.applyStages(feature, feature, 0, 4);
    expect(mid.shape).toEqual([1, 64, 64, 512]); // after fc and G_middle_0..2
    const split = g.applyStages(feature, mid, 4, G_STAGES.length);
    expect(await maxAbsDiff(split, whole!)).toBe(0);
    tf.dispose([feature, mid, split]);
    // A part holds its stages only, and says so.
    const head = new SpadeGenerator(reader, { stages: [0, 1] });
    const x = tf.zeros([1, 64, 64, 256]) as tf.Tensor4D;
    expect(() => head.applyStages(x, x, 0, 2)).toThrow(/stages \[0, 2\) asked, this part holds \[0, 1\)/);
    expect(() => new SpadeGenerator(reader, { stages: [3, 3] })).toThrow(/stages must be a run/);
    tf.dispose([x]);
    head.dispose();
  });

  it('output is [1, 512, 512, 3] in 0..1 within 1e-3 of the reference', () => {
    expect(outShape).toEqual([1, 512, 512, 3]);
    expect(outRange[0]).toBeGreaterThanOrEqual(0);
    expect(outRange[1]).toBeLessThanOrEqual(1);
    expect(err.output).toBeLessThanOrEqual(1e-3);
  });

  it('taps after fc and G_middle_0 match', () => {
    // fc is one conv (output scale ~1): float32 rounding only.
    expect(err.fc_out_sub).toBeLessThanOrEqual(1e-4);
    expect(err.G_middle_0_out_sub).toBeLessThanOrEqual(1e-3);
  });

  it('reads every parameter of the checkpoint', () => {
    expect(reader.unused()).toEqual([]);
  });

  it('leaks no tensor', () => {
    expect(tensorsAfter).toBe(tensorsBefore);
  });

  it('spadeGeneratorSpecs() lists the manifest keys and shapes', () => {
    const specs = spadeGeneratorSpecs();
    const m = manifestSpecs('spade_generator');
    expect([...specs].sort(byKey)).toEqual([...m].sort(byKey));
    // Same order for the rule-made parameters; the manifest appends the
    // explicit u/v buffers at the end, a checkpoint has them after each weight_orig.
    const explicit = manifest().modules.spade_generator;
    const plain = (s: { key: string }[]) => s.map((x) => x.key).filter((k) => !explicit[k]?.explicit);
    expect(plain(specs)).toEqual(plain(m));
  });

  it('synthetic extras give unit u/v vectors for every spectral conv', () => {
    const extras = spadeGeneratorSyntheticExtras(paritySeed());
    const specs = spadeGeneratorSpecs();
    const sd = syntheticStateDict('spade_generator', specs, paritySeed(), extras);
    expect([...sd.keys()].sort()).toEqual(specs.map((s) => s.key).sort());
    for (const [k, t] of extras) {
      const d = t.data as Float32Array;
      expect(k).toMatch(/\.weight_[uv]$/);
      expect(Math.abs(Math.hypot(...d) - 1)).toBeLessThan(1e-5);
    }
  });
});
