import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { describeBackend } from './helpers/parity.js';
import { maxAbsDiff } from './helpers/tensors.js';
import { pixelShuffle } from '../src/layers/pixel_shuffle.js';
import { InstanceNorm2d, nearestIndex, resizeNearest } from '../src/layers/spade.js';
import { resolveSpectralWeight, spectralConv2d, spectralSigma } from '../src/layers/spectral_norm.js';
import { ParamReader } from '../src/layers/params.js';
import { f32 } from '../src/formats/host_tensor.js';
import { Conv2d, Conv3d } from '../src/layers/core.js';
import { winogradFilter, winogradPays } from '../src/layers/winograd.js';
import { syntheticTensor } from '../src/models/synthetic.js';

/** A small deterministic pseudo-random array in [-1, 1). */
function values(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

describeBackend('pixelShuffle', () => {
  it('moves channel c·r² + i·r + j to pixel (h·r + i, w·r + j), channel c', async () => {
    const [n, h, w, c, r] = [2, 3, 4, 3, 2];
    const data = values(n * h * w * c * r * r);
    const x = tf.tensor4d(data, [n, h, w, c * r * r]);
    const y = pixelShuffle(x, r);
    expect(y.shape).toEqual([n, h * r, w * r, c]);
    const got = await y.data();
    for (let b = 0; b < n; b++)
      for (let yy = 0; yy < h * r; yy++)
        for (let xx = 0; xx < w * r; xx++)
          for (let ch = 0; ch < c; ch++) {
            const [hh, i, ww, j] = [Math.floor(yy / r), yy % r, Math.floor(xx / r), xx % r];
            const src = ((b * h + hh) * w + ww) * c * r * r + ch * r * r + i * r + j;
            expect(got[((b * h * r + yy) * w * r + xx) * c + ch]).toBe(data[src]);
          }
    tf.dispose([x, y]);
  });
});

describeBackend('InstanceNorm2d (affine=False)', () => {
  it('normalises each image and channel with the biased variance and eps 1e-5', async () => {
    const [n, h, w, c] = [2, 5, 3, 4];
    const data = values(n * h * w * c, 7).map((v, i) => v * (1 + (i % c)) + (i % c)); // channel-dependent scale and offset
    const x = tf.tensor4d(data, [n, h, w, c]);
    const y = new InstanceNorm2d().apply(x);
    const got = await y.data();
    let maxErr = 0;
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        const idx = Array.from({ length: h * w }, (_, p) => (b * h * w + p) * c + ch);
        const mean = idx.reduce((s, i) => s + data[i], 0) / idx.length;
        const variance = idx.reduce((s, i) => s + (data[i] - mean) ** 2, 0) / idx.length;
        for (const i of idx) maxErr = Math.max(maxErr, Math.abs(got[i] - (data[i] - mean) / Math.sqrt(variance + 1e-5)));
      }
    expect(maxErr).toBeLessThan(1e-5);
    tf.dispose([x, y]);
  });
});

describeBackend('resizeNearest (F.interpolate nearest)', () => {
  const check = async (h: number, w: number, oh: number, ow: number) => {
    const c = 2;
    const data = values(h * w * c, 3);
    const x = tf.tensor4d(data, [1, h, w, c]);
    const y = resizeNearest(x, [oh, ow]);
    expect(y.shape).toEqual([1, oh, ow, c]);
    const got = await y.data();
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let ch = 0; ch < c; ch++) {
          // PyTorch: src = floor(dst * in / out)
          const si = Math.floor((i * h) / oh);
          const sj = Math.floor((j * w) / ow);
          expect(got[(i * ow + j) * c + ch]).toBe(data[(si * w + sj) * c + ch]);
        }
    tf.dispose([x, y]);
  };
  it('repeats pixels for whole-number factors', () => check(4, 3, 8, 9));
  it('picks floor(dst · in / out) for other sizes', async () => {
    await check(5, 7, 3, 4); // down
    await check(3, 4, 7, 10); // up, not whole
  });
  it('index rule', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((d) => nearestIndex(d, 3, 7))).toEqual([0, 0, 0, 1, 1, 2, 2]);
  });
});

