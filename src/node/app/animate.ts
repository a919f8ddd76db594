/**
 * End to end: photo or video in, video out (the reference's
 * LivePortraitPipeline.execute): read the source (image or video) and the
 * driving input (video, image or motion template), crop the faces, animate,
 * paste the result back into the original, and write the result and the
 * side-by-side comparison (`<source>--<driving>.mp4`,
 * `<source>--<driving>_concat.mp4`) with the driving's frame rate and audio.
 * Outputs are written under temporary names and renamed at the end.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { backendInfo, initBackend } from '../../backend.js';
import { isImagePath, resizeImage, resizeToLimit } from '../../image/image.js';
import { hasAudioStream, isVideoPath, openVideoWriter, probeVideo, readVideoFrames, type VideoInfo, type VideoWriter } from '../video.js';
import { concatFrame, hstackImages } from '../../image/concat.js';
import { type CropResult, bboxFromLandmarks, cropImage, cropImageByBbox } from '../../face/crop.js';
import { type Face, drivingBbox } from '../../face/detector.js';
import { loadFaceDetector } from '../face_models.js';
import { LivePortrait, type DrivingFrameInput, type DrivingInput, type SourceInfo } from '../../pipeline/live_portrait.js';
import type { AnimationOptions, AnimationRegion, DrivingOption } from '../../motion/options.js';
import { type PasteBackMask, pasteBack, preparePasteBack } from '../../face/paste_back.js';
import { calcEyeCloseRatio, calcLipCloseRatio } from '../../face/ratios.js';
import { type MotionFrame, type MotionTemplate, checkMotionFrame } from '../../formats/template.js';
import { defaultWorkerCount, startFrameWorkers } from '../workers.js';
import { loadLivePortrait, readLipArrayOption } from '../weights.js';
import { CliError, UsageError, userMessage, withFile } from './errors.js';
import { LipArrayMissingError } from '../../errors.js';
import { Progress, summaryLine, type ProgressStream } from './progress.js';
import { loadTemplate } from '../files.js';
import { readImage, writeImage } from '../image_files.js';
import { type Point2 } from '../../image/affine.js';
import { type RgbImage } from '../../image/image.js';

// ------------------------------------------------------------------ model

export interface ModelOptions {
  /** A weights directory, or 'synthetic' (default $LIVEPORTRAIT_WEIGHTS, else ./weights). */
  weights?: string;
  /** Seed of the synthetic weights (default 1). */
  seed?: number;
  /** Official weight set (default 'human'). */
  set?: 'human' | 'animal';
  /** tfjs backend (default auto / $LIVEPORTRAIT_BACKEND). */
  backend?: string;
  /**
   * Worker threads rendering frames, each with its own backend (the --workers
   * flag; default `defaultWorkerCount()`: one per core on wasm and cpu as memory allows, 0 on backends
   * that use the whole machine; an injected `model` renders in-process
   * unless this is set).
   */
  workers?: number;
  /**
   * The reference's neutral-lip expression (its src/utils/resources/lip_array.pkl)
   * for image-driven relative motion (default: lip_array.pkl in the weights
   * directory; zeros with synthetic weights).
   */
  lipArray?: string;
  /** Use this model instead of loading one (library callers, tests). */
  model?: LivePortrait;
}

export const WEIGHTS_ENV = 'LIVEPORTRAIT_WEIGHTS';
const models = new Map<string, LivePortrait>();
let backendReady: string | undefined;

/** Start the backend once per process (again only when another one is asked for). */
export async function ensureBackend(opts: ModelOptions, log?: (line: string) => void): Promise<void> {
  const key = opts.backend ?? '';
  if (backendReady === key) return;
  try {
    await initBackend({ backend: opts.backend, log: log ?? false });
  } catch (e) {
    throw new CliError(userMessage(e), { cause: e });
  }
  backendReady = key;
}

/** The weights directory the options point to ('synthetic' stays as is). */
export function weightsSpec(opts: ModelOptions): string {
  return opts.weights ?? process.env[WEIGHTS_ENV] ?? 'weights';
}

/**
 * The LivePortrait networks for the options, cached per process (tests and
 * repeated calls share one). Errors name the directory, the file and the fix.
 */
