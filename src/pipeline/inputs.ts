/**
 * What the networks take: images as tensors or raw pixels, brought to the
 * 256² float input of F and M; driving frames with their landmark ratios;
 * one-line errors describing a wrong value. No guessing between kinds of
 * driving input happens here: that is `Driving`'s explicit constructors.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import type { MotionFrame } from '../formats/template.js';

export const INPUT_SIZE = 256;

/** Raw RGB(A) pixels. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  width: number;
  height: number;
}
export type ImageInput = tf.Tensor | RawImage;

/** A driving video frame (a face crop) with its landmark ratios, where known. */
export interface DrivingFrameInput {
  image: ImageInput;
  /** Eye-open ratios (left, right). */
  eyeRatio?: ArrayLike<number>;
  /** Lip-open ratio. */
  lipRatio?: number;
}

/** Landmark ratios of a source image (from face landmarks). */
export interface SourceRatios {
  eyeRatio?: ArrayLike<number>;
  lipRatio?: number;
}

/** One driving frame as the animation loop takes it: a face crop (with ratios) or its motion. */
export type FrameLike = ImageInput | DrivingFrameInput | MotionFrame;
export type AnyIterable<T> = Iterable<T> | AsyncIterable<T>;

export function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}
export function isRawImage(x: unknown): x is RawImage {
  const r = x as RawImage;
  return !!r && typeof r === 'object' && !isTensor(r) && ArrayBuffer.isView(r.data) && Number.isInteger(r.width) && Number.isInteger(r.height);
}
export function isMotionFrame(x: unknown): x is MotionFrame {
  const f = x as MotionFrame;
  return !!f && typeof f === 'object' && f.R instanceof Float32Array && f.exp instanceof Float32Array;
}
export function isFrameInput(x: unknown): x is DrivingFrameInput {
  return !!x && typeof x === 'object' && !isTensor(x) && 'image' in (x as object);
}
export function isIterable(x: unknown): x is AnyIterable<unknown> {
  return !!x && typeof x === 'object' && !isTensor(x) && (Symbol.iterator in (x as object) || Symbol.asyncIterator in (x as object));
}

/** A value named in an error: its kind and shape or keys. */
export function describeValue(x: unknown): string {
  if (isTensor(x)) return `a ${x.dtype} tensor of shape ${JSON.stringify(x.shape)}`;
  if (x === null) return 'null';
  if (x instanceof Promise) return 'a Promise (missing await?)';
  if (Array.isArray(x)) return `an array of ${x.length}`;
  return typeof x === 'object' ? `an object with keys ${Object.keys(x as object).slice(0, 6).join(', ') || '(none)'}` : `${typeof x} ${String(x).slice(0, 40)}`;
}

/**
 * An image input as a float32 tensor [1, 256, 256, 3] in 0..1 (u8 / 255 as
 * the reference, clipped). Errors are one line naming what was wrong.
 */
export function prepareImage(img: ImageInput, what = 'image'): tf.Tensor4D {
  if (isRawImage(img)) {
    const { data, width, height } = img;
    const ch = data.length / (width * height);
    if (ch !== 3 && ch !== 4) throw new InputError(`${what}: ${data.length} values for ${width}x${height} pixels; expected RGB or RGBA (3 or 4 values a pixel)`);
    return tf.tidy(() => {
      let x: tf.Tensor = data instanceof Float32Array ? tf.tensor(data, [height, width, ch]) : tf.tensor(Int32Array.from(data), [height, width, ch], 'int32');
      if (ch === 4) x = tf.slice(x, [0, 0, 0], [height, width, 3]);
      return prepareImage(x, what);
    });
  }
  if (!isTensor(img)) throw new InputError(`${what}: expected an RGB image (a tensor [H, W, 3] or {data, width, height}), got ${describeValue(img)}`);
  const shape = img.shape;
  const ok = (img.rank === 3 && shape[2] === 3) || (img.rank === 4 && shape[0] === 1 && shape[3] === 3);
  if (!ok) throw new InputError(`${what}: expected an RGB image tensor [H, W, 3] or [1, H, W, 3], got shape ${JSON.stringify(shape)}`);
  if (img.dtype !== 'float32' && img.dtype !== 'int32') throw new InputError(`${what}: expected an int32 (0..255) or float32 (0..1) tensor, got ${img.dtype}`);
  return tf.tidy(() => {
    let x = (img.rank === 3 ? img.expandDims(0) : img) as tf.Tensor4D;
    x = (img.dtype === 'int32' ? tf.div(tf.cast(x, 'float32'), 255) : x) as tf.Tensor4D;
    if (x.shape[1] !== INPUT_SIZE || x.shape[2] !== INPUT_SIZE) x = tf.image.resizeBilinear(x, [INPUT_SIZE, INPUT_SIZE], false, true);
    return tf.clipByValue(x, 0, 1) as tf.Tensor4D;
  });
}

/** uint8(clip(x, 0, 1) · 255), truncated, of an image [1, H, W, 3]. */
export async function imageToUint8(x: tf.Tensor): Promise<Uint8Array> {
  const v = tf.tidy(() => tf.cast(tf.floor(tf.mul(tf.clipByValue(x, 0, 1), 255)), 'int32'));
  try {
    return Uint8Array.from(await v.data());
  } finally {
    v.dispose();
  }
}

/** Ratios checked: two eye values, a finite lip value. */
export function checkRatios(r?: SourceRatios): { eyeRatio?: number[]; lipRatio?: number } {
  const eyeRatio = r?.eyeRatio ? Array.from(r.eyeRatio) : undefined;
  if (eyeRatio && eyeRatio.length !== 2) throw new InputError(`eyeRatio must have 2 values (left, right), got ${eyeRatio.length}`);
  const lipRatio = r?.lipRatio;
  if (lipRatio !== undefined && !Number.isFinite(lipRatio)) throw new InputError(`lipRatio must be a number, got ${String(lipRatio)}`);
  return { eyeRatio, lipRatio };
}

export async function* iterate<T>(it: AnyIterable<T>): AsyncGenerator<T> {
  for await (const x of it as AsyncIterable<T>) yield x;
}

/** The first k items of an iterable. */
export async function* firstN<T>(it: AnyIterable<T>, k: number): AsyncGenerator<T> {
  let j = 0;
  if (k <= 0) return;
  for await (const x of it as AsyncIterable<T>) {
    yield x;
    if (++j >= k) return;
  }
}

/** Throw the signal's reason as a one-line error when it is aborted. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** The error an aborted run ends with (an AbortError, as fetch's). */
export function abortError(signal: AbortSignal): Error {
  const r = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error(typeof r === 'string' ? r : 'the run was cancelled');
  e.name = 'AbortError';
  return e;
}

/** The options given, without the keys set to undefined (so that spreading them over defaults keeps the defaults). */
export function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