describeBackend('spectral norm resolution', () => {
  it('sigma = u · (W v) and weight = weight_orig / sigma', () => {
    const [o, i, k] = [3, 2, 2];
    const w = values(o * i * k * k, 11);
    const u = values(o, 12);
    const v = values(i * k * k, 13);
    let sigma = 0;
    for (let r = 0; r < o; r++) for (let q = 0; q < v.length; q++) sigma += u[r] * w[r * v.length + q] * v[q];
    expect(spectralSigma(w, u, v)).toBeCloseTo(sigma, 6);
    const sd = new Map([
      ['c.weight_orig', f32([o, i, k, k], w)],
      ['c.weight_u', f32([o], u)],
      ['c.weight_v', f32([i * k * k], v)],
    ]);
    const p = new ParamReader(sd, 'test', 'memory');
    const got = resolveSpectralWeight(p, 'c');
    expect(got.shape).toEqual([o, i, k, k]);
    (got.data as Float32Array).forEach((x, n) => expect(x).toBeCloseTo(w[n] / sigma, 6));
    expect(p.unused()).toEqual([]);
  });

  it('divides a rank-one weight s·a bᵀ by s when u = a, v = b', async () => {
    const a = [0.6, 0.8];
    const b = [1 / 3, 2 / 3, 2 / 3];
    const s = 4.5;
    const w = Float32Array.from({ length: 6 }, (_, n) => s * a[Math.floor(n / 3)] * b[n % 3]);
    const sd = new Map([
      ['c.weight_orig', f32([2, 3, 1, 1], w)],
      ['c.weight_u', f32([2], Float32Array.from(a))],
      ['c.weight_v', f32([3], Float32Array.from(b))],
      ['c.bias', f32([2], Float32Array.from([0.5, -0.5]))],
    ]);
    const p = new ParamReader(sd, 'test', 'memory');
    const conv = spectralConv2d(p, 'c');
    // A 1×1 conv on the one-hot pixel e_q gives column q of the normalised weight, plus bias.
    const x = tf.tensor4d([1, 0, 0, 0, 1, 0, 0, 0, 1], [1, 1, 3, 3]);
    const yt = conv.apply(x);
    const y = await yt.data();
    yt.dispose();
    for (let q = 0; q < 3; q++) for (let r = 0; r < 2; r++) expect(y[q * 2 + r]).toBeCloseTo(a[r] * b[q] + (r === 0 ? 0.5 : -0.5), 6);
    expect(p.unused()).toEqual([]);
    conv.dispose();
    x.dispose();
  });
});

describeBackend('Conv3d (no Conv3D kernel: per-tap and tap-stacked conv2d)', () => {
  // Naive direct 3-D convolution on NDHWC host arrays, torch weight [O, I, kd, kh, kw].
  function naive(x: Float32Array, [n, d, h, w, c]: number[], wt: Float32Array, b: Float32Array, o: number, k: number, pad: number): Float32Array {
    const out = new Float32Array(n * d * h * w * o);
    for (let bn = 0; bn < n; bn++)
      for (let z = 0; z < d; z++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++)
            for (let oc = 0; oc < o; oc++) {
              let s = b[oc];
              for (let dz = 0; dz < k; dz++)
                for (let dy = 0; dy < k; dy++)
                  for (let dx = 0; dx < k; dx++) {
                    const zz = z + dz - pad, yy = y + dy - pad, x2 = xx + dx - pad;
                    if (zz < 0 || zz >= d || yy < 0 || yy >= h || x2 < 0 || x2 >= w) continue;
                    for (let ic = 0; ic < c; ic++)
                      s += x[(((bn * d + zz) * h + yy) * w + x2) * c + ic] * wt[(((oc * c + ic) * k + dz) * k + dy) * k + dx];
                  }
              out[(((bn * d + z) * h + y) * w + xx) * o + oc] = s;
            }
    return out;
  }

  for (const k of [3, 7]) {
    it(`kernel ${k}: equals a direct convolution, also on a second call inside tidy`, async () => {
      const [n, d, h, w, c, o] = [2, 5, 6, 7, 3, 4];
      const pad = (k - 1) / 2;
      const wt = syntheticTensor('w', [o, c, k, k, k], -0.3, 0.3, 5);
      const b = syntheticTensor('b', [o], -0.1, 0.1, 5);
      const conv = new Conv3d(new ParamReader(new Map([['c.weight', wt], ['c.bias', b]]), 'test', 'test'), 'c', { padding: pad });
      const xs = syntheticTensor('x', [n, d, h, w, c], -1, 1, 5).data as Float32Array;
      const expected = naive(xs, [n, d, h, w, c], wt.data as Float32Array, b.data as Float32Array, o, k, pad);
      const before = tf.memory().numTensors;
      for (let call = 0; call < 2; call++) {
        const gt = tf.tidy(() => conv.apply(tf.tensor5d(xs, [n, d, h, w, c])));
        const got = (await gt.data()) as Float32Array;
        gt.dispose();
        let err = 0;
        for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - expected[i]));
        expect(err).toBeLessThan(1e-5);
      }
      conv.dispose();
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    });
  }
});