export function loadModel(opts: ModelOptions): LivePortrait {
  if (opts.model) return opts.model;
  const w = weightsSpec(opts);
  const seed = opts.seed ?? 1;
  const key = `${w === 'synthetic' ? `synthetic:${seed}` : `${resolve(w)}:${opts.set ?? 'human'}`}:${opts.lipArray ?? ''}`;
  if (opts.lipArray !== undefined && !existsSync(opts.lipArray))
    throw new CliError(`lip array ${opts.lipArray} not found; give --lip-array the reference's src/utils/resources/lip_array.pkl`);
  const hit = models.get(key);
  if (hit) return hit;
  let lp: LivePortrait;
  if (w === 'synthetic') {
    if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got ${seed}`);
    // Synthetic weights are meaningless anyway: a zero neutral-lip expression stands in for lip_array.pkl.
    lp = LivePortrait.synthetic(seed, { lipArray: readLipArrayOption(opts.lipArray) ?? new Float32Array(63) });
  } else {
    const dir = resolve(w);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new CliError(
        `weights directory ${dir} not found; get the weights with \`liveportrait weights download --dir ${dir}${opts.set === 'animal' ? ' --set animal' : ''}\`, ` +
          `or pass --weights DIR (or --weights synthetic --seed 1 to try everything offline with meaningless weights)`,
      );
    try {
      lp = loadLivePortrait(dir, { set: opts.set, lipArray: opts.lipArray });
    } catch (e) {
      throw new CliError(userMessage(e), { cause: e });
    }
  }
  models.set(key, lp);
  return lp;
}

/** Fail early when a weights directory is missing (the full load comes later). */
function loadModelCheck(opts: ModelOptions): void {
  const dir = resolve(weightsSpec(opts));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) loadModel(opts);
}

/**
 * Remove this process's temporary outputs (`.<name>.partial-<pid>-…`, see
 * io/output.ts) from `dir`: for an interrupted run (Ctrl-C), where the
 * writers get no chance to clean up.
 */
export function removePartials(dir: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith('.') && f.includes(`.partial-${process.pid}-`)) {
        rmSync(join(dir, f), { force: true });
        n++;
      }
    }
  } catch {
    /* the directory may not exist yet */
  }
  return n;
}

// ------------------------------------------------------------------ inputs

export type InputKind = 'image' | 'video' | 'template';

/** File name without its extension(s): the reference's basename(). */
export function stem(path: string): string {
  const b = basename(path);
  if (b.toLowerCase().endsWith('.lpmotion.safetensors')) return b.slice(0, -'.lpmotion.safetensors'.length);
  const e = extname(b);
  return e ? b.slice(0, -e.length) : b;
}

/** True for motion template names (.pkl, .safetensors). */
export function isTemplatePath(path: string): boolean {
  const e = extname(path).toLowerCase();
  return e === '.pkl' || e === '.safetensors';
}

/** Check that `path` is a readable file of an accepted kind; one-line errors otherwise. */
export function classifyInput(path: string, role: 'source' | 'driving'): InputKind {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new CliError(`${role} file ${path} not found; check the path given to ${role === 'source' ? '-s/--source' : '-d/--driving'}`);
  }
  if (!isFile) throw new CliError(`${role} ${path} is not a file; give ${role === 'source' ? '-s/--source' : '-d/--driving'} an image or video file`);
  if (isImagePath(path)) return 'image';
  if (isVideoPath(path)) return 'video';
  if (role === 'driving' && isTemplatePath(path)) return 'template';
  const ext = extname(path) || '(no extension)';
  const accepted = role === 'source' ? 'an image (jpg, png, webp, bmp, tiff) or a video (mp4, mov, avi, webm, mkv)' : 'a video (mp4, mov, avi, webm, mkv), an image (jpg, png, ...) or a motion template (.pkl, .safetensors)';
  throw new CliError(`${role} ${path}: unsupported format ${ext}; give ${accepted}`);
}

const NO_FACE_FIX = 'use a photo where the face is clearly visible (frontal, not tiny), or pass --no-crop if the image is already a face crop';

function ratiosOf(lmk: Point2[] | undefined): { eyeRatio?: number[]; lipRatio?: number } {
  if (!lmk || lmk.length === 0) return {};
  return { eyeRatio: calcEyeCloseRatio(lmk)[0], lipRatio: calcLipCloseRatio(lmk)[0][0] };
}

