/**
 * LivePortrait: the five networks, their steps, and the animation loops.
 * The portrait level (what the CLI and the page run) is in portrait.ts and
 * animate_portrait.ts; the source-video loops in video_loops.ts. Each step
 * is callable alone: prepareSource (F and M on a 256² face crop) →
 * extractMotion (M on driving crops) → drivingKeypoints (the keypoint math of
 * every option) → warpDecode (W and G).
 */
import { readTogether } from '../layers/read.js';
import * as tf from '@tensorflow/tfjs';
import type { StitchingRetargetingModule } from '../models/stitching_retargeting_module.js';
import type { AppearanceFeatureExtractorNet, MotionExtractorNet, SpadeGeneratorNet, WarpingModuleNet, WarpingOutput } from '../models/types.js';
import type { TapFn } from '../layers/taps.js';
import { type LivePortraitParts, type LivePortraitWeights, type WeightsLoader, createNetworksLazily, syntheticLoader } from '../models/registry.js';
import { InputError } from '../errors.js';
import type { RetargetEdit } from '../motion/edits.js';
import type { HostTensor } from '../formats/host_tensor.js';
import { type KpInfo, kpInfoRotation, refineKpInfo, transformKeypointWith } from '../motion/camera.js';
import { type DrivingContext, type SourceKeypoints, disposeSourceKeypoints, drivingKeypoints, prepareDrivingKeypoints } from '../motion/transfer.js';
import { retargetKeypoints } from '../motion/retarget.js';
import { type AnimationOptions, resolveOptions } from '../motion/options.js';
import { type AnimatedFaces, type LivePortraitOptions, type LoopOptions, type SourceInfo, type VideoRetargetOptions } from './types.js';
export type { AnimatedFaces, LivePortraitOptions, LoopOptions, SourceInfo, VideoRetargetOptions } from './types.js';
export { splitLoopOptions, ReferenceControl } from './types.js';
export type { FaceDrivings } from './animate_faces.js';
import { animalDrivingKeypoints, animalMotionMultiplier } from '../motion/animal.js';
import { type MotionFrame, type MotionTemplate, checkMotionFrame } from '../formats/template.js';
import type { FaceDetector } from '../face/detector.js';
import { type FramePool, type WorkerWeights } from './frame_pool.js';
import { readNumpyPickle } from '../formats/numpy_pickle.js';
import { type NamedBytes, weightsFromFiles } from '../models/from_files.js';
import { type AnyIterable, type DrivingFrameInput, type FrameLike, type ImageInput, type SourceRatios, checkRatios, describeValue, isFrameInput, isMotionFrame, isRawImage, isTensor, iterate, prepareImage } from './inputs.js';
import { type AnimatedFrame, LocalRenderer, PoolRenderer, type RenderOptions, type Renderer, decodedFrame } from './renderer.js';
import { Driving, type DrivingPlan, type PlanContext, type ProgressInfo } from './driving.js';
import { defaultFaceDetector } from './hooks.js';
import * as P from './portrait.js';
import * as A from './animate_portrait.js';
import * as V from './video_loops.js';
import { type FaceDrivings, animateFaces as animateFacesLoop } from './animate_faces.js';
import type { SourceFrames } from './video_loops.js';

export type { AnimatedFrame, RenderOptions } from './renderer.js';
export type { RawImage, ImageInput, DrivingFrameInput, SourceRatios } from './inputs.js';
export { prepareImage, imageToUint8, INPUT_SIZE } from './inputs.js';
export type { LivePortraitNets, LivePortraitParts } from '../models/registry.js';
export type { RetargetEdit };

/**
 * The five networks and the animation pipeline around them.
 *
 * @example
 * const lp = LivePortrait.synthetic(1);                       // or await loadLivePortrait('weights') in Node
 * const src = await lp.prepareSource(faceCrop256);            // F and M
 * for await (const f of lp.animate(src, Driving.template(tpl))) use(f.rgb);
 * lp.disposeSource(src);
 * await lp.dispose();
 */
export class LivePortrait {
  readonly F: AppearanceFeatureExtractorNet;
  readonly M: MotionExtractorNet;
  readonly S: StitchingRetargetingModule;
  private readonly local: LocalRenderer;
  /** The neutral-lip expression for image-driven relative motion, if known. */
  lipArray?: Float32Array;
  /** Where frame workers get W and G from (set by the static constructors). */
  workerWeights?: WorkerWeights;
  /** Where the weights came from, in words. */
  source = '';
  private pool?: PoolRenderer;
  private readonly detectorLoader?: () => Promise<FaceDetector>;
  private disposed = false;

