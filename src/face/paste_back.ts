/**
 * Paste-back (the reference's prepare_paste_back / paste_back): the animated
 * crop is warped back into the original image by M_c2o and blended through a
 * feathered crop mask; pixels outside the mask keep the original's exact
 * values. Works on typed arrays, only over the crop's footprint in the
 * original (the rest is a plain copy), so memory stays small at any
 * resolution.
 */
import type * as tf from '@tensorflow/tfjs';
import { applyAffine, invertAffine, type Affine, warpAffineFloat } from '../image/affine.js';
import { type RgbImage } from '../image/image.js';

/**
 * The crop mask, one channel, uint8: 255 inside, a linear 0→255 ramp over the
 * outer dsize/32 pixels (16 at 512) with rounded corners (the shape of the
 * reference's mask_template.png, generated here).
 */
export function makeCropMask(dsize = 512): Uint8Array {
  const f = dsize / 32;
  const lo = f;
  const hi = dsize - f;
  const out = new Uint8Array(dsize * dsize);
  for (let y = 0; y < dsize; y++) {
    const dy = y < lo ? lo - y : y > hi ? y - hi : 0;
    for (let x = 0; x < dsize; x++) {
      const dx = x < lo ? lo - x : x > hi ? x - hi : 0;
      const d = Math.hypot(dx, dy);
      out[y * dsize + x] = Math.floor((255 / f) * Math.max(0, f - d));
    }
  }
  return out;
}

/** The mask warped to the original image, kept only over the crop's footprint. */
export interface PasteBackMask {
  /** Size of the original image. */
  imageWidth: number;
  imageHeight: number;
  /** Footprint window in the original (pixels outside it have alpha 0). */
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** Alpha in 0..1 over the window, width × height. */
  alpha: Float32Array;
  /** Crop side the mask was made for. */
  dsize: number;
}

/** Window of the original image that the dsize² crop covers under M_c2o (clipped). */
function footprint(M_c2o: Affine, dsize: number, W: number, H: number) {
  const corners = [
    [-1, -1],
    [dsize, -1],
    [-1, dsize],
    [dsize, dsize],
  ].map((p) => applyAffine(M_c2o, p as [number, number]));
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)) - 1);
  const y0 = Math.max(0, Math.floor(Math.min(...ys)) - 1);
  const x1 = Math.min(W, Math.ceil(Math.max(...xs)) + 2);
  const y1 = Math.min(H, Math.ceil(Math.max(...ys)) + 2);
  return { x0, y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}

/**
 * prepare_paste_back: warp the crop mask (default makeCropMask(512)) to an
 * original image of width × height by M_c2o (crop → original), as uint8
 * then / 255, like the reference.
 */
export function preparePasteBack(
  M_c2o: Affine,
  width: number,
  height: number,
  maskCrop?: Uint8Array,
  dsize = 512,
): PasteBackMask {
  const mask = maskCrop ?? makeCropMask(dsize);
  if (mask.length !== dsize * dsize) throw new Error(`preparePasteBack: mask must be ${dsize}x${dsize}, one channel`);
  const win = footprint(M_c2o, dsize, width, height);
  const f = warpAffineFloat(mask, dsize, dsize, 1, invertAffine(M_c2o), win);
  const alpha = new Float32Array(f.length);
  for (let i = 0; i < f.length; i++) alpha[i] = Math.min(255, Math.max(0, Math.round(f[i]))) / 255;
  return { imageWidth: width, imageHeight: height, ...win, alpha, dsize };
}

/**
 * paste_back: blend the crop (uint8 RGB dsize²) warped by M_c2o into a copy
 * of the original: mask · crop + (1 − mask) · original, truncated to uint8.
 */
export function pasteBack(crop: RgbImage, M_c2o: Affine, original: RgbImage, mask: PasteBackMask): RgbImage {
  if (mask.imageWidth !== original.width || mask.imageHeight !== original.height)
    throw new Error('pasteBack: mask was prepared for another image size');
  const out = new Uint8Array(original.data);
  const { x0, y0, width, height, alpha } = mask;
  if (width === 0 || height === 0) return { width: original.width, height: original.height, data: out };
  const warped = warpAffineFloat(crop.data, crop.width, crop.height, 3, invertAffine(M_c2o), { x0, y0, width, height });
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      const a = alpha[j * width + i];
      if (a === 0) continue; // exactly the original
      const o = ((y0 + j) * original.width + x0 + i) * 3;
      const w = (j * width + i) * 3;
      for (let k = 0; k < 3; k++) {
        const r = Math.min(255, Math.max(0, Math.round(warped[w + k]))); // cv2 warps uint8 → uint8
        const v = a * r + (1 - a) * original.data[o + k];
        out[o + k] = Math.min(255, Math.max(0, Math.floor(v)));
      }
    }
  }
  return { width: original.width, height: original.height, data: out };
}

/**
 * A generator output ([1, H, W, 3] or [H, W, 3], values 0..1) as a uint8 RGB
 * image, the reference's parse_output (clip, × 255, truncate).
 */
export async function tensorToRgb(t: tf.Tensor): Promise<RgbImage> {
  const shape = t.shape;
  const h = shape[shape.length - 3];
  const w = shape[shape.length - 2];
  if (shape[shape.length - 1] !== 3 || (shape.length === 4 && shape[0] !== 1) || shape.length < 3 || shape.length > 4)
    throw new Error(`tensorToRgb: expected [1, H, W, 3] or [H, W, 3], got [${shape.join(', ')}]`);
  const f = await t.data();
  const data = new Uint8Array(f.length);
  for (let i = 0; i < f.length; i++) data[i] = Math.floor(Math.min(1, Math.max(0, f[i])) * 255);
  return { width: w, height: h, data };
}
