/**
 * Still images in memory: the one RGB image type, resizing with OpenCV's
 * INTER_AREA / INTER_LINEAR semantics on typed arrays, rectangle crops, and
 * conversion to and from the networks' NHWC float tensors. Reading and
 * writing files is an adapter's job (src/node/image_files.ts).
 *
 * Images are interleaved RGB, row-major, 3 bytes per pixel, no alpha.
 */
import * as tf from '@tensorflow/tfjs';

/** An 8-bit RGB image, HxWx3 interleaved. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Extensions treated as still images (the reference's is_image list, and HEIC/HEIF photos). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.gif', '.bmp', '.tiff', '.tif', '.webp', '.heic', '.heif'];

/** True when the path has a still-image extension (case-insensitive). */
export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.includes(extensionOf(path));
}

/** The lower-case extension of a file name with its dot ('.jpg'), or ''. */
export function extensionOf(path: string): string {
  const name = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

/** An image of the given size, zero-filled unless data is given. */
export function createImage(width: number, height: number, data?: Uint8Array): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`bad image size ${width}x${height}`);
  }
  const n = width * height * 3;
  if (data && data.length !== n) {
    throw new Error(`image data has ${data.length} bytes, expected ${n} for ${width}x${height}x3`);
  }
  return { width, height, data: data ?? new Uint8Array(n) };
}

// --------------------------------------------------------------- resizing ---

/**
 * One axis of a separable resize: for each output index, the source indices
 * and weights (summing to 1).
 */
interface AxisTable {
  start: Int32Array; // offset into idx/w per output index (length n+1)
  idx: Int32Array;
  w: Float32Array;
}

function packTable(rows: Array<Array<[number, number]>>): AxisTable {
  const start = new Int32Array(rows.length + 1);
  let total = 0;
  rows.forEach((r, i) => {
    start[i] = total;
    total += r.length;
  });
  start[rows.length] = total;
  const idx = new Int32Array(total);
  const w = new Float32Array(total);
  let k = 0;
  for (const r of rows) for (const [i, wt] of r) (idx[k] = i), (w[k++] = wt);
  return { start, idx, w };
}

/** INTER_AREA downscale weights: overlap of [d*s, (d+1)*s) with each source cell. */
function areaTable(src: number, dst: number): AxisTable {
  const scale = src / dst;
  const rows: Array<Array<[number, number]>> = [];
  for (let d = 0; d < dst; d++) {
    const f0 = d * scale;
    const f1 = Math.min(f0 + scale, src);
    const row: Array<[number, number]> = [];
    for (let s = Math.floor(f0); s < f1 - 1e-9; s++) {
      const w = Math.min(s + 1, f1) - Math.max(s, f0);
      if (w > 1e-9) row.push([Math.min(s, src - 1), w / (f1 - f0)]);
    }
    rows.push(row);
  }
  return packTable(rows);
}

/**
 * Two-tap linear weights. `area` selects OpenCV's INTER_AREA upscale rule
 * (weight from the cell boundary), otherwise INTER_LINEAR (half-pixel centres).
 */
function linearTable(src: number, dst: number, area: boolean): AxisTable {
  const scale = src / dst;
  const rows: Array<Array<[number, number]>> = [];
  for (let d = 0; d < dst; d++) {
    let s: number;
    let f: number;
    if (area) {
      s = Math.floor(d * scale);
      f = d + 1 - (s + 1) / scale;
      f = f <= 0 ? 0 : f - Math.floor(f);
    } else {
      const fx = (d + 0.5) * scale - 0.5;
      s = Math.floor(fx);
      f = fx - s;
    }
    if (s < 0) (s = 0), (f = 0);
    if (s >= src - 1) (s = src - 1), (f = 0);
    rows.push(f === 0 ? [[s, 1]] : [[s, 1 - f], [s + 1, f]]);
  }
  return packTable(rows);
}

export type ResizeMode = 'area' | 'linear';

/**
 * Separable resize of interleaved HxWxC data to float output (no rounding).
 * 'area' = cv2.INTER_AREA (box/area average when shrinking both axes, its
 * linear rule otherwise), 'linear' = cv2.INTER_LINEAR.
 */
