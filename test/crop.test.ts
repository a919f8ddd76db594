import { describe, it, expect } from 'vitest';
import { FM_BROWS, FM_EYE_L, FM_EYE_R, FM_JAW, FM_MOUTH_CORNERS, SOURCE_CROP, averageBbox, bboxFromLandmarks, cropImage, cropImageByBbox, parsePt2, parseRectFromLandmarks } from '../src/face/crop.js';
import { calcEyeCloseRatio, calcLipCloseRatio, calcRatio, ratiosFromLandmarks } from '../src/face/ratios.js';
import { applyAffine, composeAffine, invertAffine, type Affine, type Point2, warpImage } from '../src/image/affine.js';
import { boxDownscale } from '../src/image/image.js';
import { gradientImage } from './helpers/images.js';

/**
 * A synthetic 468-point face in a unit frame (eyes at y = 0, lips at
 * y = 0.6, brows at −0.3, chin at 1.0), rotated by `deg`, scaled and moved.
 */
function syntheticFace(deg: number, scale: number, at: Point2, eyeOpen = 0.1, lipOpen = 0): Point2[] {
  const p: Point2[] = Array.from({ length: 468 }, () => [0, 0.3] as Point2);
  const set = (i: number, x: number, y: number) => (p[i] = [x, y]);
  // eyes: outer/inner corner, upper/lower lid
  set(FM_EYE_L[0], -0.45, 0);
  set(FM_EYE_L[1], -0.15, 0);
  set(FM_EYE_L[2], -0.3, -eyeOpen / 2);
  set(FM_EYE_L[3], -0.3, eyeOpen / 2);
  set(FM_EYE_R[0], 0.15, 0);
  set(FM_EYE_R[1], 0.45, 0);
  set(FM_EYE_R[2], 0.3, -eyeOpen / 2);
  set(FM_EYE_R[3], 0.3, eyeOpen / 2);
  set(FM_MOUTH_CORNERS[0], -0.25, 0.6);
  set(FM_MOUTH_CORNERS[1], 0.25, 0.6);
  set(13, 0, 0.6 - lipOpen / 2);
  set(14, 0, 0.6 + lipOpen / 2);
  FM_JAW.forEach((i, k) => {
    const t = Math.PI * (k / (FM_JAW.length - 1)); // ear → chin → ear
    set(i, -0.7 * Math.cos(t), 1.0 * Math.sin(t));
  });
  FM_BROWS.forEach((i, k) => set(i, -0.5 + k / (FM_BROWS.length - 1), -0.3));
  const c = Math.cos((deg * Math.PI) / 180);
  const s = Math.sin((deg * Math.PI) / 180);
  return p.map(([x, y]) => [at[0] + scale * (c * x - s * y), at[1] + scale * (s * x + c * y)]);
}

describe('affine helpers and warp', () => {
  it('inverse and composition', () => {
    const M: Affine = [1.2, -0.3, 5, 0.4, 0.9, -7];
    const I = composeAffine(M, invertAffine(M));
    [1, 0, 0, 0, 1, 0].forEach((v, i) => expect(I[i]).toBeCloseTo(v, 10));
  });

  it('integer translation warps exactly, black outside', () => {
    const img = gradientImage(20, 10);
    const out = warpImage(img, [1, 0, 3, 0, 1, 2], 20, 10); // src → dst: shift by (3, 2)
    expect(out.data[(5 * 20 + 7) * 3]).toBe(img.data[(3 * 20 + 4) * 3]);
    expect(out.data[(5 * 20 + 7) * 3 + 1]).toBe(img.data[(3 * 20 + 4) * 3 + 1]);
    expect(out.data[(0 * 20 + 0) * 3]).toBe(0);
    expect(out.data[(1 * 20 + 10) * 3 + 1]).toBe(0);
  });

  it('half size is the 2×2 mean', () => {
    const img = gradientImage(8, 6);
    const h = boxDownscale(img, 2);
    expect([h.width, h.height]).toEqual([4, 3]);
    expect(h.data[(1 * 4 + 2) * 3]).toBe(Math.round((4 + 5 + 4 + 5) / 4));
  });
});

