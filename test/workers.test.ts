import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { WarpDecodePool, defaultWorkerCount } from '../src/node/workers.js';
import { checkFixture, describeParity, fixture, fixtureStateDict, fixtureTensor, TO_NCHW, TO_NDHWC, TO_NHWC } from './helpers/parity.js';
import { maxAbsDiff } from './helpers/tensors.js';
import { toFloat32 } from '../src/formats/host_tensor.js';
import { mapOrdered } from '../src/pipeline/frame_pool.js';

it('mapOrdered keeps input order with work finishing out of order', async () => {
  const delays = [30, 5, 20, 1, 10];
  let inFlight = 0;
  let maxInFlight = 0;
  const out: number[] = [];
  for await (const v of mapOrdered(delays, async (d, i) => {
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    await new Promise((r) => setTimeout(r, d));
    inFlight--;
    return i;
  }, 2))
    out.push(v);
  expect(out).toEqual([0, 1, 2, 3, 4]);
  expect(maxInFlight).toBe(2);
});

it('mapOrdered passes errors through in order', async () => {
  const seen: number[] = [];
  await expect(async () => {
    for await (const v of mapOrdered([1, 2, 3], async (x) => {
      if (x === 2) throw new Error('bad frame 2');
      return x;
    }, 3))
      seen.push(v);
  }).rejects.toThrow('bad frame 2');
  expect(seen).toEqual([1]);
});

it('worker count follows the backend', () => {
  expect(defaultWorkerCount('tensorflow')).toBe(0);
  expect(defaultWorkerCount('webgpu')).toBe(0);
  expect(defaultWorkerCount('wasm')).toBeGreaterThanOrEqual(0);
});

it('worker count is bounded by memory: none where two would not fit', () => {
  const GiB = 2 ** 30;
  const cores = availableParallelism();
  expect(defaultWorkerCount('wasm', 4 * GiB)).toBe(0); // (0.8 · 4 - 1.5) / 1.75 GiB < 1
  expect(defaultWorkerCount('wasm', 8 * GiB)).toBe(cores > 1 ? 2 : 0); // an 8 GB laptop: one split pair
  expect(defaultWorkerCount('wasm', 16 * GiB)).toBe(cores > 1 ? Math.min(cores, 6) : 0); // (0.8 · 16 - 1.5) / 1.75 GiB
  expect(defaultWorkerCount('cpu', 1024 * GiB)).toBe(cores > 1 ? cores : 0);
});

// Two workers: a split pair (W and G's first stages, then the rest of G), and two whole-frame workers.
for (const split of [true, false])
  describeParity(`frame workers (W and G in worker_threads, ${split ? 'a split pair' : 'whole frames'})`, () => {
    let pool: WarpDecodePool;
    beforeAll(async () => {
      pool = await WarpDecodePool.create({
        workers: 2,
        split,
        weights: { stateDicts: { warping_module: fixtureStateDict('warping_module'), spade_generator: fixtureStateDict('spade_generator') } },
      });
    });
    afterAll(async () => pool?.close());

    it('renders the reference frame on two workers, in order', async () => {
      expect(pool.split).toBe(split);
      const f_s = fixtureTensor('appearance_feature_extractor', 'output', TO_NDHWC);
      pool.setSource((await f_s.data()) as Float32Array, f_s.shape);
      f_s.dispose();
      const w = fixture('warping_module');
      const kpS = toFloat32(w.get('kp_source')!);
      const kpD = toFloat32(w.get('kp_driving')!);
      // Frame 0: the fixture's keypoints; frame 1: source = driving (no motion).
      const jobs = [[kpS, kpD], [kpS, kpS]] as const;
      const frames = [];
      for await (const f of mapOrdered(jobs, ([a, b]) => pool.render(a, b), 2)) frames.push(f);
      const expected = fixtureTensor('spade_generator', 'output', TO_NHWC);
      const got0 = tf.tensor(frames[0].data, frames[0].shape);
      const got1 = tf.tensor(frames[1].data, frames[1].shape);
      const r = await checkFixture('spade_generator', { output: { actual: got0, perm: TO_NCHW } });
      console.log(`pool frame (${split ? 'split pair' : 'whole frames'}) vs reference G output: max abs err ${r.errors.output.toExponential(2)} (tolerance ${r.rows[0].tolerance})`);
      expect(r.failed).toEqual([]);
      // The second job really is another frame, returned second.
      expect(await maxAbsDiff(got1, expected)).toBeGreaterThan(1e-2);
      tf.dispose([got0, got1, expected]);
    });
  });
