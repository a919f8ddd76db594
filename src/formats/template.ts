/**
 * Motion templates: the driving motion of a video, per frame, without its
 * pixels (the reference's `.pkl` templates: fast to reuse, and they protect
 * the driving person's privacy).
 *
 * ## Our format: `.lpmotion.safetensors` (any name; it is safetensors)
 *
 * A safetensors file whose tensors are float32, stacked over the T frames:
 *
 * | tensor    | shape      | meaning                                                        |
 * | --------- | ---------- | -------------------------------------------------------------- |
 * | `R`       | [T, 3, 3]  | head rotation, the reference's (transposed) matrix: x · R      |
 * | `exp`     | [T, 21, 3] | expression deformation δ                                       |
 * | `t`       | [T, 3]     | translation (tz is never used)                                 |
 * | `scale`   | [T, 1]     | scale s                                                        |
 * | `kp`      | [T, 21, 3] | canonical keypoints x_c (optional)                              |
 * | `x_s`     | [T, 21, 3] | transformed keypoints s·(x_c R + δ) + t (optional)              |
 * | `c_eyes`  | [T, 2]     | eye-open ratios (left, right) from landmarks (optional)         |
 * | `c_lip`   | [T, 1]     | lip-open ratio from landmarks (optional)                        |
 *
 * and `__metadata__` (strings): `format` = `liveportrait-motion-template`,
 * `version` = `1`, `n_frames` (T), `fps` (output frame rate). A file
 * holds all optional tensors for all frames or none.
 *
 * ## The reference's `.pkl`
 *
 * A pickled dict: `n_frames`, `output_fps`, `motion` (a list of dicts of
 * numpy arrays: `scale` [1,1], `R` (older: `R_d`) [1,3,3], `exp` [1,21,3],
 * `t` [1,3], and in newer files `kp` [1,21,3], `x_s` [1,21,3]), and in newer
 * files `c_eyes_lst` (older: `c_d_eyes_lst`) of [1,2] and `c_lip_lst`
 * (`c_d_lip_lst`) of [1,1]. `readReferenceTemplate` reads it with
 * the restricted unpickler (pickle.ts) and a small numpy-array reconstruction.
 */
import { InputError } from '../errors.js';
import { maxFrames } from '../limits.js';
import { NdArray, unpickle } from './numpy_pickle.js';
import { parseSafetensors } from './safetensors.js';
import type { HostTensor } from './host_tensor.js';
import { toFloat32 } from './host_tensor.js';

/** One frame of driving motion (host arrays, row-major). */
export interface MotionFrame {
  /** Rotation [3, 3], the reference's transposed matrix (keypoints rotate as x · R). */
  R: Float32Array;
  /** Expression deformation [21, 3]. */
  exp: Float32Array;
  /** Translation [3]. */
  t: Float32Array;
  scale: number;
  /** Canonical keypoints [21, 3]. */
  kp?: Float32Array;
  /** Transformed keypoints [21, 3]. */
  x_s?: Float32Array;
  /** Eye-open ratios (left, right). */
  eyeRatio?: Float32Array;
  /** Lip-open ratio. */
  lipRatio?: number;
}

export interface MotionTemplate {
  fps: number;
  frames: MotionFrame[];
}

export const TEMPLATE_FORMAT = 'liveportrait-motion-template';
export const TEMPLATE_VERSION = '1';

/** A motion template that cannot be read or is malformed. */
export class TemplateError extends InputError {}

const SIZES = { R: 9, exp: 63, t: 3, scale: 1, kp: 63, x_s: 63 } as const;

/** Check a frame's arrays have the right lengths (one clear line otherwise). */
export function checkMotionFrame(f: MotionFrame, where = 'motion frame'): void {
  for (const k of ['R', 'exp', 't'] as const)
    if (!f[k] || f[k].length !== SIZES[k]) throw new TemplateError(`${where}: '${k}' must have ${SIZES[k]} values, got ${f[k]?.length ?? 'none'}`);
  if (typeof f.scale !== 'number' || !Number.isFinite(f.scale)) throw new TemplateError(`${where}: 'scale' must be a finite number`);
  for (const k of ['kp', 'x_s'] as const)
    if (f[k] && f[k]!.length !== SIZES[k]) throw new TemplateError(`${where}: '${k}' must have ${SIZES[k]} values, got ${f[k]!.length}`);
  if (f.eyeRatio && f.eyeRatio.length !== 2) throw new TemplateError(`${where}: 'eyeRatio' must have 2 values (left, right), got ${f.eyeRatio.length}`);
}