  /** The networks; W and G may be builders, run when this thread first renders (frame workers hold their own). */
  constructor(nets: LivePortraitParts, opts: LivePortraitOptions = {}) {
    ({ F: this.F, M: this.M, S: this.S } = nets);
    this.local = new LocalRenderer(nets.W, nets.G);
    if (opts.lipArray !== undefined) this.lipArray = LivePortrait.readLipArray(opts.lipArray);
    this.detectorLoader = opts.faceDetector;
  }

  /** W, the warping module (built on first use). */
  get W(): WarpingModuleNet {
    return this.local.w.get();
  }

  /** G, the SPADE generator (built on first use). */
  get G(): SpadeGeneratorNet {
    return this.local.g.get();
  }

  /** The networks from state dicts (`source` names them in errors). */
  static fromStateDicts(w: LivePortraitWeights, source: string, opts: LivePortraitOptions = {}): LivePortrait {
    const lp = LivePortrait.fromLoader((m) => w[m], source, opts);
    lp.workerWeights = { stateDicts: { warping_module: w.warping_module, spade_generator: w.spade_generator } };
    return lp;
  }

  /**
   * The networks from the five weights files in memory (a page's files or
   * download): .pth or .safetensors, each named after its module, plus
   * lip_array.pkl if given.
   */
  static fromFiles(files: NamedBytes[], source = 'files', opts: LivePortraitOptions = {}): LivePortrait {
    const { weights, lipArray } = weightsFromFiles(files);
    const lp = LivePortrait.fromStateDicts(weights, source, { lipArray, ...opts });
    lp.source = source;
    return lp;
  }

  /**
   * The networks from a loader called once per module (`source` names them
   * in errors): F, M and S at once, W and G when this thread first renders,
   * never where frame workers render.
   */
  static fromLoader(load: WeightsLoader, source: string, opts: LivePortraitOptions = {}): LivePortrait {
    const lp = new LivePortrait(createNetworksLazily(load, source), opts);
    lp.source = source;
    return lp;
  }

  /**
   * Deterministic synthetic weights (the parity fixtures' rule) with `seed`:
   * no download, meaningless but reproducible output. G's spectral-norm
   * vectors are made up here (spadeGeneratorSyntheticExtras(seed)) unless
   * given: the reference's come from PyTorch's power iteration and are only
   * in a fixture directory (loadLivePortrait(fixtureDir) in Node uses them).
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
    this.pool = pool ? new PoolRenderer(pool) : undefined;
    await old?.pool.close();
  }

  /** Worker threads rendering frames (0 when frames render in this thread). */
  get workers(): number {
    return this.pool?.pool.size ?? 0;
  }

  /** Where frames render: the frame pool, else this thread (through warpDecode). */
  get renderer(): Renderer {
    if (this.pool) return this.pool;
    return { inFlight: 1, setSource: async () => undefined, render: async (i, f_s, x_s, x_d, o) => decodedFrame(i, this.warpDecode(f_s, x_s, x_d, o), x_d) };
  }