export function resizeFloat(
  src: ArrayLike<number>,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  mode: ResizeMode = 'area',
): Float32Array {
  if (src.length !== width * height * channels) throw new Error(`resize: data length ${src.length} != ${width}x${height}x${channels}`);
  if (!(outWidth > 0 && outHeight > 0 && Number.isInteger(outWidth) && Number.isInteger(outHeight))) {
    throw new Error(`resize: bad output size ${outWidth}x${outHeight}`);
  }
  const shrink = mode === 'area' && width >= outWidth && height >= outHeight;
  const tx = shrink ? areaTable(width, outWidth) : linearTable(width, outWidth, mode === 'area');
  const ty = shrink ? areaTable(height, outHeight) : linearTable(height, outHeight, mode === 'area');
  const C = channels;
  // Horizontal pass: height x outWidth x C.
  const tmp = new Float32Array(height * outWidth * C);
  for (let y = 0; y < height; y++) {
    const rowIn = y * width * C;
    const rowOut = y * outWidth * C;
    for (let x = 0; x < outWidth; x++) {
      const o = rowOut + x * C;
      for (let k = tx.start[x]; k < tx.start[x + 1]; k++) {
        const i = rowIn + tx.idx[k] * C;
        const w = tx.w[k];
        for (let c = 0; c < C; c++) tmp[o + c] += w * src[i + c];
      }
    }
  }
  // Vertical pass.
  const out = new Float32Array(outHeight * outWidth * C);
  const rowLen = outWidth * C;
  for (let y = 0; y < outHeight; y++) {
    const o = y * rowLen;
    for (let k = ty.start[y]; k < ty.start[y + 1]; k++) {
      const i = ty.idx[k] * rowLen;
      const w = ty.w[k];
      for (let j = 0; j < rowLen; j++) out[o + j] += w * tmp[i + j];
    }
  }
  return out;
}

/** Round and saturate floats to bytes. */
export function toUint8(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Math.round(data[i]);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

/**
 * Downscale by an integer factor k with k×k box means, rounded (exactly
 * cv2's INTER_AREA, and at k = 2 its INTER_LINEAR too); the edge rows and
 * columns past a multiple of k are dropped.
 */
export function boxDownscale(img: RgbImage, k: number): RgbImage {
  if (k <= 1) return img;
  const w = Math.floor(img.width / k);
  const h = Math.floor(img.height / k);
  const out = new Uint8Array(w * h * 3);
  const n = k * k;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let dy = 0; dy < k; dy++) {
          const row = ((y * k + dy) * img.width + x * k) * 3 + c;
          for (let dx = 0; dx < k; dx++) s += img.data[row + dx * 3];
        }
        out[(y * w + x) * 3 + c] = Math.round(s / n);
      }
  return { width: w, height: h, data: out };
}

/** Resize an RGB image (default INTER_AREA, as the reference's 256x256 crops). */
export function resizeImage(image: RgbImage, width: number, height: number, mode: ResizeMode = 'area'): RgbImage {
  if (image.width === width && image.height === height) return createImage(width, height, image.data.slice());
  const f = resizeFloat(image.data, image.width, image.height, 3, width, height, mode);
  return createImage(width, height, toUint8(f));
}

/** Square resize to `size` (256 for the networks' input, 512 for output size). */
export function resizeSquare(image: RgbImage, size: number, mode: ResizeMode = 'area'): RgbImage {
  return resizeImage(image, size, size, mode);
}

/**
 * The reference's resize_to_limit: shrink (INTER_LINEAR) so the longer side is
 * at most maxDim (0 = no limit), then crop bottom/right so both sides are
 * multiples of `division`.
 */
/** The size resizeToLimit gives an image of `width` x `height`, without resizing it. */
export function limitedSize(width: number, height: number, maxDim = 1920, division = 2): { width: number; height: number } {
  let [w, h] = [width, height];
  if (maxDim > 0 && Math.max(w, h) > maxDim) [w, h] = h > w ? [Math.trunc(w * (maxDim / h)), maxDim] : [maxDim, Math.trunc(h * (maxDim / w))];
  const d = Math.max(division, 1);
  const [nw, nh] = [w - (w % d), h - (h % d)];
  return nw === 0 || nh === 0 ? { width: w, height: h } : { width: nw, height: nh };
}