// ------------------------------------------------------------------ request

export interface AnimateRequest extends ModelOptions {
  source: string;
  driving: string;
  /** Output directory (default 'animations'). */
  outputDir?: string;
  /** flag_stitching (default true). */
  stitching?: boolean;
  /** flag_relative_motion (default true). */
  relative?: boolean;
  region?: AnimationRegion;
  multiplier?: number;
  drivingOption?: DrivingOption;
  eyeRetargeting?: boolean;
  lipRetargeting?: boolean;
  normalizeLip?: boolean;
  lipNormalizeThreshold?: number;
  sourceVideoEyeRetargeting?: boolean;
  smoothVariance?: number;
  /** Crop the driving video to the face (default: when it is not square). */
  cropDriving?: boolean;
  /** Crop the source to the face (flag_do_crop, default true). */
  crop?: boolean;
  /** Paste the animated face back into the source (default true; needs stitching, as the reference). */
  pasteBack?: boolean;
  faceIndex?: number;
  allFaces?: boolean;
  /** Source crop: scale (2.3), vx (0), vy (-0.125), rotation (true). */
  scale?: number;
  vxRatio?: number;
  vyRatio?: number;
  doRot?: boolean;
  /** Source images and videos are shrunk so the longer side is at most this (1280). */
  sourceMaxDim?: number;
  crf?: number;
  gif?: boolean;
  /** Write the comparison video (default true). */
  concat?: boolean;
  maxFrames?: number;
  audioPriority?: 'driving' | 'source';
  /** Info lines (default none). */
  log?: (line: string) => void;
  /** Progress output (default none). */
  progress?: ProgressStream | false;
}

export interface AnimateResult {
  /** The animated video (or image, for image → image). */
  output: string;
  concat?: string;
  gif?: string;
  frames: number;
  seconds: number;
  fps: number;
  /** Faces animated. */
  faces: number;
  /** Output frame rate. */
  outputFps: number;
  audioFrom?: string;
  summary: string;
}

function animationOptions(r: AnimateRequest): Partial<AnimationOptions> {
  return {
    stitching: r.stitching,
    relativeMotion: r.relative,
    animationRegion: r.region,
    drivingMultiplier: r.multiplier,
    drivingOption: r.drivingOption,
    eyeRetargeting: r.eyeRetargeting,
    lipRetargeting: r.lipRetargeting,
    normalizeLip: r.normalizeLip,
    lipNormalizeThreshold: r.lipNormalizeThreshold,
    sourceVideoEyeRetargeting: r.sourceVideoEyeRetargeting,
    smoothObservationVariance: r.smoothVariance,
  };
}

/** One driving frame ready for the networks: its 256² crop (none for templates) and motion. */
export interface DrivingItem {
  panel?: RgbImage;
  frame: DrivingFrameInput | MotionFrame;
}

export interface DrivingPlan {
  kind: InputKind;
  /** Frames to animate (upper bound for cropped videos, where faceless frames are skipped). */
  count: number;
  fps: number | { num: number; den: number };
  isVideo: boolean;
  info?: VideoInfo;
  /** A fresh pass over the driving frames. */
  frames(): AsyncGenerator<DrivingItem>;
  hasAudio: boolean;
}

// ------------------------------------------------------------------ driving