function stack(frames: MotionFrame[], get: (f: MotionFrame) => ArrayLike<number>, per: number, shape: number[]): HostTensor {
  const data = new Float32Array(frames.length * per);
  frames.forEach((f, i) => data.set(get(f), i * per));
  return { dtype: 'F32', shape: [frames.length, ...shape], data };
}

/** Serialise a template to our safetensors format (see the top of this file). */
export function templateToTensors(tpl: MotionTemplate): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const fr = tpl.frames;
  if (fr.length === 0) throw new TemplateError('cannot save an empty motion template (no frames)');
  fr.forEach((f, i) => checkMotionFrame(f, `frame ${i}`));
  const tensors = new Map<string, HostTensor>();
  tensors.set('R', stack(fr, (f) => f.R, 9, [3, 3]));
  tensors.set('exp', stack(fr, (f) => f.exp, 63, [21, 3]));
  tensors.set('t', stack(fr, (f) => f.t, 3, [3]));
  tensors.set('scale', stack(fr, (f) => [f.scale], 1, [1]));
  const all = (k: keyof MotionFrame) => fr.every((f) => f[k] !== undefined);
  if (all('kp')) tensors.set('kp', stack(fr, (f) => f.kp!, 63, [21, 3]));
  if (all('x_s')) tensors.set('x_s', stack(fr, (f) => f.x_s!, 63, [21, 3]));
  if (all('eyeRatio')) tensors.set('c_eyes', stack(fr, (f) => f.eyeRatio!, 2, [2]));
  if (all('lipRatio')) tensors.set('c_lip', stack(fr, (f) => [f.lipRatio!], 1, [1]));
  const metadata = { format: TEMPLATE_FORMAT, version: TEMPLATE_VERSION, n_frames: String(fr.length), fps: String(tpl.fps) };
  return { tensors, metadata };
}

/** Parse our format from bytes; `name` is for messages. */
export function parseTemplate(bytes: Uint8Array, name = 'motion template'): MotionTemplate {
  let file;
  try {
    file = parseSafetensors(bytes, name);
  } catch (e) {
    throw new TemplateError(`${name}: not a motion template (${(e as Error).message.replace(`${name}: `, '')})`, { cause: e });
  }
  const md = file.metadata;
  if (md.format !== TEMPLATE_FORMAT) throw new TemplateError(`${name}: a safetensors file but not a motion template (metadata format '${md.format ?? 'none'}', expected '${TEMPLATE_FORMAT}')`);
  if (md.version !== TEMPLATE_VERSION) throw new TemplateError(`${name}: motion template version ${md.version} is not supported (this library reads version ${TEMPLATE_VERSION})`);
  const T = Number(md.n_frames);
  if (!Number.isSafeInteger(T) || T < 1) throw new TemplateError(`${name}: motion template metadata n_frames is '${String(md.n_frames).slice(0, 40)}', not a frame count`);
  if (T > maxFrames()) throw new TemplateError(`${name}: the motion template declares ${T} frames, over the ${maxFrames()}-frame cap (LIVEPORTRAIT_MAX_FRAMES raises it)`);
  const get = (k: string, per: number, required: boolean): Float32Array | undefined => {
    const t = file.tensors.get(k);
    if (!t) {
      if (required) throw new TemplateError(`${name}: motion template lacks tensor '${k}'`);
      return undefined;
    }
    if (t.shape[0] !== T || t.data.length !== T * per) throw new TemplateError(`${name}: tensor '${k}' has shape ${JSON.stringify(t.shape)}, expected ${T} frames of ${per} values`);
    return toFloat32(t);
  };
  const R = get('R', 9, true)!;
  const exp = get('exp', 63, true)!;
  const t = get('t', 3, true)!;
  const scale = get('scale', 1, true)!;
  const kp = get('kp', 63, false);
  const xs = get('x_s', 63, false);
  const eyes = get('c_eyes', 2, false);
  const lip = get('c_lip', 1, false);
  const frames: MotionFrame[] = [];
  for (let i = 0; i < T; i++) {
    const f: MotionFrame = { R: R.slice(i * 9, i * 9 + 9), exp: exp.slice(i * 63, i * 63 + 63), t: t.slice(i * 3, i * 3 + 3), scale: scale[i] };
    if (kp) f.kp = kp.slice(i * 63, i * 63 + 63);
    if (xs) f.x_s = xs.slice(i * 63, i * 63 + 63);
    if (eyes) f.eyeRatio = eyes.slice(i * 2, i * 2 + 2);
    if (lip) f.lipRatio = lip[i];
    frames.push(f);
  }
  const fps = Number(md.fps);
  return { fps: Number.isFinite(fps) && fps > 0 && fps <= 1000 ? fps : 25, frames };
}

