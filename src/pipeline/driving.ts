/**
 * The driving input, made by an explicit constructor (nothing guesses what
 * an input is): a video (frames streamed, fps), an image, a motion
 * template, frames already cropped to the face, or a live stream of
 * pictures (a webcam). Planning one finds and crops the driving face as the
 * reference does (crop_driving_video: track, one averaged box for the whole
 * video; an image: its own box) and reads eye and lip ratios where needed.
 *
 * @example
 * const driving = Driving.video(await openVideo('driving.mp4'));   // Node: liveportrait-tfjs/node
 * const still = Driving.image(await readImage('smile.jpg'));
 * const motion = Driving.template(loadTemplate('talk.lpmotion.safetensors'));
 */
import type { Point2 } from '../image/affine.js';
import { type RgbImage, resizeImage } from '../image/image.js';
import { type CropOptions, cropImageByBbox } from '../face/crop.js';
import { type FaceDetector, drivingBbox } from '../face/detector.js';
import { ratiosFromLandmarks } from '../face/ratios.js';
import { InputError, NoFaceError } from '../errors.js';
import { type MotionFrame, type MotionTemplate, checkMotionFrame } from '../formats/template.js';
import { type AnyIterable, type DrivingFrameInput, type FrameLike, type ImageInput, checkAborted, definedOnly, describeValue, isFrameInput, isMotionFrame, iterate } from './inputs.js';

/** A frame rate: a number, or a rational as videos store it (30000/1001). */
export type Fps = number | { num: number; den: number };

export function fpsValue(fps: Fps): number {
  return typeof fps === 'number' ? fps : fps.num / fps.den;
}

/** A video that can be read (again) frame by frame: Node's openVideo(path), the page's WebCodecs reader. */
export interface VideoFrames {
  /** Named in messages. */
  name?: string;
  width: number;
  height: number;
  fps: Fps;
  /** Frames in the video, where known. */
  frameCount?: number;
  /** A fresh pass over the frames, at most `max`. */
  frames(max?: number): AsyncIterable<RgbImage>;
}

/** How a driving video or image is cropped to its face. */
export interface DrivingCropOptions {
  /** Crop to the face (default: when the picture is not square, as the reference's CLI). */
  crop?: boolean;
  /** The driving crop's scale (2.2), vxRatio (0), vyRatio (-0.1). */
  cropOptions?: Pick<CropOptions, 'scale' | 'vxRatio' | 'vyRatio'>;
  /** Named in messages (default 'the driving video' / 'the driving image'). */
  name?: string;
}

/** Progress of a long step: its phase, items done, and the total where known. */
export interface ProgressInfo {
  phase: string;
  done: number;
  total?: number;
}

/** What planning a driving input needs. */
export interface PlanContext {
  /** The face detector (loaded on first use). */
  detector: () => Promise<FaceDetector>;
  /** Each frame's eye and lip ratios are needed (eye or lip retargeting). */
  needRatios?: boolean;
  /** Ratios are read where there is a face, but a faceless input is only a warning (templates). */
  ratiosOptional?: boolean;
  /** Most frames to read. */
  limit?: number;
  log?: (line: string) => void;
  onProgress?: (p: ProgressInfo) => void;
  signal?: AbortSignal;
}

/** One driving frame: the 256² crop shown in comparisons (none for templates), and what the networks take. */
export interface DrivingItem {
  panel?: RgbImage;
  frame: DrivingFrameInput | MotionFrame;
}

/** A planned driving input. */
export interface DrivingPlan {
  /** A video's motion (relative to its first frame) rather than one picture's. */
  isVideo: boolean;
  /** Frames (Infinity for a live stream; an upper bound until a cropped video is tracked). */
  count: number;
  fps: Fps;
  /** A fresh pass over the frames (a live stream can be read once). */
  frames(): AsyncGenerator<DrivingItem>;
}

type Kind = 'video' | 'image' | 'template' | 'frames' | 'live';

/**
 * A driving input. Make one with `Driving.video`, `Driving.image`,
 * `Driving.template`, `Driving.frames` or `Driving.live`.
 */
export class Driving {
  private constructor(
    readonly kind: Kind,
    private readonly plan_: (ctx: PlanContext) => Promise<DrivingPlan>,
    /** Frames per second of the input (25 for an image). */
    readonly fps: Fps,
    /** Named in messages. */
    readonly name: string,
  ) {}

  /** A video read frame by frame; cropped to the face with one averaged box (default: when not square). */
  static video(video: VideoFrames, opts: DrivingCropOptions = {}): Driving {
    if (!video || typeof video.frames !== 'function') throw new InputError(`Driving.video: expected a video ({ width, height, fps, frames() }, e.g. openVideo(path)), got ${describeValue(video)}`);
    const name = opts.name ?? video.name ?? 'the driving video';
    return new Driving('video', (ctx) => planVideo(video, name, opts, ctx), video.fps, name);
  }

