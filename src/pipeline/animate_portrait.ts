/**
 * The reference's `execute`, at the portrait level: a prepared photo (one
 * face, a chosen face, or all faces) or a prepared source video, driven by
 * a Driving input; each frame animated, pasted back into the source picture
 * at its working size, with the comparison panels (driving | source |
 * result) on request. Also the single-image edit and the video
 * retargeting, pasted back. The CLI and the page write these frames; they
 * plan, crop and paste nothing themselves.
 */
import { type RgbImage } from '../image/image.js';
import { concatFrame, panelRow } from '../image/concat.js';
import { pasteBack, preparePasteBack } from '../face/paste_back.js';
import { ratiosFromLandmarks } from '../face/ratios.js';
import { InputError } from '../errors.js';
import type { MotionFrame } from '../formats/template.js';
import type { RetargetEdit } from '../motion/edits.js';
import type { LivePortrait, LoopOptions, VideoRetargetOptions } from './live_portrait.js';
import type { FaceDrivings } from './animate_faces.js';
import type { Driving, DrivingItem, DrivingPlan, Fps, ProgressInfo } from './driving.js';
import type { AnimatedFrame, RenderOptions } from './renderer.js';
import type { Portrait, PortraitVideo } from './portrait.js';
import type { DrivingFrameInput } from './inputs.js';

/** Options of animatePortrait: the reference's animation options, paste-back, and the run's controls. */
export interface PortraitAnimationOptions extends LoopOptions {
  /**
   * Paste the animated face back into the source picture (default true). As
   * the reference, only with stitching and a cropped source; a group photo
   * (all faces) is always pasted back.
   */
  pasteBack?: boolean;
  /** Info lines (notes and warnings). */
  log?: (line: string) => void;
  /** Progress of the long steps (tracking the driving face, animating). */
  onProgress?: (p: ProgressInfo) => void;
}

/** One frame of the portrait animation. */
export interface PortraitFrame {
  index: number;
  /** The result: the source picture with the animated face(s) pasted back (or the animated crop, without paste-back). */
  image: RgbImage;
  /** Each face's animated crop (512²). */
  crops: RgbImage[];
  /** The driving frame's 256² face crop (none for a motion template). */
  driving?: RgbImage;
  /** The source face's 256² crop of this frame. */
  source: RgbImage;
  /** Each face's driving keypoints [21 × 3]. */
  x_d: Float32Array[];
  /** The driving frame's motion (image sources). */
  motion?: MotionFrame;
  /** Frames this run gives (an upper bound until the end for some inputs; Infinity for a live stream). */
  total: number;
  /** Whether the driving input is a video's motion (false: one picture's). */
  drivingIsVideo: boolean;
  /** Whether the run gives a video (a source video, or a photo driven by a video's motion) rather than one picture. */
  video: boolean;
  fps: Fps;
  /** The comparison frame: driving | source | result (a group photo: driving | photo | result, 512 high). */
  concat(): RgbImage;
}

/** A single-image edit, pasted back. */
export interface EditedPortrait {
  /** The source picture with the edited face. */
  image: RgbImage;
  /** The edited face crop (512²). */
  crop: RgbImage;
}

const rgbOf = (f: AnimatedFrame): RgbImage => ({ width: f.width, height: f.height, data: f.rgb });

function loopOptions(o: PortraitAnimationOptions): LoopOptions {
  const { pasteBack: _p, onProgress: _o, ...rest } = o;
  return rest;
}

async function plan(lp: LivePortrait, driving: Driving | DrivingPlan, o: PortraitAnimationOptions, limit?: number): Promise<DrivingPlan> {
  return lp.planDriving(driving, loopOptions(o), { signal: o.signal, limit, log: o.log, onProgress: o.onProgress });
}

/**
 * Animate a prepared photo or source video; see PortraitFrame. `driving`:
 * one driving for every face, or (a group photo) one per face, left to
 * right (see facesLeftToRight): null or a hole keeps that face still; the
 * run lasts as long as the longest driving, a face whose driving has ended
 * holding its last frame.
 */
export async function* animatePortrait(lp: LivePortrait, portrait: Portrait | PortraitVideo, driving: Driving | DrivingPlan | FaceDrivings, o: PortraitAnimationOptions = {}): AsyncGenerator<PortraitFrame> {
  if (!portrait || (portrait.kind !== 'image' && portrait.kind !== 'video'))
    throw new InputError('animatePortrait: give a portrait from lp.preparePortrait(image) or lp.preparePortraitVideo(video)');
  if (portrait.kind === 'video') {
    if (Array.isArray(driving)) throw new InputError('drivings: one driving per face needs a source photo with several faces; a source video takes one driving');
    yield* animateVideo(lp, portrait, driving as Driving | DrivingPlan, o);
  } else yield* animateImage(lp, portrait, driving, o);
}