function field(obj: unknown, key: string): unknown {
  if (obj instanceof Map) return obj.get(key);
  if (obj && typeof obj === 'object') return (obj as Record<string, unknown>)[key];
  return undefined;
}

function arr(v: unknown, n: number, what: string): Float32Array {
  if (v instanceof NdArray) {
    if (v.data.length !== n) throw new TemplateError(`${what} has shape ${JSON.stringify(v.shape)}, expected ${n} values`);
    return v.toFloat32();
  }
  if (typeof v === 'number' && n === 1) return Float32Array.of(v);
  throw new TemplateError(`${what} is missing or not a numpy array`);
}

/** The reference's template dict (already unpickled) → MotionTemplate. */
export function referenceTemplateFromObject(obj: unknown, name = 'template'): MotionTemplate {
  const motion = field(obj, 'motion');
  if (!Array.isArray(motion)) throw new TemplateError(`${name}: not a LivePortrait motion template (no 'motion' list)`);
  if (motion.length === 0) throw new TemplateError(`${name}: the motion template has no frames`);
  if (motion.length > maxFrames()) throw new TemplateError(`${name}: the motion template declares ${motion.length} frames, over the ${maxFrames()}-frame cap (LIVEPORTRAIT_MAX_FRAMES raises it)`);
  const eyes = field(obj, 'c_eyes_lst') ?? field(obj, 'c_d_eyes_lst');
  const lips = field(obj, 'c_lip_lst') ?? field(obj, 'c_d_lip_lst');
  const frames = motion.map((m, i): MotionFrame => {
    const w = `${name}: motion[${i}]`;
    const f: MotionFrame = {
      R: arr(field(m, 'R') ?? field(m, 'R_d'), 9, `${w}.R`),
      exp: arr(field(m, 'exp'), 63, `${w}.exp`),
      t: arr(field(m, 't'), 3, `${w}.t`),
      scale: arr(field(m, 'scale'), 1, `${w}.scale`)[0],
    };
    const kp = field(m, 'kp');
    if (kp !== undefined) f.kp = arr(kp, 63, `${w}.kp`);
    const xs = field(m, 'x_s');
    if (xs !== undefined) f.x_s = arr(xs, 63, `${w}.x_s`);
    if (Array.isArray(eyes) && eyes[i] !== undefined) f.eyeRatio = arr(eyes[i], 2, `${name}: c_eyes_lst[${i}]`);
    if (Array.isArray(lips) && lips[i] !== undefined) f.lipRatio = arr(lips[i], 1, `${name}: c_lip_lst[${i}]`)[0];
    return f;
  });
  const fps = Number(field(obj, 'output_fps') ?? 25);
  return { fps: Number.isFinite(fps) && fps > 0 && fps <= 1000 ? fps : 25, frames };
}

/** Read the reference's `.pkl` motion template. */
export function readReferenceTemplate(bytes: Uint8Array, name = 'template.pkl'): MotionTemplate {
  return referenceTemplateFromObject(unpickle(bytes, name), name);
}

export function parseAnyTemplate(bytes: Uint8Array, name = 'motion template'): MotionTemplate {
  if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) return readReferenceTemplate(bytes, name);
  if (bytes.length >= 9 && bytes[8] === 0x7b /* '{' of the JSON header */) return parseTemplate(bytes, name);
  throw new TemplateError(`${name}: not a motion template: expected this library's safetensors template or the reference's .pkl`);
}