  /** One picture: its motion drives every frame (image-driven: relative to the neutral-lip expression). */
  static image(image: RgbImage, opts: DrivingCropOptions = {}): Driving {
    if (!image || !(image.data instanceof Uint8Array) || !Number.isInteger(image.width)) throw new InputError(`Driving.image: expected an RGB image ({ data, width, height }), got ${describeValue(image)}`);
    const name = opts.name ?? 'the driving image';
    return new Driving('image', (ctx) => planImage(image, name, opts, ctx), 25, name);
  }

  /** A motion template: the motion of a video, without its pixels. */
  static template(tpl: MotionTemplate, opts: { name?: string } = {}): Driving {
    if (!tpl || !Array.isArray(tpl.frames)) throw new InputError(`Driving.template: expected a motion template ({ fps, frames }), got ${describeValue(tpl)}`);
    const name = opts.name ?? 'the motion template';
    return new Driving('template', async (ctx) => planTemplate(tpl, name, ctx), tpl.fps, name);
  }

  /**
   * Frames already cropped to the driving face (256², or resized to it), or
   * their motion: a video's motion, each frame with its ratios where given.
   * No detection.
   */
  static frames(frames: AnyIterable<ImageInput | DrivingFrameInput | MotionFrame>, opts: { fps?: Fps; name?: string } = {}): Driving {
    if (!frames || typeof frames !== 'object' || !(Symbol.iterator in frames || Symbol.asyncIterator in frames))
      throw new InputError(`Driving.frames: expected an iterable of face crops, got ${describeValue(frames)}`);
    const name = opts.name ?? 'the driving frames';
    return new Driving('frames', async (ctx) => planFrames(frames, ctx), opts.fps ?? 25, name);
  }

  /**
   * A live stream of pictures (a webcam): each cropped with its own face box
   * (the centre square when no face is seen), motion relative to the first.
   * Read once, as the pictures come.
   */
  static live(pictures: AsyncIterable<RgbImage>, opts: DrivingCropOptions & { fps?: Fps } = {}): Driving {
    const name = opts.name ?? 'the live input';
    return new Driving('live', async (ctx) => planLive(pictures, opts, ctx), opts.fps ?? 25, name);
  }

  /** Find and crop the driving face, read the ratios needed: the frames ready for the animation loop. */
  plan(ctx: PlanContext): Promise<DrivingPlan> {
    checkAborted(ctx.signal);
    return this.plan_(ctx);
  }
}

function planTemplate(tpl: MotionTemplate, name: string, ctx: PlanContext): DrivingPlan {
  if (tpl.frames.length === 0) throw new InputError(`${name}: the motion template has no frames`);
  tpl.frames.forEach((f, i) => checkMotionFrame(f, `${name}: frame ${i}`));
  const frames = tpl.frames.slice(0, ctx.limit ?? tpl.frames.length);
  return {
    isVideo: tpl.frames.length > 1,
    count: frames.length,
    fps: tpl.fps,
    async *frames() {
      for (const f of frames) yield { frame: f };
    },
  };
}

function planFrames(frames: AnyIterable<ImageInput | DrivingFrameInput | MotionFrame>, ctx: PlanContext): DrivingPlan {
  const limit = ctx.limit ?? Infinity;
  return {
    isVideo: true,
    count: Array.isArray(frames) ? Math.min(frames.length, limit) : limit,
    fps: 25,
    async *frames() {
      let i = 0;
      for await (const f of iterate(frames)) {
        if (i++ >= limit) return;
        yield { frame: isMotionFrame(f) || isFrameInput(f) ? f : { image: f as ImageInput } };
      }
    },
  };
}

async function planImage(img: RgbImage, name: string, opts: DrivingCropOptions, ctx: PlanContext): Promise<DrivingPlan> {
  const crop = opts.crop ?? img.width !== img.height;
  const face = (await (await ctx.detector()).detect(img, { maxFaces: 1 }))[0];
  if (!face && ctx.needRatios && !ctx.ratiosOptional && !crop) throw new NoFaceError('driving', 'image', name, true);
  if (!face && !crop) ctx.log?.(`warning: no face found in the driving image ${name}; its motion is read from the whole picture and may not look like a face's`);
  let panel: RgbImage;
  let lmk: Point2[] | undefined;
  if (crop) {
    if (!face) throw new NoFaceError('driving', 'image', name);
    const c = cropImageByBbox(img, drivingBbox([face.landmarks], definedOnly(opts.cropOptions)), face.landmarks);
    panel = c.imgCrop256;
    lmk = c.lmkCrop;
  } else {
    panel = resizeImage(img, 256, 256, 'linear');
    lmk = face?.landmarks;
  }
  const ratios = ratiosFromLandmarks(lmk);
  return {
    isVideo: false,
    count: 1,
    fps: 25,
    async *frames() {
      yield { panel, frame: { image: panel, ...ratios } };
    },
  };
}