/** The driving frames of a request, as animate reads them (also for templates). */
export async function planDrivingFrames(r: AnimateRequest, kind: InputKind, limit: number | undefined, progress: ProgressStream | false): Promise<DrivingPlan> {
  const path = r.driving;
  const needRatios = !!(r.eyeRetargeting || r.lipRetargeting);
  if (kind === 'template') {
    let tpl: MotionTemplate;
    try {
      tpl = loadTemplate(path);
      tpl.frames.forEach((f, i) => checkMotionFrame(f, `frame ${i}`));
    } catch (e) {
      throw withFile(e, path, 'give a template written by `liveportrait template` or the reference (.pkl)');
    }
    if (r.cropDriving) r.log?.('note: --crop-driving is ignored for a motion template');
    const frames = tpl.frames.slice(0, limit ?? tpl.frames.length);
    return {
      kind,
      count: frames.length,
      fps: tpl.fps,
      isVideo: tpl.frames.length > 1,
      hasAudio: false,
      async *frames() {
        for (const f of frames) yield { frame: f };
      },
    };
  }
  if (kind === 'image') {
    let img: RgbImage;
    try {
      img = await readImage(path);
    } catch (e) {
      throw withFile(e, path);
    }
    const crop = r.cropDriving ?? img.width !== img.height;
    let panel: RgbImage;
    let lmk: Point2[] | undefined;
    const faces = crop || needRatios ? await (await loadFaceDetector()).detect(img, { maxFaces: 1 }) : [];
    if (crop) {
      if (!faces[0]) throw new CliError(`no face found in the driving image ${path}; use an image with a clearly visible face, or a square face crop without --crop-driving`);
      const c = cropImageByBbox(img, bboxFromLandmarks(faces[0].landmarks), faces[0].landmarks);
      panel = c.imgCrop256;
      lmk = c.lmkCrop;
    } else {
      panel = resizeImage(img, 256, 256, 'linear');
      lmk = faces[0]?.landmarks;
    }
    const ratios = ratiosOf(lmk);
    return {
      kind,
      count: 1,
      fps: 25,
      isVideo: false,
      hasAudio: false,
      async *frames() {
        yield { panel, frame: { image: panel, ...ratios } };
      },
    };
  }
  // a video
  let info: VideoInfo;
  try {
    info = await probeVideo(path);
  } catch (e) {
    throw withFile(e, path, 'give a readable video (mp4, mov, webm, ...)');
  }
  const count = Math.min(info.frameCount ?? Infinity, limit ?? Infinity);
  if (!Number.isFinite(count) || count <= 0) throw new CliError(`driving video ${path} has no frames; give another video`);
  const crop = r.cropDriving ?? info.width !== info.height;
  const read = () => readVideoFrames(path, { maxFrames: count, info });
  const plan: DrivingPlan = {
    kind,
    count,
    fps: info.fpsRational ?? info.fps,
    isVideo: true,
    info,
    hasAudio: info.hasAudio,
    frames: async function* () {
      let prev: Point2[] | undefined;
      for await (const f of read()) {
        const panel = resizeImage(f, 256, 256, 'linear');
        let ratios = {};
        if (needRatios) {
          const face = await (await loadFaceDetector()).track(f, prev);
          prev = face?.landmarks;
          ratios = ratiosOf(prev);
        }
        yield { panel, frame: { image: panel, ...ratios } };
      }
    },
  };
  if (!crop) return plan;
  // The reference's crop_driving_video: track, one averaged box, crop every frame with it.
  const bar = progress ? new Progress('Tracking the driving face', count, { stream: progress }) : undefined;
  const lmks: (Point2[] | undefined)[] = [];
  let prev: Point2[] | undefined;
  try {
    for await (const f of read()) {
      const face: Face | undefined = await (await loadFaceDetector()).track(f, prev);
      prev = face?.landmarks;
      lmks.push(prev);
      bar?.tick();
    }
  } catch (e) {
    throw withFile(e, path);
  } finally {
    bar?.finish();
  }
  const kept = lmks.filter((l): l is Point2[] => !!l);
  if (kept.length === 0)
    throw new CliError(`no face found in the driving video ${path}; use a video with a clearly visible face, or a square face-cropped video without --crop-driving`);
  if (kept.length < lmks.length) r.log?.(`note: ${lmks.length - kept.length} driving frame(s) without a face are skipped, as the reference does`);
  const bbox = drivingBbox(kept);
  plan.count = kept.length;
  plan.frames = async function* () {
    let i = 0;
    for await (const f of read()) {
      const l = lmks[i++];
      if (!l) continue;
      const c = cropImageByBbox(f, bbox, l);
      yield { panel: c.imgCrop256, frame: { image: c.imgCrop256, ...ratiosOf(c.lmkCrop) } };
    }
  };
  return plan;
}

// ------------------------------------------------------------------ writers

interface Outputs {
  main?: VideoWriter;
  concat?: VideoWriter;
  gif?: VideoWriter;
}

async function abortAll(o: Outputs): Promise<void> {
  for (const w of [o.main, o.concat, o.gif]) await w?.abort().catch(() => undefined);
}