/** The indices of a photo's faces (portrait.faces, largest first) ordered left to right by the centre of their crops. */
export function facesLeftToRight(portrait: Portrait): number[] {
  const cx = portrait.faces.map((f) => {
    const [a, b, c] = f.crop.M_c2o;
    const half = f.crop.imgCrop.width / 2;
    return a * half + b * half + c;
  });
  return cx.map((_, k) => k).sort((i, j) => cx[i] - cx[j] || i - j);
}

async function* animateImage(lp: LivePortrait, portrait: Portrait, driving: Driving | DrivingPlan | FaceDrivings, o: PortraitAnimationOptions): AsyncGenerator<PortraitFrame> {
  const faces = portrait.faces;
  const stitching = o.stitching ?? true;
  const doPaste = faces.every((f) => f.mask) && (faces.length > 1 || ((o.pasteBack ?? true) && stitching && portrait.cropped));
  if ((o.pasteBack ?? true) && !stitching && faces.length === 1 && portrait.cropped) o.log?.('note: without stitching the animated crop is written as is (no paste-back), as the reference does');
  let drive: DrivingPlan | (DrivingPlan | undefined)[];
  let p: Pick<DrivingPlan, 'count' | 'isVideo' | 'fps'>;
  if (Array.isArray(driving)) {
    const given = driving as FaceDrivings;
    if (given.length > faces.length) throw new InputError(`drivings: ${given.length} given for ${faces.length} face(s) in ${portrait.name}; give at most one per face`);
    const order = facesLeftToRight(portrait);
    const byFace: (DrivingPlan | undefined)[] = faces.map(() => undefined);
    for (const [j, d] of given.entries()) if (d) byFace[order[j]] = await plan(lp, d, o, o.maxFrames);
    const planned = byFace.filter((x): x is DrivingPlan => !!x);
    if (planned.length === 0) throw new InputError('drivings: no face has a driving; give at least one');
    drive = byFace;
    p = { count: Math.max(...planned.map((x) => x.count)), isVideo: planned.some((x) => x.isVideo), fps: planned[0].fps };
  } else p = drive = await plan(lp, driving as Driving | DrivingPlan, o, o.maxFrames);
  const img = portrait.image;
  let done = 0;
  o.onProgress?.({ phase: 'Animating', done, total: finite(p.count) });
  for await (const out of lp.animateFaces(faces.map((f) => f.info), drive, loopOptions(o))) {
    const crops = out.faces.map(rgbOf);
    let image = crops[0];
    if (doPaste) {
      image = img;
      faces.forEach((f, k) => (image = pasteBack(crops[k], f.crop.M_c2o, image, f.mask!)));
    }
    const panel = 'image' in out.input ? ((out.input as DrivingFrameInput).image as RgbImage) : undefined;
    yield {
      index: out.index,
      image,
      crops,
      driving: panel,
      source: faces[0].crop.imgCrop256,
      x_d: out.faces.map((f) => f.x_d),
      motion: out.motion,
      total: p.count,
      drivingIsVideo: p.isVideo,
      video: p.isVideo,
      fps: p.fps,
      concat: () => (faces.length === 1 ? concatFrame(panel, faces[0].crop.imgCrop256, crops[0]) : panelRow([...(panel ? [panel] : []), img, image], 512)),
    };
    o.onProgress?.({ phase: 'Animating', done: ++done, total: finite(p.count) });
  }
}

const finite = (n: number) => (Number.isFinite(n) ? n : undefined);

/** The frames of a source video as the loops read them, keeping what each in-flight frame needs until it is out. */
function sourcePasses(portrait: PortraitVideo, n: number, keep: (pass: number) => boolean) {
  const held = new Map<number, { image: RgbImage; crop256: RgbImage; M_c2o: PortraitVideo['faces'][number]['M_c2o'] }>();
  let pass = 0;
  const open = async function* (): AsyncGenerator<DrivingFrameInput> {
    const record = keep(++pass);
    for await (const f of portrait.frames(n)) {
      if (record) held.set(f.i, { image: f.image, crop256: f.crop.imgCrop256, M_c2o: f.crop.M_c2o });
      yield { image: f.crop.imgCrop256, ...ratiosFromLandmarks(f.face.landmarks) };
    }
  };
  const take = (i: number) => {
    const h = held.get(i);
    if (!h) throw new InputError(`${portrait.name}: frame ${i} was not read`);
    held.delete(i);
    return h;
  };
  return { open, take };
}

