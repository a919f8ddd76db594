import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { gridSample3d } from '../src/layers/grid_sample3d.js';
import { checkFixture, describeParity, fixtureTensor, TO_NCDHW, TO_NDHWC } from './helpers/parity.js';
import { maxAbs, maxAbsDiff } from './helpers/tensors.js';

describeParity('gridSample3d vs PyTorch F.grid_sample (ops fixture)', () => {
  let input: tf.Tensor5D;
  let grid: tf.Tensor5D;
  beforeAll(() => {
    input = fixtureTensor('ops', 'grid_sample_input', TO_NDHWC) as tf.Tensor5D;
    grid = fixtureTensor('ops', 'grid_sample_grid') as tf.Tensor5D;
  });

  it('matches trilinear / zeros / align_corners=False within the table\'s tolerance', async () => {
    const before = tf.memory().numTensors;
    const out = gridSample3d(input, grid);
    const r = await checkFixture('ops', { grid_sample_output: { actual: out, perm: TO_NCDHW } });
    console.log(`gridSample3d max abs error ${r.errors.grid_sample_output.toExponential(3)} (tolerance ${r.rows[0].tolerance})`);
    expect(out.shape).toEqual([...grid.shape.slice(0, 4), input.shape[4]]);
    expect(r.failed).toEqual([]);
    tf.dispose([out]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('gridSample3d basics', () => {
  it('reproduces the input on the identity grid and reads zeros far outside', async () => {
    const [d, h, w, c] = [3, 4, 5, 2];
    const vol = tf.randomUniform([1, d, h, w, c], -1, 1, 'float32', 7) as tf.Tensor5D;
    // Pixel centres with align_corners=False: (2i + 1) / size - 1.
    const centres = (s: number) => Array.from({ length: s }, (_, i) => (2 * i + 1) / s - 1);
    const pts: number[] = [];
    for (const z of centres(d)) for (const y of centres(h)) for (const x of centres(w)) pts.push(x, y, z);
    const grid = tf.tensor5d(pts, [1, d, h, w, 3]);
    const out = gridSample3d(vol, grid);
    expect(await maxAbsDiff(out, vol)).toBeLessThan(1e-6);
    const far = gridSample3d(vol, tf.fill([1, 1, 1, 2, 3], 5) as tf.Tensor5D);
    expect(await maxAbs(far)).toBe(0);
    tf.dispose([vol, grid, out, far]);
  });
});