/** Panels scaled to one height (aspect kept) and joined left to right. */
function panelRow(panels: RgbImage[], height: number): RgbImage {
  const fit = panels.map((p) => {
    const w = Math.max(2, Math.round((p.width * height) / p.height / 2) * 2);
    return p.width === w && p.height === height ? p : resizeImage(p, w, height, 'linear');
  });
  return hstackImages(fit);
}

// ------------------------------------------------------------------ animate

/**
 * Run the whole pipeline for one source and one driving input. See the
 * module comment; errors are CliErrors with one-line messages, and no
 * output is left behind on failure.
 */
export async function animate(req: AnimateRequest): Promise<AnimateResult> {
  const t0 = Date.now();
  const r = { ...req };
  const log = r.log ?? (() => undefined);
  const progress = r.progress ?? false;
  const outputDir = resolve(r.outputDir ?? 'animations');
  if (r.maxFrames !== undefined && !(Number.isInteger(r.maxFrames) && r.maxFrames > 0)) throw new UsageError(`--max-frames must be a positive integer, got ${r.maxFrames}`);
  if (r.faceIndex !== undefined && !(Number.isInteger(r.faceIndex) && r.faceIndex >= 0)) throw new UsageError(`--face-index must be 0 or more, got ${r.faceIndex}`);
  if (r.crf !== undefined && !(r.crf >= 0 && r.crf <= 51)) throw new UsageError(`--crf must be between 0 and 51, got ${r.crf}`);
  const sourceKind = classifyInput(r.source, 'source');
  const drivingKind = classifyInput(r.driving, 'driving');
  if (sourceKind === 'template') throw new CliError(`source ${r.source}: a motion template cannot be a source; give an image or a video`);
  if (r.allFaces && sourceKind === 'video') throw new UsageError('--all-faces works with a source image only; animate a video source one face at a time with --face-index');
  if (r.allFaces && r.crop === false) throw new UsageError('--all-faces needs face cropping; drop --no-crop');
  if (existsSync(outputDir) && !statSync(outputDir).isDirectory()) throw new CliError(`output directory ${outputDir} is a file; give -o a directory`);

  await ensureBackend(r, log);
  // Weights are checked first (cheap when missing), loaded when first needed: bad inputs fail fast.
  if (!r.model && weightsSpec(r) !== 'synthetic') loadModelCheck(r);
  let model: LivePortrait | undefined;
  const lp = () => (model ??= loadModel(r));
  const opts = animationOptions(r);
  const cropOpts = { scale: r.scale, vxRatio: r.vxRatio, vyRatio: r.vyRatio, doRot: r.doRot };
  for (const k of Object.keys(cropOpts) as (keyof typeof cropOpts)[]) if (cropOpts[k] === undefined) delete cropOpts[k];
  const doCrop = r.crop ?? true;
  const stitching = r.stitching ?? true;
  let doPaste = (r.pasteBack ?? true) && doCrop && stitching;
  if (r.allFaces) {
    if (r.pasteBack === false) throw new UsageError('--all-faces stitches every face back into the photo; drop --no-paste-back');
    doPaste = true;
  } else if ((r.pasteBack ?? true) && doCrop && !stitching) log('note: without stitching the animated crop is written as is (no paste-back), as the reference does');

  // A source video's frame count bounds the driving frames read.
  let sourceInfo: VideoInfo | undefined;
  if (sourceKind === 'video') {
    try {
      sourceInfo = await probeVideo(r.source);
    } catch (e) {
      throw withFile(e, r.source, 'give a readable video (mp4, mov, webm, ...)');
    }
  }
  const limit = Math.min(r.maxFrames ?? Infinity, sourceInfo?.frameCount ?? Infinity);
  const driving = await planDrivingFrames(r, drivingKind, Number.isFinite(limit) ? limit : undefined, progress);

  const name = `${stem(r.source)}--${stem(r.driving)}`;
  const imageOut = sourceKind === 'image' && !driving.isVideo;
  const ext = imageOut ? extname(r.source).toLowerCase().replace('.jpeg', '.jpg') : '.mp4';
  const outExt = imageOut ? (['.jpg', '.png', '.bmp'].includes(ext) ? ext : '.jpg') : '.mp4';
  const outPath = join(outputDir, `${name}${outExt}`);
  const concatPath = join(outputDir, `${name}_concat${outExt}`);
  const gifPath = join(outputDir, `${name}.gif`);
  const wantConcat = r.concat ?? true;
  const wantGif = !!r.gif && !imageOut;
  if (r.gif && imageOut) log('note: --gif is ignored: an image driving an image gives a picture, not a video');

  const outFps = sourceKind === 'video' ? sourceInfo!.fpsRational ?? sourceInfo!.fps : driving.fps;
  const fpsNum = typeof outFps === 'number' ? outFps : outFps.num / outFps.den;
  // Audio: the reference's audio_priority (driving first, else the source video).
  const sourceHasAudio = sourceKind === 'video' && (await hasAudioStream(r.source));
  const drivingHasAudio = driving.kind === 'video' && driving.hasAudio;
  let audioFrom: string | undefined;
  if (sourceHasAudio || drivingHasAudio) audioFrom = (drivingHasAudio && (r.audioPriority ?? 'driving') === 'driving') || !sourceHasAudio ? r.driving : r.source;

  const outputs: Outputs = {};
  const open = (path: string, w: number, h: number, format: 'mp4' | 'gif') =>
    openVideoWriter(path, { width: w, height: h, fps: outFps, crf: r.crf, format, audioFrom: format === 'mp4' ? audioFrom : undefined });
  let frames = 0;
  let faceCount = 1;
  const total = sourceKind === 'video' ? Math.min(driving.isVideo ? driving.count : Infinity, limit, sourceInfo!.frameCount ?? Infinity) : driving.count;
  let bar: Progress | undefined;
  const startBar = () => (bar ??= progress ? new Progress('Animating', Number.isFinite(total) ? total : undefined, { stream: progress }) : undefined);
  const emit: Emit = async (result: RgbImage, concatPanels: () => RgbImage) => {
    if (imageOut) {
      await writeImage(outPath, result);
      if (wantConcat) await writeImage(concatPath, concatPanels());
    } else {
      outputs.main ??= open(outPath, result.width, result.height, 'mp4');
      await outputs.main.write(result);
      if (wantGif) {
        outputs.gif ??= open(gifPath, result.width, result.height, 'gif');
        await outputs.gif.write(result);
      }
      if (wantConcat) {
        const c = concatPanels();
        outputs.concat ??= open(concatPath, c.width, c.height, 'mp4');
        await outputs.concat.write(c);
      }
    }
    frames++;
    startBar()?.tick();
  };
  emit.begin = () => void startBar();

  try {
    if (sourceKind === 'image') faceCount = await animateImageSource(r, lp, opts, driving, doCrop, doPaste, cropOpts, emit);
    else await animateVideoSource(r, lp, opts, driving, sourceInfo!, doCrop, doPaste, cropOpts, limit, emit, progress);
    if (frames === 0) throw new CliError(`nothing to animate: no driving frames in ${r.driving}`);
    for (const w of [outputs.main, outputs.concat, outputs.gif]) await w?.close();
  } catch (e) {
    await abortAll(outputs);
    if (e instanceof CliError) throw e;
    let msg = userMessage(e);
    if (e instanceof LipArrayMissingError)
      msg += `; put the reference's src/utils/resources/lip_array.pkl (github.com/KwaiVGI/LivePortrait) in ${resolve(weightsSpec(r))} or pass --lip-array FILE, or use --no-relative`;
    throw new CliError(msg, { cause: e });
  } finally {
    bar?.finish();
  }
  const seconds = (Date.now() - t0) / 1000;
  const written = [outPath, ...(wantConcat ? [concatPath] : []), ...(wantGif ? [gifPath] : [])];
  const result: AnimateResult = {
    output: outPath,
    concat: wantConcat ? concatPath : undefined,
    gif: wantGif ? gifPath : undefined,
    frames,
    seconds,
    fps: seconds > 0 ? frames / seconds : 0,
    faces: faceCount,
    outputFps: fpsNum,
    audioFrom: outputs.main?.audioAdded ? audioFrom : undefined,
    summary: summaryLine(frames, seconds, written),
  };
  return result;
}

