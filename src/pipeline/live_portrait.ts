/**
 * LivePortrait: the five networks and the animation pipeline around them.
 *
 *   const lp = await loadLivePortrait('weights');          // Node (src/node); or LivePortrait.synthetic(1)
 *   const src = lp.prepareSource(image256, { eyeRatio, lipRatio });
 *   for await (const frame of lp.animate(src, drivingFrames, { stitching: true })) ...
 *   lp.disposeSource(src); lp.dispose();
 *
 * Every step is also callable on its own: prepareSource → extractMotion →
 * drivingKeypoints → warpDecode. Frames are processed one at a time: the
 * driving video is never held in memory (source-video mode holds only its
 * motion, a few hundred numbers a frame).
 *
 * Images are RGB, 256×256 (other sizes are resized bilinearly; face
 * cropping is done before, elsewhere): a tf.Tensor [256, 256, 3] or
 * [1, 256, 256, 3] (int32 0..255 or float32 0..1), or raw pixels
 * `{ data, width, height }` (Uint8Array 0..255 or Float32Array 0..1, RGB or RGBA).
 */
import * as tf from '@tensorflow/tfjs';
import type { StitchingRetargetingModule } from '../models/stitching_retargeting_module.js';
import type { AppearanceFeatureExtractorNet, MotionExtractorNet, SpadeGeneratorNet, WarpingModuleNet, WarpingOutput } from '../models/types.js';
import { type LivePortraitParts, type LivePortraitWeights, type WeightsLoader, createNetworksLazily, syntheticLoader } from '../models/registry.js';
import { InputError, LipArrayMissingError } from '../errors.js';
import { NUM_KP } from '../models/types.js';
import { type RetargetEdit, applyExpressionEdits } from '../motion/edits.js';
import type { HostTensor } from '../formats/host_tensor.js';
import { type KpInfo, getRotationMatrix, kpInfoRotation, refineKpInfo, transformKeypointWith } from '../motion/camera.js';
import { kalmanSmooth } from '../motion/kalman.js';
import { type DrivingContext, type SourceKeypoints, combinedEyeRatio, combinedLipRatio, disposeSourceKeypoints, drivingKeypoints, prepareDrivingKeypoints, sourceKeypointsFromMotion, sourceVideoEyeTarget, sourceVideoTargets } from '../motion/transfer.js';
import { type AnimationOptions, resolveOptions } from '../motion/options.js';
import { animalDrivingKeypoints, animalMotionMultiplier } from '../motion/animal.js';
import { type MotionFrame, type MotionTemplate, checkMotionFrame } from '../formats/template.js';
import { type FramePool, type PoolFrame, type WorkerWeights, mapOrdered } from './frame_pool.js';
import { readNumpyPickle } from '../formats/numpy_pickle.js';

export const INPUT_SIZE = 256;

/** Raw RGB(A) pixels. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  width: number;
  height: number;
}
export type ImageInput = tf.Tensor | RawImage;

/** A driving video frame with its landmark ratios, where known. */
export interface DrivingFrameInput {
  image: ImageInput;
  /** Eye-open ratios (left, right). */
  eyeRatio?: ArrayLike<number>;
  /** Lip-open ratio. */
  lipRatio?: number;
}

/** Landmark ratios of a source image (computed elsewhere from face landmarks). */
export interface SourceRatios {
  eyeRatio?: ArrayLike<number>;
  lipRatio?: number;
}

/** Everything the animation needs of one source image. Owns its tensors: see disposeSource. */
export interface SourceInfo extends SourceKeypoints {
  /** Appearance feature volume [1, 16, 64, 64, 32] (NDHWC). */
  f_s: tf.Tensor5D;
  /** Canonical keypoints x_c,s [1, 21, 3] (= x_s_info.kp). */
  x_c_s: tf.Tensor3D;
}

type FrameLike = ImageInput | DrivingFrameInput | MotionFrame;
type AnyIterable<T> = Iterable<T> | AsyncIterable<T>;
/**
 * The driving input: a single image (image-driven), frames of a video (an
 * iterable or async iterable of images, frames with ratios, or motion
 * frames), or a motion template.
 */
export type DrivingInput = ImageInput | DrivingFrameInput | MotionTemplate | AnyIterable<FrameLike>;

/** One frame of animateFaces: the animated crop of each face, and the driving input it came from. */
export interface AnimatedFaces {
  index: number;
  faces: AnimatedFrame[];
  input: ImageInput | DrivingFrameInput | MotionFrame;
}

