/** Test images made from a formula (no files). */
import { createImage, type RgbImage } from '../../src/image/image.js';

/** Red = x, green = y, blue = x + y (each mod 256). */
export function gradientImage(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = x % 256;
      data[o + 1] = y % 256;
      data[o + 2] = (x + y) % 256;
    }
  return { width: w, height: h, data };
}

/** A deterministic pattern that differs with `seed`. */
export function pattern(width: number, height: number, seed = 0): RgbImage {
  const img = createImage(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      img.data[i] = (x * 7 + seed) & 255;
      img.data[i + 1] = (y * 11 + seed * 3) & 255;
      img.data[i + 2] = ((x + y) * 5 + seed * 5) & 255;
    }
  }
  return img;
}

/** One grey level everywhere (no face anywhere). */
export function flatImage(w: number, h: number, level = 128): RgbImage {
  return createImage(w, h, new Uint8Array(w * h * 3).fill(level));
}