/** Write one result frame; `begin` is called once when the frame loop starts (progress timing). */
type Emit = ((result: RgbImage, concatPanels: () => RgbImage) => Promise<void>) & { begin?: () => void };

interface SourceFace {
  crop: CropResult;
  info: SourceInfo;
  mask?: PasteBackMask;
}

/** Start (or stop) the frame workers the options ask for. */
async function ensureWorkers(lp: LivePortrait, opts: ModelOptions): Promise<void> {
  if (opts.model && opts.workers === undefined) return;
  const want = opts.workers ?? defaultWorkerCount(backendInfo()?.name);
  if (!Number.isInteger(want) || want < 0) throw new UsageError(`--workers must be a non-negative integer, got ${want}`);
  if (lp.workers === want) return;
  try {
    await startFrameWorkers(lp, want, { backend: opts.backend });
  } catch (e) {
    throw new CliError(`could not start ${want} frame worker(s): ${userMessage(e)}; try --workers 0`, { cause: e });
  }
}

async function animateImageSource(
  r: AnimateRequest,
  getLp: () => LivePortrait,
  opts: Partial<AnimationOptions>,
  driving: DrivingPlan,
  doCrop: boolean,
  doPaste: boolean,
  cropOpts: object,
  emit: Emit,
): Promise<number> {
  let img: RgbImage;
  try {
    img = resizeToLimit(await readImage(r.source), r.sourceMaxDim ?? 1280, 2);
  } catch (e) {
    throw withFile(e, r.source);
  }
  let crops: CropResult[];
  let lmks: (Point2[] | undefined)[];
  if (doCrop) {
    const faces = await (await loadFaceDetector()).detect(img);
    if (faces.length === 0) throw new CliError(`no face found in the source ${r.source}; ${NO_FACE_FIX}`);
    let chosen = faces;
    if (!r.allFaces) {
      const i = r.faceIndex ?? 0;
      if (i >= faces.length) throw new CliError(`--face-index ${i} is out of range: ${faces.length} face(s) found in ${r.source} (largest first, from 0)`);
      chosen = [faces[i]];
    }
    crops = chosen.map((f) => cropImage(img, f.landmarks, cropOpts));
    lmks = chosen.map((f) => f.landmarks);
    r.log?.(`source ${r.source}: ${faces.length} face(s) found, animating ${chosen.length}`);
  } else {
    const small = resizeImage(img, 256, 256, 'linear');
    const face = (await (await loadFaceDetector()).detect(img, { maxFaces: 1 }))[0];
    crops = [{ imgCrop: img, imgCrop256: small, M_o2c: [1, 0, 0, 0, 1, 0], M_c2o: [1, 0, 0, 0, 1, 0], lmkCrop: [], lmkCrop256: [] }];
    lmks = [face?.landmarks];
  }
  const faces: SourceFace[] = [];
  const lp = getLp();
  try {
    for (const [k, c] of crops.entries()) {
      faces.push({ crop: c, info: lp.prepareSource(c.imgCrop256, ratiosOf(lmks[k])), mask: doPaste ? preparePasteBack(c.M_c2o, img.width, img.height) : undefined });
    }
    await ensureWorkers(lp, r);
    emit.begin?.();
    // The library's animation loop (motion and keypoints in order, W and G
    // here or in the workers); paste-back and the comparison panels here.
    async function* inputs() {
      for await (const item of driving.frames()) yield item.frame;
    }
    const infos = faces.map((f) => f.info);
    for await (const out of lp.animateFaces(infos, inputs(), opts, { drivingIsVideo: driving.isVideo })) {
      const results: RgbImage[] = out.faces.map((f) => ({ width: f.width, height: f.height, data: f.rgb }));
      let result = results[0];
      if (doPaste) {
        result = img;
        faces.forEach((f, k) => (result = pasteBack(results[k], f.crop.M_c2o, result, f.mask!)));
      }
      const panel = 'image' in out.input ? (out.input.image as RgbImage) : undefined;
      const concat = () => (faces.length === 1 ? concatFrame(panel, faces[0].crop.imgCrop256, results[0]) : panelRow([...(panel ? [panel] : []), img, result], 512));
      await emit(result, concat);
    }
  } finally {
    for (const f of faces) lp.disposeSource(f.info);
  }
  return faces.length;
}