export interface AnimatedFrame {
  index: number;
  /** RGB bytes, height × width × 3: uint8(clip(out, 0, 1) · 255), truncated as the reference. */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** The driving keypoints used [21 × 3]. */
  x_d: Float32Array;
}

export type { LivePortraitNets, LivePortraitParts } from '../models/registry.js';
export type { RetargetEdit };

/** How one frame is rendered. */
export interface RenderOptions {
  /**
   * Free W after it has run and G after it has run, where they are built
   * from weights on demand (one-off renders such as the CLI's retarget: the
   * peak memory holds one of them at a time; a later render builds them
   * again).
   */
  release?: boolean;
}

export interface LivePortraitOptions {
  /**
   * The reference's neutral-lip expression (lip_array.pkl, [1, 21, 3]) for
   * image-driven relative motion: 63 numbers, or the bytes of that .pkl.
   */
  lipArray?: ArrayLike<number> | Uint8Array;
}


function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}
function isRawImage(x: unknown): x is RawImage {
  const r = x as RawImage;
  return !!r && typeof r === 'object' && !isTensor(r) && ArrayBuffer.isView(r.data) && Number.isInteger(r.width) && Number.isInteger(r.height);
}
function isMotionFrame(x: unknown): x is MotionFrame {
  const f = x as MotionFrame;
  return !!f && typeof f === 'object' && f.R instanceof Float32Array && f.exp instanceof Float32Array;
}
function isTemplate(x: unknown): x is MotionTemplate {
  return !!x && typeof x === 'object' && Array.isArray((x as MotionTemplate).frames) && typeof (x as MotionTemplate).fps === 'number';
}
/** Options of LivePortrait.retargetVideo. */
export interface VideoRetargetOptions {
  /** The target lip-open ratio (the reference's slider, 0 to 0.8), or null to keep the lips silent. */
  lipRatio: number | null;
  /** Kalman smoothing of the lip deltas (default 3e-7; the reference's app uses 3e-6 here). */
  smoothObservationVariance?: number;
  smoothProcessVariance?: number;
}

/** Keypoints whose expression a silenced frame keeps: the eyes (the reference's [11, 13, 15, 16, 18]). */
const SILENT_KEEP_KP = [11, 13, 15, 16, 18];

/** The first k items of an iterable. */
async function* firstN<T>(it: AnyIterable<T>, k: number): AsyncGenerator<T> {
  let j = 0;
  for await (const x of it as AsyncIterable<T>) {
    if (j++ >= k) return;
    yield x;
  }
}

/** A network given, or built from its builder on first use; `release` frees a built one to be built again. */
class LazyNet<T extends { dispose(): void }> {
  private net?: T;
  private readonly build?: () => T;

  constructor(given: T | (() => T)) {
    if (typeof given === 'function') this.build = given;
    else this.net = given;
  }

  get(): T {
    return (this.net ??= this.build!());
  }

  /** Free the network where it can be built again (it was given as a builder). */
  release(): void {
    if (!this.build || !this.net) return;
    this.net.dispose();
    this.net = undefined;
  }

  dispose(): void {
    this.net?.dispose();
    this.net = undefined;
  }
}

function isFrameInput(x: unknown): x is DrivingFrameInput {
  return !!x && typeof x === 'object' && !isTensor(x) && 'image' in (x as object);
}
function isIterable(x: unknown): x is AnyIterable<unknown> {
  return !!x && typeof x === 'object' && !isTensor(x) && (Symbol.iterator in (x as object) || Symbol.asyncIterator in (x as object));
}