  /** The face detector (loaded once, on first use). */
  faceDetector(): Promise<FaceDetector> {
    return (this.detectorLoader ?? defaultFaceDetector)();
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

  // ------------------------------------------------------------ the portrait level

  /** Find, crop and prepare the source face(s) of a photo; see SourceOptions. */
  preparePortrait(image: P.PortraitImage, opts: P.SourceOptions = {}): Promise<P.Portrait> {
    this.check();
    return P.preparePortrait(this, image, opts);
  }

  /** A source video: its face tracked through the frames (landmarks kept, frames read again when animated). */
  preparePortraitVideo(video: P.SourceVideo, opts: P.SourceOptions & { maxFrames?: number } = {}): Promise<P.PortraitVideo> {
    this.check();
    return P.preparePortraitVideo(this, video, opts);
  }

  /** Animate a prepared portrait (photo or video): frames pasted back at the source's working size; a group photo may take one driving per face, left to right. */
  animatePortrait(portrait: P.Portrait | P.PortraitVideo, driving: Driving | DrivingPlan | FaceDrivings, opts: A.PortraitAnimationOptions = {}): AsyncGenerator<A.PortraitFrame> {
    this.check();
    return A.animatePortrait(this, portrait, driving, opts);
  }

  /** Edit a prepared photo with the reference's sliders: the edited face pasted back. */
  editPortrait(portrait: P.Portrait, edit: RetargetEdit = {}, opts: RenderOptions & { face?: number } = {}): Promise<A.EditedPortrait> {
    this.check();
    return A.editPortrait(this, portrait, edit, opts);
  }

  /** The reference's video retargeting on a prepared source video: lips to one opening, or silent; pasted back. */
  retargetPortraitVideo(portrait: P.PortraitVideo, opts: VideoRetargetOptions & { maxFrames?: number; pasteBack?: boolean; onProgress?: (p: ProgressInfo) => void }): AsyncGenerator<A.PortraitFrame> {
    this.check();
    return A.retargetPortraitVideo(this, portrait, opts);
  }

  // ------------------------------------------------------------ steps

  /** F and M on a source face crop: f_s, x_s_info, R_s, x_c_s, x_s, and the given landmark ratios. */
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
   * Motion of driving face crops: one MotionFrame per image (R, exp, t,
   * scale, kp, x_s, and the ratios given). `images` is one image or a list.
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
        host = await readTogether(parts);
      } finally {
        tf.dispose(parts);
      }
      const [R, exp, t, scale, kp, x_s] = host;
      const { eyeRatio, lipRatio } = checkRatios(rs[i]);
      const f: MotionFrame = { R, exp, t, scale: scale[0], kp, x_s };
      if (eyeRatio) f.eyeRatio = Float32Array.from(eyeRatio);
      if (lipRatio !== undefined) f.lipRatio = lipRatio;
      out.push(f);
    }
    return out;
  }

  /** A motion template from driving face crops (an iterable or async iterable), one frame at a time. */
  async makeTemplate(frames: AnyIterable<ImageInput | DrivingFrameInput>, fps = 25): Promise<MotionTemplate> {
    const out: MotionFrame[] = [];
    for await (const fr of iterate(frames)) out.push(await this.motionOf(fr, out.length));
    if (out.length === 0) throw new InputError('the driving sequence is empty');
    return { fps, frames: out };
  }

  /**
   * The final driving keypoints x_d [1, 21, 3] of one frame (motion/transfer.ts;
   * with `animal: true`, the animal pipeline's motion/animal.ts, where
   * `ctx.motionMultiplier` may carry the multiplier of this source and first frame).
   */
  async drivingKeypoints(source: SourceKeypoints, frame: MotionFrame, first: MotionFrame, options: Partial<AnimationOptions> | AnimationOptions = {}, ctx: DrivingContext & { motionMultiplier?: number; lipArray?: ArrayLike<number> } = {}): Promise<tf.Tensor3D> {
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
   * keypoints x_s → x_d, in this thread. `release`: free W once it has run
   * and G once it has run (built again when next needed): a one-off render
   * peaks at the larger of the two. `tap`: W's and G's activations by path.
   */
  warpDecode(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: RenderOptions = {}): tf.Tensor4D {
    this.check();
    return this.local.warpDecode(f_s, x_s, x_d, opts);
  }

  /** W alone (this thread): warped feature, occlusion map, deformation; `tap` sees its activations (`dense_motion_network.hourglass`, ...). Dispose the outputs. */
  warp(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D, opts: { tap?: TapFn } = {}): WarpingOutput {
    this.check();
    return this.local.warp(f_s, x_s, x_d, opts.tap);
  }

  /**
   * W and G for one face and frame, as 8-bit RGB: in a worker when there are
   * workers (f_s goes with the job), else here. x_s and x_d are read at once;
   * the caller may dispose them when this returns.
   */
  async renderImage(f_s: tf.Tensor5D, x_s: tf.Tensor3D, x_d: tf.Tensor3D): Promise<{ rgb: Uint8Array; width: number; height: number }> {
    this.check();
    const { rgb, width, height } = await this.renderer.render(0, f_s, x_s, x_d, { perFrameFeature: true });
    return { rgb, width, height };
  }

  /** A driving input planned with this model's face detector (the ratios the options need). */
  planDriving(driving: Driving | DrivingPlan, opts: Partial<AnimationOptions>, ctx: Omit<PlanContext, 'detector'> = {}): Promise<DrivingPlan> {
    if (!(driving instanceof Driving)) {
      if (driving && typeof (driving as DrivingPlan).frames === 'function' && typeof (driving as DrivingPlan).isVideo === 'boolean') return Promise.resolve(driving as DrivingPlan);
      throw new InputError(`driving: expected a Driving (Driving.video, .image, .template, .frames or .live), got ${describeValue(driving)}`);
    }
    return driving.plan({ ...ctx, detector: () => this.faceDetector(), needRatios: ctx.needRatios ?? !!(opts.eyeRetargeting || opts.lipRetargeting) });
  }

  // ------------------------------------------------------------ the loops on face crops

  /** Animate one source face crop (or its prepared SourceInfo, which stays the caller's) by a driving input. */
  async *animate(source: ImageInput | SourceInfo, driving: Driving | DrivingPlan, options: LoopOptions = {}): AsyncGenerator<AnimatedFrame> {
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
   * The animation loop (animate_faces.ts): prepared faces of one picture
   * driven by one driving input, or each by its own (an array by face, null
   * for a face kept still), frame by frame, yielded in order.
   */
  animateFaces(sources: SourceInfo[], driving: Driving | DrivingPlan | FaceDrivings, options: LoopOptions = {}): AsyncGenerator<AnimatedFaces> {
    this.check();
    return animateFacesLoop(this, sources, driving, options);
  }

  /**
   * Animate a source video: its face crops (an array, or a function returning
   * a fresh iterable: it is read twice, once for motion, once for
   * appearance) each driven by the matching driving frame (or all by a
   * driving image), the motion Kalman-smoothed as the reference does.
   */
  animateSourceVideo(sourceFrames: SourceFrames, driving: Driving | DrivingPlan, options: LoopOptions = {}): AsyncGenerator<AnimatedFrame> {
    this.check();
    return V.animateSourceVideo(this, sourceFrames, driving, options);
  }

  /**
   * The reference's video retargeting (`execute_video_retargeting`): every
   * source frame keeps its own motion; with a `lipRatio` the lips go to that
   * opening (R_lip deltas Kalman-smoothed), with `lipRatio: null` they are
   * kept silent (the neutral-lip expression but for the eyes). Then
   * stitching, W and G with the frame's own appearance feature. Frames need
   * their lip ratio (from face landmarks) unless silent.
   */
  retargetVideo(sourceFrames: SourceFrames, opts: VideoRetargetOptions): AsyncGenerator<AnimatedFrame> {
    this.check();
    return V.retargetVideo(this, sourceFrames, opts);
  }

  /** Motion of one driving frame (a face crop with ratios, or a motion frame as it is). */
  async motionOf(fr: FrameLike, i: number): Promise<MotionFrame> {
    if (isMotionFrame(fr)) {
      checkMotionFrame(fr, `driving motion frame ${i}`);
      return fr;
    }
    if (isFrameInput(fr)) return (await this.extractMotion(fr.image, { eyeRatio: fr.eyeRatio, lipRatio: fr.lipRatio }))[0];
    if (isTensor(fr) || isRawImage(fr)) return (await this.extractMotion(fr))[0];
    throw new InputError(`driving frame ${i}: expected an image, {image, eyeRatio?, lipRatio?} or a motion frame, got ${describeValue(fr)}`);
  }

  // ------------------------------------------------------------ single-image editing

  /** The driving keypoints of a single-image edit (motion/retarget.ts). */
  async retargetKeypoints(source: SourceInfo, edit: RetargetEdit = {}): Promise<tf.Tensor3D> {
    this.check();
    return retargetKeypoints(this.S, source, edit);
  }

  /** A single-image edit rendered: the face crop 512×512. */
  async retarget(source: SourceInfo, edit: RetargetEdit = {}, opts: RenderOptions = {}): Promise<AnimatedFrame> {
    const x_d = await this.retargetKeypoints(source, edit);
    try {
      return await decodedFrame(0, this.warpDecode(source.f_s, source.x_s, x_d, opts), x_d);
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
    for (const n of [this.F, this.M, this.local, this.S]) n.dispose();
    const pool = this.pool;
    this.pool = undefined;
    return pool ? pool.pool.close() : Promise.resolve();
  }
}

function isSourceInfo(x: unknown): x is SourceInfo {
  const s = x as SourceInfo;
  return !!s && typeof s === 'object' && !isTensor(s) && isTensor(s.f_s) && isTensor(s.x_s);
}