describe('the reference crop on FaceMesh points', () => {
  it('pt2 and rect: roll recovered, square side = extent × scale, vy shifts up', () => {
    const lmk = syntheticFace(20, 100, [300, 250]);
    const [eye, lip] = parsePt2(lmk);
    expect(Math.atan2(-(lip[0] - eye[0]), lip[1] - eye[1]) * (180 / Math.PI)).toBeCloseTo(20, 6);
    const r = parseRectFromLandmarks(lmk, { scale: 1, vyRatio: 0 });
    expect((r.angle * 180) / Math.PI).toBeCloseTo(20, 6);
    // extent in the face frame: width 1.4 (jaw), height −0.3 … 1.0 = 1.3 → side 1.4 × 100
    expect(r.size).toBeCloseTo(140, 6);
    const r2 = parseRectFromLandmarks(lmk, SOURCE_CROP);
    expect(r2.size).toBeCloseTo(140 * 2.3, 6);
    // centre moved up along the face's y axis by 0.125 × side (relative to vy = 0)
    const rs = parseRectFromLandmarks(lmk, { ...SOURCE_CROP, vyRatio: 0 });
    const d: Point2 = [r2.center[0] - rs.center[0], r2.center[1] - rs.center[1]];
    expect(d[0] * r2.uy[0] + d[1] * r2.uy[1]).toBeCloseTo(-0.125 * r2.size, 6);
  });

  it('cropImage: rotation aligned, matrices inverse, landmarks transformed, 256 version', () => {
    const img = gradientImage(640, 480);
    const lmk = syntheticFace(-15, 60, [320, 220]);
    const c = cropImage(img, lmk);
    expect(c.imgCrop.width).toBe(512);
    expect(c.imgCrop256.width).toBe(256);
    const I = composeAffine(c.M_c2o, c.M_o2c);
    [1, 0, 0, 0, 1, 0].forEach((v, i) => expect(I[i]).toBeCloseTo(v, 9));
    const [eye, lip] = parsePt2(c.lmkCrop);
    expect(eye[0]).toBeCloseTo(lip[0], 6); // eye → lip axis vertical
    expect(eye[1]).toBeLessThan(lip[1]);
    expect(eye[0]).toBeCloseTo(256, 6); // vx = 0: centred horizontally
    // the crop pixel equals the bilinear sample of the original at M_c2o · p
    const [x, y] = applyAffine(c.M_c2o, [100, 300]);
    const x0 = Math.floor(x);
    const y0 = Math.floor(y);
    const fx = x - x0;
    const fy = y - y0;
    const at = (xx: number, yy: number) => img.data[(yy * 640 + xx) * 3];
    const expected =
      (1 - fx) * (1 - fy) * at(x0, y0) + fx * (1 - fy) * at(x0 + 1, y0) + (1 - fx) * fy * at(x0, y0 + 1) + fx * fy * at(x0 + 1, y0 + 1);
    // gradient wraps at 256: only compare where it does not
    if (x0 + 1 < 256) expect(Math.abs(c.imgCrop.data[(300 * 512 + 100) * 3] - expected)).toBeLessThanOrEqual(0.5);
    c.lmkCrop256.forEach((p, i) => expect(p[0]).toBeCloseTo(c.lmkCrop[i][0] / 2, 9));
  });

  it('driving crop: averaged axis-aligned box, no rotation', () => {
    const img = gradientImage(400, 400);
    const a = syntheticFace(10, 50, [200, 180]);
    const b = syntheticFace(-10, 50, [210, 190]);
    const ba = bboxFromLandmarks(a);
    const bb = bboxFromLandmarks(b);
    expect(ba[2] - ba[0]).toBeCloseTo(ba[3] - ba[1], 9);
    const box = averageBbox([ba, bb]);
    const c = cropImageByBbox(img, box, a);
    expect(c.M_o2c[1]).toBe(0);
    expect(c.M_o2c[0]).toBeCloseTo(512 / (box[2] - box[0]), 9);
    const centre = applyAffine(c.M_c2o, [256, 256]) // the reference maps the box centre to dsize / 2;
    expect(centre[0]).toBeCloseTo((box[0] + box[2]) / 2, 6);
  });
});

describe('eye and lip ratios', () => {
  it('open > closed, shapes of the per-frame and combined ratios', () => {
    const open = syntheticFace(0, 100, [200, 200], 0.12, 0.2);
    const closed = syntheticFace(30, 80, [150, 220], 0.01, 0);
    const [[lo, ro]] = calcEyeCloseRatio(open);
    const [[lc, rc]] = calcEyeCloseRatio(closed);
    expect(lo).toBeCloseTo(0.12 / 0.3, 5);
    expect(ro).toBeCloseTo(0.12 / 0.3, 5);
    expect(lc).toBeLessThan(lo);
    expect(rc).toBeLessThan(ro);
    expect(calcLipCloseRatio(open)[0][0]).toBeCloseTo(0.2 / 0.5, 5);
    expect(calcLipCloseRatio(closed)[0][0]).toBeCloseTo(0, 5);
    const r = calcRatio([open, closed]);
    expect(r.eyes.length).toBe(2);
    expect(r.eyes[0].length).toBe(1);
    expect(r.eyes[0][0].length).toBe(2);
    expect(r.lip[1]).toEqual([[calcLipCloseRatio(closed)[0][0]]]);
    expect(ratiosFromLandmarks(open)).toEqual({ eyeRatio: calcEyeCloseRatio(open)[0], lipRatio: calcLipCloseRatio(open)[0][0] });
    expect(ratiosFromLandmarks(undefined)).toEqual({});
  });
});