async function* animateVideo(lp: LivePortrait, portrait: PortraitVideo, driving: Driving | DrivingPlan, o: PortraitAnimationOptions): AsyncGenerator<PortraitFrame> {
  if (o.animal) throw new InputError('animal mode animates a source image (as the reference); a source video is not supported');
  const p = await plan(lp, driving, o);
  // The driving frames bound the source frames read (a cropped video's faceless frames are already left out).
  let drivingCount = p.count;
  if (p.isVideo && !Number.isFinite(drivingCount)) {
    drivingCount = 0;
    for await (const _ of p.frames()) drivingCount++;
  }
  const n = Math.min(o.maxFrames ?? Infinity, portrait.faces.length, p.isVideo ? drivingCount : Infinity);
  const doPaste = (o.pasteBack ?? true) && (o.stitching ?? true);
  // The motion pass reads the source once, the rendering pass again: the second keeps each frame until it is out.
  const src = sourcePasses(portrait, n, (pass) => pass === 2);
  let panels: AsyncIterator<DrivingItem> | undefined;
  let still: RgbImage | undefined;
  if (!p.isVideo) still = (await p.frames().next()).value?.panel;
  let done = 0;
  o.onProgress?.({ phase: 'Animating', done, total: n });
  try {
    for await (const out of lp.animateSourceVideo(src.open, p, { ...loopOptions(o), maxFrames: n })) {
      const s = src.take(out.index);
      const crop = rgbOf(out);
      const image = doPaste ? pasteBack(crop, s.M_c2o, s.image, preparePasteBack(s.M_c2o, s.image.width, s.image.height)) : crop;
      let panel = still;
      if (p.isVideo) {
        panels ??= p.frames()[Symbol.asyncIterator]();
        panel = (await panels.next()).value?.panel;
      }
      yield { index: out.index, image, crops: [crop], driving: panel, source: s.crop256, x_d: [out.x_d], total: n, drivingIsVideo: p.isVideo, video: true, fps: portrait.video.fps, concat: () => concatFrame(panel, s.crop256, crop) };
      o.onProgress?.({ phase: 'Animating', done: ++done, total: n });
    }
  } finally {
    await panels?.return?.(undefined);
  }
}

/** A single-image edit of a prepared photo (face `face`, default 0), pasted back. */
export async function editPortrait(lp: LivePortrait, portrait: Portrait, edit: RetargetEdit, opts: RenderOptions & { face?: number } = {}): Promise<EditedPortrait> {
  const f = portrait.faces[opts.face ?? 0];
  if (!f) throw new InputError(`editPortrait: face ${opts.face} is not among the ${portrait.faces.length} prepared`);
  const needs = [edit.eyeRatio !== undefined && !f.info.eyeRatio && 'eyeRatio', edit.lipRatio !== undefined && f.info.lipRatio === undefined && 'lipRatio'].filter(Boolean);
  if (needs.length) throw new InputError(`${needs.join(' and ')} need the face's landmarks, but none were found in ${portrait.name}; drop them or use a clearer photo`);
  const out = await lp.retarget(f.info, edit, opts);
  const crop = rgbOf(out);
  return { crop, image: f.mask ? pasteBack(crop, f.crop.M_c2o, portrait.image, f.mask) : crop };
}

/** The reference's video retargeting on a prepared source video (lips to one opening, or silent), pasted back. */
export async function* retargetPortraitVideo(lp: LivePortrait, portrait: PortraitVideo, o: VideoRetargetOptions & { maxFrames?: number; pasteBack?: boolean; onProgress?: (p: ProgressInfo) => void }): AsyncGenerator<PortraitFrame> {
  const n = Math.min(o.maxFrames ?? Infinity, portrait.faces.length);
  const src = sourcePasses(portrait, n, (pass) => pass === 2);
  let done = 0;
  o.onProgress?.({ phase: 'Animating', done, total: n });
  for await (const out of lp.retargetVideo(src.open, o)) {
    const s = src.take(out.index);
    const crop = rgbOf(out);
    const image = o.pasteBack === false ? crop : pasteBack(crop, s.M_c2o, s.image, preparePasteBack(s.M_c2o, s.image.width, s.image.height));
    yield { index: out.index, image, crops: [crop], source: s.crop256, x_d: [out.x_d], total: n, drivingIsVideo: true, video: true, fps: portrait.video.fps, concat: () => concatFrame(undefined, s.crop256, crop) };
    o.onProgress?.({ phase: 'Animating', done: ++done, total: n });
  }
}