async function animateVideoSource(
  r: AnimateRequest,
  getLp: () => LivePortrait,
  opts: Partial<AnimationOptions>,
  driving: DrivingPlan,
  info: VideoInfo,
  doCrop: boolean,
  doPaste: boolean,
  cropOpts: object,
  limit: number,
  emit: Emit,
  progress: ProgressStream | false,
): Promise<void> {
  const maxDim = r.sourceMaxDim ?? 1280;
  // Driving items first (their count bounds the source frames read).
  const drv: DrivingItem[] = [];
  for await (const it of driving.frames()) drv.push(it);
  const n = Math.min(Number.isFinite(limit) ? limit : Infinity, info.frameCount ?? Infinity, driving.isVideo ? drv.length : Infinity);
  const read = () => readVideoFrames(r.source, { maxFrames: Number.isFinite(n) ? n : undefined, info });
  // Source crops, per frame (the reference's crop_source_video: frames without a face are skipped).
  const src: { index: number; crop256: RgbImage; M_c2o: CropResult['M_c2o']; lmk?: Point2[] }[] = [];
  let prev: Point2[] | undefined;
  let idx = 0;
  const cropBar = progress ? new Progress('Cropping the source video', Number.isFinite(n) ? n : undefined, { stream: progress }) : undefined;
  try {
    for await (const raw of read()) {
      cropBar?.tick();
      const f = resizeToLimit(raw, maxDim, 2);
      const face = await (await loadFaceDetector()).track(f, prev);
      prev = face?.landmarks;
      if (doCrop) {
        if (face) {
          const c = cropImage(f, face.landmarks, cropOpts);
          src.push({ index: idx, crop256: c.imgCrop256, M_c2o: c.M_c2o, lmk: face.landmarks });
        }
      } else src.push({ index: idx, crop256: resizeImage(f, 256, 256, 'linear'), M_c2o: [1, 0, 0, 0, 1, 0], lmk: face?.landmarks });
      idx++;
    }
  } catch (e) {
    throw withFile(e, r.source);
  } finally {
    cropBar?.finish();
  }
  if (src.length === 0) throw new CliError(`no face found in the source video ${r.source}; ${NO_FACE_FIX}`);
  const count = driving.isVideo ? Math.min(src.length, drv.length) : src.length;
  const lp = getLp();
  await ensureWorkers(lp, r);
  r.log?.(`source video ${r.source}: ${src.length} frame(s) with a face; extracting the motion of every frame first (for smoothing)`);
  const sourceFrames = src.slice(0, count).map((s) => ({ image: s.crop256, ...ratiosOf(s.lmk) }));
  const drivingInput: DrivingInput =
    driving.kind === 'template'
      ? { fps: 25, frames: drv.map((d) => d.frame as MotionFrame) }
      : driving.isVideo
        ? drv.slice(0, count).map((d) => d.frame as DrivingFrameInput)
        : (drv[0].frame as DrivingFrameInput);
  // Originals for paste-back, read again in step with the results.
  const originals = doPaste ? read()[Symbol.asyncIterator]() : undefined;
  let origIdx = -1;
  let original: RgbImage | undefined;
  const originalAt = async (i: number): Promise<RgbImage> => {
    while (origIdx < i) {
      const nx = await originals!.next();
      if (nx.done) throw new CliError(`source video ${r.source} ended early while pasting back`);
      original = resizeToLimit(nx.value, maxDim, 2);
      origIdx++;
    }
    return original!;
  };
  try {
    let i = 0;
    emit.begin?.();
    for await (const out of lp.animateSourceVideo(sourceFrames, drivingInput, opts)) {
      const s = src[i];
      const crop: RgbImage = { width: out.width, height: out.height, data: out.rgb };
      let result = crop;
      if (doPaste) {
        const o = await originalAt(s.index);
        result = pasteBack(crop, s.M_c2o, o, preparePasteBack(s.M_c2o, o.width, o.height));
      }
      const panel = driving.isVideo ? drv[i]?.panel : drv[0]?.panel;
      await emit(result, () => concatFrame(panel, s.crop256, crop));
      i++;
    }
  } finally {
    await originals?.return?.();
  }
}
