import { describe, expect, it } from 'vitest';
import { kalmanSmooth } from '../src/motion/kalman.js';

/**
 * Independent check: the RTS smoother's means are the posterior means of the
 * linear-Gaussian chain, i.e. the minimiser of
 *   (x_0 - y_0)^2 / p0 + sum_t (y_t - x_t)^2 / r + sum_t (x_t - x_{t-1})^2 / q,
 * found here by solving its tridiagonal normal equations (Thomas algorithm).
 */
function mapEstimate(y: number[], r: number, q: number, p0 = 1): number[] {
  const T = y.length;
  const a = new Array(T).fill(-1 / q); // sub-diagonal
  const c = new Array(T).fill(-1 / q); // super-diagonal
  const b = y.map((_, t) => 1 / r + (t > 0 ? 1 / q : 0) + (t < T - 1 ? 1 / q : 0) + (t === 0 ? 1 / p0 : 0));
  const d = y.map((v, t) => v / r + (t === 0 ? y[0] / p0 : 0));
  for (let t = 1; t < T; t++) {
    const w = a[t] / b[t - 1];
    b[t] -= w * c[t - 1];
    d[t] -= w * d[t - 1];
  }
  const x = new Array(T);
  x[T - 1] = d[T - 1] / b[T - 1];
  for (let t = T - 2; t >= 0; t--) x[t] = (d[t] - c[t] * x[t + 1]) / b[t];
  return x;
}

describe('Kalman smoothing', () => {
  const T = 40;
  // Two coordinates: a noisy sine and a step, of the size of expression values.
  const seq = Array.from({ length: T }, (_, t) => [0.02 * Math.sin(t / 4) + 0.003 * Math.cos(7.3 * t), t < 20 ? -0.01 : 0.015]);

  for (const [r, q] of [
    [3e-7, 1e-5],
    [1e-4, 1e-5],
    [1e-5, 1e-7],
  ]) {
    it(`matches the posterior means of the chain (observation ${r}, process ${q})`, () => {
      const out = kalmanSmooth(seq, { observationVariance: r, processVariance: q });
      for (let k = 0; k < 2; k++) {
        const want = mapEstimate(seq.map((v) => v[k]), r, q);
        const err = Math.max(...out.map((v, t) => Math.abs(v[k] - want[t])));
        expect(err).toBeLessThan(1e-7);
      }
    });
  }

  it('defaults to the reference variances (3e-7, 1e-5)', () => {
    const a = kalmanSmooth(seq);
    const b = kalmanSmooth(seq, { observationVariance: 3e-7, processVariance: 1e-5 });
    expect(a).toEqual(b);
  });

  it('the last frame is the forward filter (explicit scalar recurrence)', () => {
    const r = 1e-4;
    const q = 1e-5;
    const y = seq.map((v) => v[0]);
    let m = y[0];
    let p = 1;
    for (let t = 0; t < T; t++) {
      if (t > 0) p += q;
      const k = p / (p + r);
      m += k * (y[t] - m);
      p *= 1 - k;
    }
    const out = kalmanSmooth(seq, { observationVariance: r, processVariance: q });
    expect(out[T - 1][0]).toBeCloseTo(m, 7);
  });

  it('keeps constant sequences, single frames, and rejects ragged input', () => {
    const c = kalmanSmooth(Array.from({ length: 5 }, () => [0.5, -0.25]));
    for (const v of c) expect([...v]).toEqual([0.5, -0.25]);
    expect(kalmanSmooth([[1, 2, 3]]).map((v) => [...v])).toEqual([[1, 2, 3]]);
    expect(kalmanSmooth([])).toEqual([]);
    expect(() => kalmanSmooth([[1, 2], [1]])).toThrow(/frame 1 has 1 values/);
  });
});