describeBackend('Winograd F(2x2, 3x3)', () => {
  /** Construct with the Winograd path forced on or off, whatever the backend and the cost model say. */
  function withWinograd<T>(on: boolean, make: () => T): T {
    const saved = process.env.LIVEPORTRAIT_WINOGRAD;
    process.env.LIVEPORTRAIT_WINOGRAD = on ? '1' : '0';
    try {
      return make();
    } finally {
      if (saved === undefined) delete process.env.LIVEPORTRAIT_WINOGRAD;
      else process.env.LIVEPORTRAIT_WINOGRAD = saved;
    }
  }
  const reader = (entries: [string, ReturnType<typeof syntheticTensor>][]) => new ParamReader(new Map(entries), 'test', 'test');

  it('the cost model takes it for wide channels only', () => {
    expect(winogradPays(512, 512)).toBe(true);
    expect(winogradPays(128, 512)).toBe(true);
    expect(winogradPays(64, 64)).toBe(true);
    expect(winogradPays(32, 48)).toBe(false);
    expect(winogradPays(3, 64)).toBe(false);
    expect(winogradPays(32, 32)).toBe(false);
    expect(winogradPays(32, 32, 3)).toBe(true); // a 3x3x3 convolution shares one input transform over its depth taps
  });

  for (const [pad, h, w] of [
    [1, 9, 12],
    [0, 8, 7],
    [2, 5, 6],
    // Taller than two bands of 64 output rows: band by band, with the halo rows and the padding at the ends only.
    [1, 140, 5],
    [0, 133, 4],
    [2, 131, 3],
  ]) {
    it(`Conv2d padding ${pad} on ${h}x${w}: equals the direct convolution, with bias, ReLU and two batch items, leaking nothing`, async () => {
      const [n, c, o] = [2, 5, 6];
      const wt = syntheticTensor('w', [o, c, 3, 3], -0.5, 0.5, 3);
      const b = syntheticTensor('b', [o], -0.2, 0.2, 3);
      const fast = withWinograd(true, () => new Conv2d(reader([['c.weight', wt], ['c.bias', b]]), 'c', { padding: pad }));
      const direct = withWinograd(false, () => new Conv2d(reader([['c.weight', wt], ['c.bias', b]]), 'c', { padding: pad }));
      expect(fast.usesWinograd).toBe(true);
      expect(direct.usesWinograd).toBe(false);
      const x = tf.tensor4d(syntheticTensor('x', [n, h, w, c], -1, 1, 3).data as Float32Array, [n, h, w, c]);
      const before = tf.memory().numTensors;
      for (const act of ['linear', 'relu'] as const) {
        const [got, want] = [fast.apply(x, act), direct.apply(x, act)];
        expect(got.shape).toEqual([n, h + 2 * pad - 2, w + 2 * pad - 2, o]);
        expect(got.shape).toEqual(want.shape);
        expect(await maxAbsDiff(got, want)).toBeLessThan(1e-5);
        if (act === 'relu') expect(Math.min(...(await got.data()))).toBeGreaterThanOrEqual(0);
        tf.dispose([got, want]);
      }
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x]);
      fast.dispose();
      direct.dispose();
    });
  }

  it('Conv2d.applyShared transforms once and equals separate applies', async () => {
    const convs = [1, 2].map((seed) =>
      withWinograd(true, () =>
        new Conv2d(reader([['c.weight', syntheticTensor('w', [4, 3, 3, 3], -0.5, 0.5, seed)], ['c.bias', syntheticTensor('b', [4], -0.2, 0.2, seed)]]), 'c', { padding: 1 }),
      ),
    );
    const x = tf.tensor4d(values(1 * 6 * 6 * 3, 9), [1, 6, 6, 3]);
    const shared = Conv2d.applyShared(convs, x);
    for (const [i, c] of convs.entries()) {
      const alone = c.apply(x);
      expect(Array.from(await shared[i].data())).toEqual(Array.from(await alone.data()));
      alone.dispose();
    }
    tf.dispose([x, ...shared]);
    convs.forEach((c) => c.dispose());
  });

  it('Conv3d 3x3x3 sums its depth taps in the transformed domain: equals the per-tap conv2d path', async () => {
    const [d, h, w, c, o] = [4, 7, 6, 3, 5];
    const wt = syntheticTensor('w', [o, c, 3, 3, 3], -0.3, 0.3, 4);
    const b = syntheticTensor('b', [o], -0.1, 0.1, 4);
    const fast = withWinograd(true, () => new Conv3d(reader([['c.weight', wt], ['c.bias', b]]), 'c', { padding: 1 }));
    const direct = withWinograd(false, () => new Conv3d(reader([['c.weight', wt], ['c.bias', b]]), 'c', { padding: 1 }));
    expect(fast.usesWinograd).toBe(true);
    expect(direct.usesWinograd).toBe(false);
    const x = tf.tensor5d(syntheticTensor('x', [1, d, h, w, c], -1, 1, 4).data as Float32Array, [1, d, h, w, c]);
    const before = tf.memory().numTensors;
    const [got, want] = [fast.apply(x, 'relu'), direct.apply(x, 'relu')];
    expect(got.shape).toEqual([1, d, h, w, o]);
    expect(await maxAbsDiff(got, want)).toBeLessThan(1e-5);
    tf.dispose([got, want]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x]);
    fast.dispose();
    direct.dispose();
  });

  it('the filter transform is G g Gᵀ', async () => {
    // One input and one output channel: U_k for k = 4i + j against the 4x3 G matrix by hand.
    const g = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const G = [
      [1, 0, 0],
      [0.5, 0.5, 0.5],
      [0.5, -0.5, 0.5],
      [0, 0, 1],
    ];
    const U = winogradFilter(tf.tensor4d(g, [3, 3, 1, 1]));
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 4; j++) {
        let want = 0;
        for (let a = 0; a < 3; a++) for (let bb = 0; bb < 3; bb++) want += G[i][a] * g[a * 3 + bb] * G[j][bb];
        expect((await U[4 * i + j].data())[0]).toBeCloseTo(want, 6);
      }
    tf.dispose(U);
  });
});