async function planVideo(video: VideoFrames, name: string, opts: DrivingCropOptions, ctx: PlanContext): Promise<DrivingPlan> {
  const count = Math.min(video.frameCount ?? Infinity, ctx.limit ?? Infinity);
  if (count <= 0) throw new InputError(`driving video ${name} has no frames; give another video`);
  const crop = opts.crop ?? video.width !== video.height;
  const read = () => video.frames(Number.isFinite(count) ? count : undefined);
  const needRatios = !!ctx.needRatios;
  const plan: DrivingPlan = {
    isVideo: true,
    count,
    fps: video.fps,
    frames: async function* () {
      let prev: Point2[] | undefined;
      for await (const f of read()) {
        checkAborted(ctx.signal);
        const panel = resizeImage(f, 256, 256, 'linear');
        let ratios = {};
        if (needRatios) {
          const face = await (await ctx.detector()).track(f, prev);
          prev = face?.landmarks;
          ratios = ratiosFromLandmarks(prev);
        }
        yield { panel, frame: { image: panel, ...ratios } };
      }
    },
  };
  if (!crop) {
    // A square video is used as it is: look for a face in its first frame at least.
    let first: RgbImage | undefined;
    for await (const f of video.frames(1)) first = f;
    const face = first && (await (await ctx.detector()).detect(first, { maxFaces: 1 }))[0];
    if (!face && needRatios && !ctx.ratiosOptional) throw new NoFaceError('driving', 'video', name, true);
    if (!face) ctx.log?.(`warning: no face found in the first frame of the driving video ${name}; its motion is read from the whole picture and may not look like a face's`);
    return plan;
  }
  // The reference's crop_driving_video: track, one averaged box, crop every frame with it.
  const lmks: (Point2[] | undefined)[] = [];
  let prev: Point2[] | undefined;
  const det = await ctx.detector();
  for await (const f of read()) {
    checkAborted(ctx.signal);
    prev = (await det.track(f, prev))?.landmarks;
    lmks.push(prev);
    ctx.onProgress?.({ phase: 'Tracking the driving face', done: lmks.length, total: Number.isFinite(count) ? count : undefined });
  }
  const kept = lmks.filter((l): l is Point2[] => !!l);
  if (kept.length === 0) throw new NoFaceError('driving', 'video', name);
  if (kept.length < lmks.length) ctx.log?.(`note: ${lmks.length - kept.length} driving frame(s) without a face are skipped, as the reference does`);
  const bbox = drivingBbox(kept, definedOnly(opts.cropOptions));
  plan.count = kept.length;
  plan.frames = async function* () {
    let i = 0;
    for await (const f of read()) {
      const l = lmks[i++];
      if (!l) continue;
      const c = cropImageByBbox(f, bbox, l);
      yield { panel: c.imgCrop256, frame: { image: c.imgCrop256, ...ratiosFromLandmarks(c.lmkCrop) } };
    }
  };
  return plan;
}

async function planLive(pictures: AsyncIterable<RgbImage>, opts: DrivingCropOptions, ctx: PlanContext): Promise<DrivingPlan> {
  const crop = opts.crop ?? true;
  const det = await ctx.detector();
  return {
    isVideo: true,
    count: Infinity,
    fps: 25,
    async *frames() {
      let prev: Point2[] | undefined;
      for await (const img of pictures) {
        checkAborted(ctx.signal);
        const face = crop || ctx.needRatios ? await det.track(img, prev) : undefined;
        prev = face?.landmarks;
        if (crop && face) {
          const c = cropImageByBbox(img, drivingBbox([face.landmarks], definedOnly(opts.cropOptions)), face.landmarks);
          yield { panel: c.imgCrop256, frame: { image: c.imgCrop256, ...ratiosFromLandmarks(c.lmkCrop) } };
        } else {
          const side = Math.min(img.width, img.height);
          const sq = cropImageByBbox(img, [(img.width - side) / 2, (img.height - side) / 2, (img.width + side) / 2, (img.height + side) / 2]);
          yield { panel: sq.imgCrop256, frame: { image: sq.imgCrop256, ...ratiosFromLandmarks(face?.landmarks) } };
        }
      }
    },
  };
}

/** Frames of a plan as the animation loop takes them. */
export async function* planFramesOnly(plan: DrivingPlan): AsyncGenerator<FrameLike> {
  for await (const it of plan.frames()) yield it.frame;
}
