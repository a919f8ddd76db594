import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MEDIA_DIR } from './helpers/paths.js';
import { makeCropMask, pasteBack, preparePasteBack, tensorToRgb } from '../src/face/paste_back.js';
import { readImage } from '../src/node/image_files.js';
import { applyAffine, invertAffine, type Affine, warpImage } from '../src/image/affine.js';
import { type RgbImage } from '../src/image/image.js';

/** Crop → original: a 512 crop of side `side` around (cx, cy), rotated by `deg`. */
function cropToOrig(cx: number, cy: number, side: number, deg: number): Affine {
  const s = side / 512;
  const c = Math.cos((deg * Math.PI) / 180) * s;
  const n = Math.sin((deg * Math.PI) / 180) * s;
  return [c, -n, cx - (c * 256 - n * 256), n, c, cy - (n * 256 + c * 256)];
}

describe('paste-back', () => {
  it('crop mask: 0 at the border, 255 inside, 16 px ramp at 512, rounded corners', () => {
    const m = makeCropMask(512);
    const at = (x: number, y: number) => m[y * 512 + x];
    expect(at(0, 256)).toBe(0);
    expect(at(8, 256)).toBe(127);
    expect(at(16, 256)).toBe(255);
    expect(at(256, 256)).toBe(255);
    expect(at(0, 0)).toBe(0);
    expect(at(511, 256)).toBe(15);
    expect(at(256, 511)).toBe(15);
    expect(at(10, 10)).toBeLessThan(at(10, 256));
  });

  it('pixels outside the mask are exactly the original; the face region takes the crop', async () => {
    const W = 300;
    const H = 400;
    const original: RgbImage = { width: W, height: H, data: new Uint8Array(W * H * 3) };
    for (let i = 0; i < original.data.length; i++) original.data[i] = (i * 37) % 251;
    const M_c2o = cropToOrig(140, 180, 160, 12);
    const crop: RgbImage = { width: 512, height: 512, data: new Uint8Array(512 * 512 * 3).fill(200) };
    const mask = preparePasteBack(M_c2o, W, H);
    const out = pasteBack(crop, M_c2o, original, mask);
    expect(out.data.length).toBe(original.data.length);
    const M_o2c = invertAffine(M_c2o);
    let far = 0;
    let inside = 0;
    let farDiff = 0;
    let insideDiff = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const [u, v] = applyAffine(M_o2c, [x, y]);
        const o = (y * W + x) * 3;
        if (u < -2 || v < -2 || u > 514 || v > 514) {
          far++;
          for (let k = 0; k < 3; k++) if (out.data[o + k] !== original.data[o + k]) farDiff++;
        } else if (u > 40 && v > 40 && u < 472 && v < 472) {
          inside++;
          for (let k = 0; k < 3; k++) if (out.data[o + k] !== 200) insideDiff++;
        }
      }
    expect(farDiff).toBe(0);
    expect(insideDiff).toBe(0);
    expect(far).toBeGreaterThan(10_000);
    expect(inside).toBeGreaterThan(5_000);
  });

  it('a crop partly outside the image and a large photo: round trip keeps the face, far pixels identical', async () => {
    const path = join(MEDIA_DIR, 's9.jpg');
    if (!existsSync(path)) return;
    const original = await readImage(path);
    const M_c2o = cropToOrig(380, 330, 480, -8);
    const crop = warpImage(original, invertAffine(M_c2o), 512, 512);
    // the generator's output as a tensor in 0..1 (values k/255 survive the truncation)
    const t = tf.tidy(() => tf.tensor4d(crop.data, [1, 512, 512, 3], 'float32').div(255));
    const cropBack = await tensorToRgb(t);
    t.dispose();
    let same = 0;
    for (let i = 0; i < crop.data.length; i++) if (cropBack.data[i] === crop.data[i] || cropBack.data[i] === crop.data[i] - 1) same++;
    expect(same).toBe(crop.data.length);
    const mask = preparePasteBack(M_c2o, original.width, original.height);
    const out = pasteBack(cropBack, M_c2o, original, mask);
    // far from the face: identical
    for (const [x, y] of [
      [5, 5],
      [700, 1200],
      [360, 1000],
      [20, 640],
    ]) {
      const o = (y * original.width + x) * 3;
      expect([...out.data.subarray(o, o + 3)]).toEqual([...original.data.subarray(o, o + 3)]);
    }
    // under the mask: the re-sampled crop, close to the original
    let err = 0;
    let n = 0;
    for (let y = 250; y < 420; y++)
      for (let x = 300; x < 460; x++) {
        const o = (y * original.width + x) * 3;
        for (let k = 0; k < 3; k++) err += Math.abs(out.data[o + k] - original.data[o + k]);
        n += 3;
      }
    expect(err / n).toBeLessThan(4);
    // the window outside the mask footprint is small compared with the image
    expect(mask.width * mask.height).toBeLessThan(original.width * original.height);
  });
});