function describeValue(x: unknown): string {
  if (isTensor(x)) return `a ${x.dtype} tensor of shape ${JSON.stringify(x.shape)}`;
  if (x === null) return 'null';
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

function checkRatios(r?: SourceRatios): { eyeRatio?: number[]; lipRatio?: number } {
  const eyeRatio = r?.eyeRatio ? Array.from(r.eyeRatio) : undefined;
  if (eyeRatio && eyeRatio.length !== 2) throw new InputError(`eyeRatio must have 2 values (left, right), got ${eyeRatio.length}`);
  const lipRatio = r?.lipRatio;
  if (lipRatio !== undefined && !Number.isFinite(lipRatio)) throw new InputError(`lipRatio must be a number, got ${String(lipRatio)}`);
  return { eyeRatio, lipRatio };
}

async function* iterate<T>(it: AnyIterable<T>): AsyncGenerator<T> {
  for await (const x of it as AsyncIterable<T>) yield x;
}

export class LivePortrait {
  readonly F: AppearanceFeatureExtractorNet;
  readonly M: MotionExtractorNet;
  readonly S: StitchingRetargetingModule;
  private readonly w: LazyNet<WarpingModuleNet>;
  private readonly g: LazyNet<SpadeGeneratorNet>;
  /** The neutral-lip expression for image-driven relative motion, if known. */
  lipArray?: Float32Array;
  /** Where frame workers get W and G from (set by the static constructors). */
  workerWeights?: WorkerWeights;
  private pool?: FramePool;
  private disposed = false;

  /** The networks; W and G may be builders, run when this thread first renders (frame workers hold their own). */
  constructor(nets: LivePortraitParts, opts: LivePortraitOptions = {}) {
    ({ F: this.F, M: this.M, S: this.S } = nets);
    this.w = new LazyNet(nets.W);
    this.g = new LazyNet(nets.G);
    if (opts.lipArray !== undefined) this.lipArray = LivePortrait.readLipArray(opts.lipArray);
  }

  /** W, the warping module (built on first use). */
  get W(): WarpingModuleNet {
    return this.w.get();
  }

  /** G, the SPADE generator (built on first use). */
  get G(): SpadeGeneratorNet {
    return this.g.get();
  }

  /** The networks from state dicts (`source` names them in errors). */
  static fromStateDicts(w: LivePortraitWeights, source: string, opts: LivePortraitOptions = {}): LivePortrait {
    const lp = LivePortrait.fromLoader((m) => w[m], source, opts);
    lp.workerWeights = { stateDicts: { warping_module: w.warping_module, spade_generator: w.spade_generator } };
    return lp;
  }

  /**
   * The networks from a loader called once per module (`source` names them
   * in errors): F, M and S at once, W and G when this thread first renders,
   * never where frame workers render.
   */
  static fromLoader(load: WeightsLoader, source: string, opts: LivePortraitOptions = {}): LivePortrait {
    return new LivePortrait(createNetworksLazily(load, source), opts);
  }

  /**
   * Deterministic synthetic weights (the parity fixtures' rule) with `seed`:
   * no download, meaningless but reproducible output. G's spectral-norm
   * vectors come from spadeGeneratorSyntheticExtras(seed) unless given.
   */
  static synthetic(seed = 1, opts: LivePortraitOptions & { spadeExtras?: ReadonlyMap<string, HostTensor> } = {}): LivePortrait {
    const load = syntheticLoader(seed, { spadeExtras: opts.spadeExtras });
    const lp = LivePortrait.fromLoader(load, `synthetic seed ${seed}`, opts);
    lp.workerWeights = opts.spadeExtras ? { stateDicts: { warping_module: load('warping_module'), spade_generator: load('spade_generator') } } : { seed };
    return lp;
  }

  /**
   * Render W and G in `pool` from now on (Node: `startFrameWorkers(lp)`);
   * undefined renders here again. The pool given before is closed.
   */
  async usePool(pool: FramePool | undefined): Promise<void> {
    this.check();
    const old = this.pool;
    this.pool = pool;
    await old?.close();
  }

  /** Worker threads rendering frames (0 when frames render in this thread). */
  get workers(): number {
    return this.pool?.size ?? 0;
  }

  /** 63 numbers, or the bytes of the reference's lip_array.pkl. */
  static readLipArray(v: ArrayLike<number> | Uint8Array, name = 'lip_array.pkl'): Float32Array {
    const a = v instanceof Uint8Array ? readNumpyPickle(v, name).data : Float32Array.from(v);
    if (a.length !== 63) throw new InputError(`lipArray must hold 21 x 3 = 63 numbers, got ${a.length}`);
    return a;
  }

  private check(): void {
    if (this.disposed) throw new InputError('this LivePortrait was disposed: make a new one');
  }

  // ------------------------------------------------------------ steps

  /** F and M on a source image: f_s, x_s_info, R_s, x_c_s, x_s, and the given landmark ratios. */
  async prepareSource(image: ImageInput, ratios?: SourceRatios): Promise<SourceInfo> {
    this.check();
    const I_s = prepareImage(image, 'source image');
    try {
      const kp = await this.sourceKeypointsOf(I_s, ratios);
      try {
        return { ...kp, f_s: this.F.apply(I_s), x_c_s: kp.x_s_info.kp };
      } catch (e) {
        disposeSourceKeypoints(kp);
        throw e;
      }
    } finally {
      I_s.dispose();
    }
  }

  /** M only: the source's keypoint information without its appearance feature (enough for drivingKeypoints). */
  async prepareSourceKeypoints(image: ImageInput, ratios?: SourceRatios): Promise<SourceKeypoints> {
    this.check();
    const I_s = prepareImage(image, 'source image');
    try {
      return await this.sourceKeypointsOf(I_s, ratios);
    } finally {
      I_s.dispose();
    }
  }

  private async sourceKeypointsOf(I_s: tf.Tensor4D, ratios?: SourceRatios): Promise<SourceKeypoints> {
    const r = checkRatios(ratios);
    const x_s_info = await this.kpInfo(I_s);
    const [R_s, x_s] = tf.tidy(() => {
      const R = kpInfoRotation(x_s_info);
      return [R, transformKeypointWith(x_s_info.kp, R, x_s_info.exp, x_s_info.scale, x_s_info.t)];
    }) as [tf.Tensor3D, tf.Tensor3D];
    return { x_s_info, R_s, x_s, ...r };
  }

  disposeSource(src: SourceInfo): void {
    src.f_s.dispose();
    disposeSourceKeypoints(src);
  }

  /** M's output refined (degrees, [N, 21, 3]) for prepared images [N, 256, 256, 3]. */
  async kpInfo(images: tf.Tensor4D): Promise<KpInfo> {
    const m = this.M.apply(images);
    try {
      return await refineKpInfo(m);
    } finally {
      tf.dispose(Object.values(m));
    }
  }

  /**
   * Motion of driving images: one MotionFrame per image (R, exp, t, scale,
   * kp, x_s, and the ratios given). `images` is one image or a list.
   */
  async extractMotion(images: ImageInput | ImageInput[], ratios?: SourceRatios | SourceRatios[]): Promise<MotionFrame[]> {
    this.check();
    const list = Array.isArray(images) ? images : [images];
    const rs = Array.isArray(ratios) ? ratios : list.map(() => ratios);
    if (list.length === 0) throw new InputError('extractMotion: no images');
    const out: MotionFrame[] = [];
    for (const [i, img] of list.entries()) {
      const x = prepareImage(img, `driving frame ${i}`);
      let info: KpInfo;
      try {
        info = await this.kpInfo(x);
      } finally {
        x.dispose();
      }
      const parts = tf.tidy(() => {
        const R = kpInfoRotation(info);
        const x_s = transformKeypointWith(info.kp, R, info.exp, info.scale, info.t);
        return [R, info.exp.clone(), info.t.clone(), info.scale.clone(), info.kp.clone(), x_s];
      });
      tf.dispose(Object.values(info));
      let host: Float32Array[];
      try {
        host = (await Promise.all(parts.map((p) => p.data()))) as Float32Array[];
      } finally {
        tf.dispose(parts);
      }
      const [R, exp, t, scale, kp, x_s] = host;
      const { eyeRatio, lipRatio } = checkRatios(rs[i]);
      const f: MotionFrame = { R: R.slice(), exp: exp.slice(), t: t.slice(), scale: scale[0], kp: kp.slice(), x_s: x_s.slice() };
      if (eyeRatio) f.eyeRatio = Float32Array.from(eyeRatio);
      if (lipRatio !== undefined) f.lipRatio = lipRatio;
      out.push(f);
    }
    return out;
  }

  /** A motion template from driving frames (an iterable or async iterable), one frame at a time. */
  async makeTemplate(frames: AnyIterable<ImageInput | DrivingFrameInput>, fps = 25): Promise<MotionTemplate> {
    const out: MotionFrame[] = [];
    for await (const fr of iterate(frames)) out.push(await this.motionOf(fr, out.length));
    if (out.length === 0) throw new InputError('the driving sequence is empty');
    return { fps, frames: out };
  }

  private async motionOf(fr: FrameLike, i: number): Promise<MotionFrame> {
    if (isMotionFrame(fr)) {
      checkMotionFrame(fr, `driving motion frame ${i}`);
      return fr;
    }
    if (isFrameInput(fr)) return (await this.extractMotion(fr.image, { eyeRatio: fr.eyeRatio, lipRatio: fr.lipRatio }))[0];
    if (isTensor(fr) || isRawImage(fr)) return (await this.extractMotion(fr))[0];
    throw new InputError(`driving frame ${i}: expected an image, {image, eyeRatio?, lipRatio?} or a motion frame, got ${describeValue(fr)}`);
  }

  /**
   * The final driving keypoints x_d [1, 21, 3] of one frame (motion/transfer.ts;
   * with `animal: true`, the animal pipeline's motion/animal.ts, where
   * `ctx.motionMultiplier` may carry the multiplier of this source and first frame).
   */
  async drivingKeypoints(source: SourceKeypoints, frame: MotionFrame, first: MotionFrame, options: Partial<AnimationOptions> | AnimationOptions = {}, ctx: DrivingContext & { motionMultiplier?: number } = {}): Promise<tf.Tensor3D> {
    this.check();
    const opts = resolveOptions(options);
    if (opts.animal) return animalDrivingKeypoints(this.S, source, frame, first, opts, ctx.motionMultiplier ?? (await animalMotionMultiplier(source, first)));
    const c = { ...ctx };
    if (c.drivingIsVideo === false && !c.lipArray && this.lipArray) c.lipArray = this.lipArray;
    // What needs host values (the expression-friendly base) is read asynchronously first.
    await prepareDrivingKeypoints(source, first, opts, c);
    return drivingKeypoints(this.S, source, frame, first, opts, c);
  }

  /**
   * W then G: the image [1, 512, 512, 3] in 0..1 for feature f_s and
   * keypoints x_s → x_d. `release`: free W once it has run and G once it has
   * run (where they were built here from their weights, they are built
   * again when next needed): a one-off render then peaks at the larger of
   * the two instead of both, about 0.8 GB less on wasm.
   */
  warpDecode(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: RenderOptions = {}): tf.Tensor4D {
    this.check();
    if (x_s.shape.join() !== '1,21,3' || x_d.shape.join() !== '1,21,3')
      throw new InputError(`warpDecode: keypoints must be [1, 21, 3], got x_s ${JSON.stringify(x_s.shape)} and x_d ${JSON.stringify(x_d.shape)}`);
    if (f_s.rank !== 5 || f_s.shape[0] !== 1) throw new InputError(`warpDecode: f_s must be [1, 16, 64, 64, 32], got ${JSON.stringify(f_s.shape)}`);
    let w: WarpingOutput | undefined;
    try {
      w = this.W.apply(f_s, x_s, x_d);
      if (opts.release) this.w.release();
      return this.G.apply(w.out);
    } finally {
      if (w) tf.dispose([w.out, w.occlusionMap, w.deformation]);
      if (opts.release) for (const n of [this.w, this.g]) n.release();
    }
  }

  private async frameOut(index: number, f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: RenderOptions = {}): Promise<AnimatedFrame> {
    const img = this.warpDecode(f_s, x_s, x_d, opts);
    const [, h, w] = img.shape;
    try {
      return { index, rgb: await imageToUint8(img), width: w, height: h, x_d: Float32Array.from(await x_d.data()) };
    } finally {
      img.dispose();
    }
  }

  /**
   * One frame, in a worker when there are workers (x_s and x_d are read
   * now, so the caller may dispose them at once), else here. `perFrameFeature`
   * sends f_s with the job (source videos) instead of the pool's source.
   */
  private async renderFrame(index: number, f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, perFrameFeature = false): Promise<AnimatedFrame> {
    if (!this.pool) return this.frameOut(index, f_s, x_s, x_d);
    const pool = this.pool;
    const [xd, xs, fs] = await Promise.all([x_d.data(), x_s.data(), perFrameFeature ? f_s.data() : undefined]);
    const feature = fs ? { data: fs as Float32Array, shape: f_s.shape } : undefined;
    const out: PoolFrame = await pool.render(Float32Array.from(xs), Float32Array.from(xd), feature);
    const img = tf.tensor(out.data, out.shape);
    try {
      return { index, rgb: await imageToUint8(img), width: out.shape[2], height: out.shape[1], x_d: Float32Array.from(xd) };
    } finally {
      img.dispose();
    }
  }

  /**
   * W and G for one face and frame, as 8-bit RGB: in a worker when there are
   * workers (f_s goes with the job, so any number of sources can share the
   * pool), else here. x_s and x_d are read at once; the caller may dispose
   * them when this returns.
   */
  async renderImage(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D): Promise<{ rgb: Uint8Array; width: number; height: number }> {
    this.check();
    const { rgb, width, height } = await this.renderFrame(0, f_s, x_s, x_d, true);
    return { rgb, width, height };
  }

  /** How many frames to keep in flight: enough to keep every worker busy. */
  get inFlight(): number {
    return this.pool ? 2 * this.pool.size : 1;
  }

  // ------------------------------------------------------------ animation

  /**
   * Animate a source image (or its prepared SourceInfo) with a driving
   * video (iterable / async iterable of frames), a motion template, or a
   * single driving image. Yields one frame at a time. A SourceInfo passed in
   * stays the caller's; one made here is disposed at the end.
   */
  async *animate(source: ImageInput | SourceInfo, driving: DrivingInput, options: Partial<AnimationOptions> = {}): AsyncGenerator<AnimatedFrame> {
    this.check();
    const own = !isSourceInfo(source);
    const src = own ? await this.prepareSource(source as ImageInput) : (source as SourceInfo);
    try {
      for await (const f of this.animateFaces([src], driving, options)) yield f.faces[0];
    } finally {
      if (own) this.disposeSource(src);
    }
  }

  /**
   * The animation loop: several prepared faces of one picture (a group
   * photo) driven by the same driving input, frame by frame. Motion and
   * keypoints are computed here in frame order; W and G here or in the frame
   * pool, several frames in flight, yielded in order. Each item carries the
   * driving input it came from (`input`), e.g. for a side-by-side view.
   * `drivingIsVideo` overrides what the input suggests (a template cut to
   * one frame is still a video's motion).
   */
  async *animateFaces(sources: SourceInfo[], driving: DrivingInput, options: Partial<AnimationOptions> = {}, ctx: { drivingIsVideo?: boolean } = {}): AsyncGenerator<AnimatedFaces> {
    this.check();
    if (sources.length === 0) throw new InputError('animateFaces: no source faces');
    const opts = resolveOptions(options);
    const plan = this.drivingFrames(driving);
    const drivingIsVideo = ctx.drivingIsVideo ?? plan.drivingIsVideo;
    // One face: its f_s goes to the pool once. Several: with every job.
    const perFrameFeature = sources.length > 1;
    if (this.pool && !perFrameFeature) this.pool.setSource((await sources[0].f_s.data()) as Float32Array, sources[0].f_s.shape);
    let first: MotionFrame | undefined;
    // Animal mode: the motion multiplier of each face, from the first driving frame (the reference computes it at frame 0).
    let multipliers: number[] | undefined;
    let count = 0;
    const render = async (fr: FrameLike, i: number): Promise<AnimatedFaces> => {
      const m = await this.motionOf(fr, i);
      first ??= m;
      if (opts.animal) multipliers ??= await Promise.all(sources.map((src) => animalMotionMultiplier(src, first!)));
      const faces = await Promise.all(
        sources.map(async (src, k) => {
          const x_d = await this.drivingKeypoints(src, m, first!, opts, { drivingIsVideo, lipArray: this.lipArray, motionMultiplier: multipliers?.[k] });
          try {
            return await this.renderFrame(i, src.f_s, src.x_s, x_d, perFrameFeature);
          } finally {
            x_d.dispose();
          }
        }),
      );
      return { index: i, faces, input: fr };
    };
    for await (const frame of mapOrdered(plan.frames, render, this.inFlight)) {
      count++;
      yield frame;
    }
    if (count === 0) throw new InputError('the driving sequence is empty: no frames to animate');
  }

  private drivingFrames(driving: DrivingInput): { frames: AsyncGenerator<FrameLike>; drivingIsVideo: boolean } {
    if (isTemplate(driving)) {
      if (driving.frames.length === 0) throw new InputError('the motion template has no frames');
      return { frames: iterate(driving.frames), drivingIsVideo: driving.frames.length > 1 };
    }
    if (isTensor(driving) || isRawImage(driving) || isFrameInput(driving)) return { frames: iterate([driving]), drivingIsVideo: false };
    if (isIterable(driving)) return { frames: iterate(driving as AnyIterable<FrameLike>), drivingIsVideo: true };
    throw new InputError(`driving: expected an image, a sequence of frames or a motion template, got ${describeValue(driving)}`);
  }

  /**
   * Animate a source video: its frames (an array, or a function returning a
   * fresh iterable: it is read twice, once for motion, once for appearance)
   * each driven by the matching driving frame (or all by a single driving
   * image), the motion Kalman-smoothed as the reference does.
   */
  async *animateSourceVideo(
    sourceFrames: (ImageInput | DrivingFrameInput)[] | (() => AnyIterable<ImageInput | DrivingFrameInput>),
    driving: DrivingInput,
    options: Partial<AnimationOptions> = {},
  ): AsyncGenerator<AnimatedFrame> {
    this.check();
    const opts = resolveOptions(options);
    if (opts.animal) throw new InputError('animal mode animates a source image (as the reference); a source video is not supported');
    const open = typeof sourceFrames === 'function' ? sourceFrames : () => sourceFrames;
    // Pass 1: motion of the source and the driving frames (small, host memory).
    const srcTpl = await this.makeTemplate(open());
    const { frames, drivingIsVideo } = this.drivingFrames(driving);
    const drv: MotionFrame[] = [];
    for await (const fr of frames) {
      if (drivingIsVideo && drv.length >= srcTpl.frames.length) break;
      drv.push(await this.motionOf(fr, drv.length));
    }
    if (drv.length === 0) throw new InputError('the driving sequence is empty: no frames to animate');
    const n = drivingIsVideo ? Math.min(srcTpl.frames.length, drv.length) : srcTpl.frames.length;
    const targets = srcTpl.frames.slice(0, n).map((s, i) => sourceVideoTargets(s, drivingIsVideo ? drv[i] : drv[0], drv[0], opts, drivingIsVideo, this.lipArray));
    const smooth = (xs: Float32Array[]) =>
      drivingIsVideo ? kalmanSmooth(xs, { observationVariance: opts.smoothObservationVariance, processVariance: opts.smoothProcessVariance }) : xs;
    const expS = smooth(targets.map((t) => t.exp));
    const RS = smooth(targets.map((t) => t.R));
    const eyeTarget = opts.sourceVideoEyeRetargeting && srcTpl.frames[0].eyeRatio ? sourceVideoEyeTarget([...srcTpl.frames[0].eyeRatio], opts) : undefined;
    // Pass 2: appearance of each source frame, warped and decoded.
    const render = async (fr: ImageInput | DrivingFrameInput, i: number): Promise<AnimatedFrame> => {
      const img = isFrameInput(fr) ? fr.image : fr;
      const srcKp = sourceKeypointsFromMotion(srcTpl.frames[i]);
      const f_s = tf.tidy(() => this.F.apply(prepareImage(img, `source frame ${i}`)));
      const d = drivingIsVideo ? drv[i] : drv[0];
      let x_d: tf.Tensor3D | undefined;
      try {
        x_d = drivingKeypoints(this.S, srcKp, d, drv[0], opts, {
          drivingIsVideo,
          sourceIsVideo: true,
          smoothedExp: expS[i],
          smoothedR: RS[i],
          lipArray: this.lipArray,
          sourceVideoEyeTarget: eyeTarget,
        });
        return await this.renderFrame(i, f_s, srcKp.x_s, x_d, true);
      } finally {
        x_d?.dispose();
        f_s.dispose();
        disposeSourceKeypoints(srcKp);
      }
    };
    yield* mapOrdered(firstN(open(), n), render, this.inFlight);
  }

  /**
   * The reference's video retargeting (the third panel of its gradio app,
   * `execute_video_retargeting`): every source frame keeps its own motion.
   * With a `lipRatio`, the lips are retargeted to that opening: R_lip on the
   * frame's keypoints with [the frame's lip ratio, lipRatio], the deltas
   * Kalman-smoothed over the video (`smoothObservationVariance`), x_d = x_s + δ.
   * With `lipRatio: null` the lips are kept silent
   * (`prepare_video_lip_silence`): the frame's expression replaced by the
   * neutral-lip expression (lip_array) but for the eye keypoints,
   * x_d = s·(x_c R + δ) + t, no smoothing. Then stitching, W and G, with the
   * frame's own appearance feature. Frames need their lip ratio (from face
   * landmarks) unless silent.
   */
  async *retargetVideo(
    sourceFrames: (ImageInput | DrivingFrameInput)[] | (() => AnyIterable<ImageInput | DrivingFrameInput>),
    opts: VideoRetargetOptions,
  ): AsyncGenerator<AnimatedFrame> {
    this.check();
    const open = typeof sourceFrames === 'function' ? sourceFrames : () => sourceFrames;
    const tpl = await this.makeTemplate(open());
    const frames = tpl.frames;
    let targets: Float32Array[];
    if (opts.lipRatio === null) {
      const lip = this.lipArray;
      if (!lip) throw new LipArrayMissingError("keeping the lips silent needs the reference's neutral-lip expression (lip_array.pkl): load it with the weights");
      targets = frames.map((f, i) => {
        if (!f.kp) throw new InputError(`source frame ${i}: no canonical keypoints`);
        const delta = Float32Array.from(lip);
        for (const k of SILENT_KEEP_KP) for (let c = 0; c < 3; c++) delta[k * 3 + c] = f.exp[k * 3 + c];
        const x = new Float32Array(NUM_KP * 3);
        for (let j = 0; j < NUM_KP; j++)
          for (let c = 0; c < 3; c++) {
            let v = delta[j * 3 + c];
            for (let r = 0; r < 3; r++) v += f.kp[j * 3 + r] * f.R[r * 3 + c];
            x[j * 3 + c] = f.scale * v + f.t[c];
          }
        return x;
      });
    } else {
      const deltas: Float32Array[] = [];
      for (const [i, f] of frames.entries()) {
        if (f.lipRatio === undefined) throw new InputError(`source frame ${i}: lip retargeting needs the frame's lip-open ratio (from its face landmarks)`);
        const d = tf.tidy(() => this.S.retargetLip(tf.tensor3d(Float32Array.from(f.x_s!), [1, NUM_KP, 3]), combinedLipRatio(f.lipRatio, opts.lipRatio as number)));
        try {
          deltas.push(Float32Array.from(await d.data()));
        } finally {
          d.dispose();
        }
      }
      const smooth = kalmanSmooth(deltas, { observationVariance: opts.smoothObservationVariance, processVariance: opts.smoothProcessVariance });
      targets = frames.map((f, i) => Float32Array.from(f.x_s!, (v, k) => v + smooth[i][k]));
    }
    const render = async (fr: ImageInput | DrivingFrameInput, i: number): Promise<AnimatedFrame> => {
      const img = isFrameInput(fr) ? fr.image : fr;
      const f_s = tf.tidy(() => this.F.apply(prepareImage(img, `source frame ${i}`)));
      const x_s = tf.tensor3d(Float32Array.from(frames[i].x_s!), [1, NUM_KP, 3]);
      let x_d: tf.Tensor3D | undefined;
      try {
        x_d = tf.tidy(() => this.S.stitching(x_s, tf.tensor3d(targets[i], [1, NUM_KP, 3])));
        return await this.renderFrame(i, f_s, x_s, x_d, true);
      } finally {
        x_d?.dispose();
        x_s.dispose();
        f_s.dispose();
      }
    };
    yield* mapOrdered(firstN(open(), frames.length), render, this.inFlight);
  }

  // ------------------------------------------------------------ single-image editing

  /**
   * The driving keypoints of a single-image edit, as the reference's gradio
   * retargeting: pose added to the source's, expression sliders, eye/lip
   * open ratios through R_eyes / R_lip, then stitching. As there, t keeps its
   * z component here: x_d = movZ · s · (x_c R_d + δ') + t.
   */
  async retargetKeypoints(source: SourceInfo, edit: RetargetEdit = {}): Promise<tf.Tensor3D> {
    this.check();
    const expHost = applyExpressionEdits((await source.x_s_info.exp.data()) as Float32Array, edit);
    return tf.tidy(() => {
      const s = source.x_s_info;
      const add = (deg: tf.Tensor2D, v?: number) => (v ? tf.add(deg, v) : deg);
      const R_d = getRotationMatrix(add(s.pitch, edit.pitch), add(s.yaw, edit.yaw), add(s.roll, edit.roll));
      const R_new = tf.matMul(tf.matMul(R_d, source.R_s, false, true), source.R_s);
      const delta = tf.tensor3d(expHost, [1, NUM_KP, 3]);
      const movZ = edit.movZ ?? 1;
      let x_d = tf.add(tf.mul(tf.mul(s.scale.reshape([1, 1, 1]), movZ), tf.add(tf.matMul(s.kp, R_new), delta)), s.t.reshape([1, 1, 3])) as tf.Tensor3D;
      if (edit.eyeRatio !== undefined) x_d = tf.add(x_d, this.S.retargetEye(source.x_s, combinedEyeRatio(source.eyeRatio, edit.eyeRatio))) as tf.Tensor3D;
      if (edit.lipRatio !== undefined) x_d = tf.add(x_d, this.S.retargetLip(source.x_s, combinedLipRatio(source.lipRatio, edit.lipRatio))) as tf.Tensor3D;
      if (edit.stitching ?? true) x_d = this.S.stitching(source.x_s, x_d);
      return x_d;
    });
  }

  /** A single-image edit rendered: the image 512×512. */
  async retarget(source: SourceInfo, edit: RetargetEdit = {}, opts: RenderOptions = {}): Promise<AnimatedFrame> {
    const x_d = await this.retargetKeypoints(source, edit);
    try {
      return await this.frameOut(0, source.f_s, source.x_s, x_d, opts);
    } finally {
      x_d.dispose();
    }
  }

  /**
   * Free the networks' tensors and end the frame pool, if any. The returned
   * promise settles when the pool's workers have ended (await it where the
   * process must not exit before).
   */
  dispose(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    this.disposed = true;
    for (const n of [this.F, this.M, this.w, this.g, this.S]) n.dispose();
    const pool = this.pool;
    this.pool = undefined;
    return pool ? pool.close() : Promise.resolve();
  }
}

function isSourceInfo(x: unknown): x is SourceInfo {
  const s = x as SourceInfo;
  return !!s && typeof s === 'object' && !isTensor(s) && isTensor(s.f_s) && isTensor(s.x_s);
}