export function resizeToLimit(image: RgbImage, maxDim = 1920, division = 2): RgbImage {
  let img = image;
  const { width: w, height: h } = img;
  if (maxDim > 0 && Math.max(w, h) > maxDim) {
    const [nw, nh] = h > w ? [Math.trunc(w * (maxDim / h)), maxDim] : [maxDim, Math.trunc(h * (maxDim / w))];
    img = resizeImage(img, nw, nh, 'linear');
  }
  const d = Math.max(division, 1);
  const nh = img.height - (img.height % d);
  const nw = img.width - (img.width % d);
  if (nh === 0 || nw === 0 || (nh === img.height && nw === img.width)) return img;
  return cropRect(img, 0, 0, nw, nh);
}

// --------------------------------------------------------------- cropping ---

/** Crop a rectangle (must lie inside the image). */
export function cropRect(image: RgbImage, x: number, y: number, width: number, height: number): RgbImage {
  if (x < 0 || y < 0 || x + width > image.width || y + height > image.height || width <= 0 || height <= 0) {
    throw new Error(`crop ${width}x${height}+${x}+${y} outside image ${image.width}x${image.height}`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) {
    const s = ((y + r) * image.width + x) * 3;
    out.set(image.data.subarray(s, s + width * 3), r * width * 3);
  }
  return createImage(width, height, out);
}

/** The largest centred square (offset rounded down). */
export function centerSquareCrop(image: RgbImage): RgbImage {
  const s = Math.min(image.width, image.height);
  return cropRect(image, Math.floor((image.width - s) / 2), Math.floor((image.height - s) / 2), s, s);
}

// ---------------------------------------------------------------- tensors ---

/** RGB u8 → float32 tensor [1, H, W, 3] in 0..1 (u8 / 255). */
export function imageToTensor(image: RgbImage): tf.Tensor4D {
  const f = new Float32Array(image.data.length);
  for (let i = 0; i < f.length; i++) f[i] = image.data[i] / 255;
  return tf.tensor4d(f, [1, image.height, image.width, 3], 'float32');
}

/** Several same-sized images → [N, H, W, 3] in 0..1. */
export function imagesToTensor(images: RgbImage[]): tf.Tensor4D {
  if (images.length === 0) throw new Error('imagesToTensor: no images');
  const { width, height } = images[0];
  const n = width * height * 3;
  const f = new Float32Array(n * images.length);
  images.forEach((img, k) => {
    if (img.width !== width || img.height !== height) {
      throw new Error(`imagesToTensor: image ${k} is ${img.width}x${img.height}, expected ${width}x${height}`);
    }
    for (let i = 0; i < n; i++) f[k * n + i] = img.data[i] / 255;
  });
  return tf.tensor4d(f, [images.length, height, width, 3], 'float32');
}

/**
 * Float values in 0..1 (HxWx3 interleaved) → u8 as the reference's
 * parse_output: clip to 0..1, ×255, truncate.
 */
export function floatToImage(data: ArrayLike<number>, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  if (data.length !== out.length) throw new Error(`floatToImage: ${data.length} values for ${width}x${height}x3`);
  for (let i = 0; i < out.length; i++) {
    const v = data[i];
    out[i] = v >= 1 ? 255 : v > 0 ? Math.trunc(v * 255) : 0; // NaN → 0
  }
  return createImage(width, height, out);
}

/** Tensor [1, H, W, 3] or [H, W, 3] in 0..1 → RGB u8 (reads the data synchronously). */
export function tensorToImage(t: tf.Tensor): RgbImage {
  const shape = t.shape;
  const [h, w, c] = shape.length === 4 ? shape.slice(1) : shape;
  if ((shape.length === 4 && shape[0] !== 1) || (shape.length !== 3 && shape.length !== 4) || c !== 3) {
    throw new Error(`tensorToImage: expected [1,H,W,3] or [H,W,3], got [${shape.join(',')}]`);
  }
  return floatToImage(t.dataSync() as Float32Array, w, h);
}
