/**
 * 2-D affine maps and OpenCV-style bilinear warps on typed arrays (backend
 * independent, exact, fast enough for 512² crops). Matrices are 2x3
 * row-major: [a, b, c, d, e, f] maps (x, y) to (a x + b y + c, d x + e y + f),
 * pixel centres at integers as in OpenCV.
 */
import { type RgbImage, toUint8 } from './image.js';

/** 2x3 affine matrix, row-major. */
export type Affine = [number, number, number, number, number, number];
export type Point2 = [number, number];

export function applyAffine(M: Affine, p: Point2): Point2 {
  return [M[0] * p[0] + M[1] * p[1] + M[2], M[3] * p[0] + M[4] * p[1] + M[5]];
}

export function transformPoints(pts: Point2[], M: Affine): Point2[] {
  return pts.map((p) => applyAffine(M, p));
}

export function invertAffine(M: Affine): Affine {
  const [a, b, c, d, e, f] = M;
  const det = a * e - b * d;
  if (Math.abs(det) < 1e-12) throw new Error('invertAffine: singular matrix');
  const ia = e / det;
  const ib = -b / det;
  const id = -d / det;
  const ie = a / det;
  return [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)];
}

/** A ∘ B: first B, then A. */
export function composeAffine(A: Affine, B: Affine): Affine {
  return [
    A[0] * B[0] + A[1] * B[3],
    A[0] * B[1] + A[1] * B[4],
    A[0] * B[2] + A[1] * B[5] + A[2],
    A[3] * B[0] + A[4] * B[3],
    A[3] * B[1] + A[4] * B[4],
    A[3] * B[2] + A[4] * B[5] + A[5],
  ];
}

/** 3x3 homogeneous form (the reference keeps M_o2c / M_c2o as 3x3). */
export interface WarpRegion {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/**
 * Bilinear warp of an interleaved image: output pixel (x, y) samples the
 * source at `dst2src`·(x, y); samples outside the source count as 0 (OpenCV's
 * BORDER_CONSTANT). `region` restricts the output to a window of the
 * (outW × outH) destination, whose coordinates it keeps. Returns floats
 * (unrounded) of region.width × region.height × channels.
 */
export function warpAffineFloat(
  src: ArrayLike<number>,
  srcW: number,
  srcH: number,
  channels: number,
  dst2src: Affine,
  region: WarpRegion,
): Float32Array {
  const { x0, y0, width, height } = region;
  const out = new Float32Array(width * height * channels);
  const [a, b, c, d, e, f] = dst2src;
  for (let j = 0; j < height; j++) {
    const y = y0 + j;
    for (let i = 0; i < width; i++) {
      const x = x0 + i;
      const sx = a * x + b * y + c;
      const sy = d * x + e * y + f;
      const xf = Math.floor(sx);
      const yf = Math.floor(sy);
      if (xf < -1 || yf < -1 || xf >= srcW || yf >= srcH) continue;
      const wx = sx - xf;
      const wy = sy - yf;
      const o = (j * width + i) * channels;
      const in00 = xf >= 0 && yf >= 0;
      const in10 = xf + 1 < srcW && yf >= 0;
      const in01 = xf >= 0 && yf + 1 < srcH;
      const in11 = xf + 1 < srcW && yf + 1 < srcH;
      const w00 = (1 - wx) * (1 - wy);
      const w10 = wx * (1 - wy);
      const w01 = (1 - wx) * wy;
      const w11 = wx * wy;
      const p00 = (yf * srcW + xf) * channels;
      const p10 = p00 + channels;
      const p01 = p00 + srcW * channels;
      const p11 = p01 + channels;
      for (let k = 0; k < channels; k++) {
        let v = 0;
        if (in00) v += w00 * src[p00 + k];
        if (in10) v += w10 * src[p10 + k];
        if (in01) v += w01 * src[p01 + k];
        if (in11) v += w11 * src[p11 + k];
        out[o + k] = v;
      }
    }
  }
  return out;
}

/**
 * OpenCV-style `warpAffine(img, M_src2dst, (outW, outH))` of an RGB image,
 * bilinear, black border, rounded to uint8.
 */
export function warpImage(img: RgbImage, src2dst: Affine, outW: number, outH: number): RgbImage {
  const f = warpAffineFloat(img.data, img.width, img.height, 3, invertAffine(src2dst), {
    x0: 0,
    y0: 0,
    width: outW,
    height: outH,
  });
  return { width: outW, height: outH, data: toUint8(f) };
}
