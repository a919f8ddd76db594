/**
 * End to end: photo or video in, video out (the reference's
 * LivePortraitPipeline.execute): read the source (image or video) and the
 * driving input (video, image or motion template), crop the faces, animate,
 * paste the result back into the original, and write the result and the
 * side-by-side comparison (`<source>--<driving>.mp4`,
 * `<source>--<driving>_concat.mp4`) with the driving's frame rate and audio.
 * Outputs are written under temporary names and renamed at the end.
 */
import { extname, join, resolve } from 'node:path';
import { LipArrayMissingError } from '../../errors.js';
import { type RgbImage, resizeImage, resizeToLimit } from '../../image/image.js';
import type { Point2 } from '../../image/affine.js';
import { concatFrame, hstackImages } from '../../image/concat.js';
import { type CropBox, type CropOptions, type CropResult, cropImage, cropImageByBox, parseCropBox, wholeImageCrop, scaleCropBox } from '../../face/crop.js';
import { type PasteBackMask, pasteBack, preparePasteBack } from '../../face/paste_back.js';
import { ratiosFromLandmarks } from '../../face/ratios.js';
import type { MotionFrame } from '../../formats/template.js';
import type { AnimationOptions, AnimationRegion, DrivingOption } from '../../motion/options.js';
import type { DrivingFrameInput, DrivingInput, LivePortrait, SourceInfo } from '../../pipeline/live_portrait.js';
import { loadFaceDetector } from '../face_models.js';
import { readImage, writeImage } from '../image_files.js';
import { OutputDirError, prepareOutputDir, removeCreatedDirs } from '../output.js';
import { hasAudioStream, openVideoWriter, probeVideo, readVideoFrames, type VideoInfo, type VideoWriter } from '../video.js';
import { type DrivingItem, type DrivingPlan, drivingIsVideo, planDrivingFrames } from './driving.js';
import { CliError, UsageError, userMessage, withFile } from './errors.js';
import { type InputKind, NO_FACE_FIX, NO_FACE_FIX_ANIMAL, checkNotExisting, classifyInput, drivingTag, facesNote, shrinkNote, stem } from './inputs.js';
import { type ModelOptions, ensureBackend, ensureWorkers, loadModel, loadModelCheck, weightsSpec } from './model.js';
import { Progress, summaryLine, type ProgressStream } from './progress.js';

export interface AnimateRequest extends ModelOptions {
  source: string;
  driving: string;
  /** Output directory (default 'animations'; created, and checked for writing, before any work). */
  outputDir?: string;
  /** Replace existing outputs (default false: a run that would replace a file stops before any work). */
  overwrite?: boolean;
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
  /**
   * The reference's animal pipeline (`--animal`): a source image of an animal
   * driven by a human video or template; only stitching and the multiplier
   * apply. Selects the animal weight set unless `set` says otherwise.
   */
  animal?: boolean;
  /**
   * A crop placed by hand instead of the detected face (`--crop-box
   * X,Y,SIZE[,ANGLE]`, source pixels: top-left corner and side of the square,
   * roll in degrees clockwise); pasted back like a detected crop.
   */
  cropBox?: CropBox | string;
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
    animal: r.animal,
  };
}

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

/**
 * Run the whole pipeline for one source and one driving input. See the
 * module comment; errors are CliErrors with one-line messages, and no
 * output is left behind on failure.
 */
export async function animate(req: AnimateRequest): Promise<AnimateResult> {
  const t0 = Date.now();
  const r = { ...req };
  const { plan, created } = checkAnimate(r);
  try {
    return await animateInto(r, { ...plan, t0, log: r.log ?? (() => undefined), progress: r.progress ?? false });
  } catch (e) {
    removeCreatedDirs(created);
    throw e;
  }
}

/**
 * Everything animate() checks before any work, cheaply (no backend, no
 * model, no decoding): the options, the input files, the output names (an
 * existing file stops the run unless `overwrite`), and the output folder,
 * created and checked for writing. Returns what it decided and the folders it
 * created (removeCreatedDirs takes them away again when the run fails).
 */
export function checkAnimate(r: AnimateRequest): { plan: OutputPlan; created: string[]; outputDir: string } {
  const outputDir = resolve(r.outputDir ?? 'animations');
  if (r.maxFrames !== undefined && !(Number.isInteger(r.maxFrames) && r.maxFrames > 0)) throw new UsageError(`--max-frames must be a positive integer, got ${r.maxFrames}`);
  if (r.faceIndex !== undefined && !(Number.isInteger(r.faceIndex) && r.faceIndex >= 0)) throw new UsageError(`--face-index must be 0 or more, got ${r.faceIndex}`);
  if (r.crf !== undefined && !(r.crf >= 0 && r.crf <= 51)) throw new UsageError(`--crf must be between 0 and 51, got ${r.crf}`);
  const sourceKind = classifyInput(r.source, 'source');
  const drivingKind = classifyInput(r.driving, 'driving');
  if (sourceKind === 'template') throw new CliError(`source ${r.source}: a motion template cannot be a source; give an image or a video`);
  if (r.allFaces && sourceKind === 'video') throw new UsageError('--all-faces works with a source image only; animate a video source one face at a time with --face-index');
  if (r.allFaces && r.crop === false) throw new UsageError('--all-faces needs face cropping; drop --no-crop');
  if (r.cropBox !== undefined) {
    try {
      r.cropBox = typeof r.cropBox === 'string' ? parseCropBox(r.cropBox) : r.cropBox;
    } catch (e) {
      throw new UsageError(userMessage(e));
    }
    if (r.crop === false) throw new UsageError('--crop-box places the crop, --no-crop turns cropping off: give one of them');
    if (r.allFaces) throw new UsageError('--crop-box places one crop; drop --all-faces');
  }
  if (r.animal) {
    if (sourceKind === 'video') throw new UsageError('--animal animates a source image (as the reference); give an image with -s');
    if (drivingKind === 'image') throw new UsageError('--animal is driven by a video or a motion template (as the reference); give one with -d');
    if (r.allFaces) throw new UsageError('--animal animates one face; drop --all-faces');
    if (r.eyeRetargeting || r.lipRetargeting) r.log?.('note: --animal ignores eye and lip retargeting, as the reference does');
    // The animal weight set unless another is asked for.
    r.set ??= 'animal';
  }

  // The output names (the driving's kind decides between a picture and a video), then the folder: before any work.
  const name = `${stem(r.source)}--${stem(r.driving)}${drivingTag(r.driving)}`;
  const imageOut = sourceKind === 'image' && !drivingIsVideo(drivingKind, r.driving);
  const ext = imageOut ? extname(r.source).toLowerCase().replace('.jpeg', '.jpg') : '.mp4';
  const outExt = imageOut ? (['.jpg', '.png', '.bmp'].includes(ext) ? ext : '.jpg') : '.mp4';
  const outPath = join(outputDir, `${name}${outExt}`);
  const concatPath = join(outputDir, `${name}_concat${outExt}`);
  const gifPath = join(outputDir, `${name}.gif`);
  const wantConcat = r.concat ?? true;
  const wantGif = !!r.gif && !imageOut;
  const written = [outPath, ...(wantConcat ? [concatPath] : []), ...(wantGif ? [gifPath] : [])];
  if (!r.overwrite) checkNotExisting(written);
  let created: string[];
  try {
    created = prepareOutputDir(outputDir);
  } catch (e) {
    if (e instanceof OutputDirError) throw new CliError(`${e.message}; give -o a folder you can write to`, { cause: e });
    throw e;
  }
  return { plan: { sourceKind, drivingKind, imageOut, outPath, concatPath, gifPath, wantConcat, wantGif, written }, created, outputDir };
}

interface OutputPlan {
  sourceKind: InputKind;
  drivingKind: InputKind;
  imageOut: boolean;
  outPath: string;
  concatPath: string;
  gifPath: string;
  wantConcat: boolean;
  wantGif: boolean;
  written: string[];
}

interface Plan extends OutputPlan {
  t0: number;
  log: (line: string) => void;
  progress: ProgressStream | false;
}

async function animateInto(r: AnimateRequest, { t0, log, progress, sourceKind, drivingKind, imageOut, outPath, concatPath, gifPath, wantConcat, wantGif, written }: Plan): Promise<AnimateResult> {
  await ensureBackend(r, log);
  // Weights are checked first (cheap when missing), loaded when first needed: bad inputs fail fast.
  if (!r.model && weightsSpec(r) !== 'synthetic') loadModelCheck(r);
  let model: LivePortrait | undefined;
  const lp = () => (model ??= loadModel(r));
  // The frame workers start now and load their W and G while this thread reads the inputs, finds
  // the faces and runs F and M: the start-up overlaps the rest instead of preceding the first frame.
  const workersReady = ensureWorkers(lp(), r, log);
  workersReady.catch(() => undefined); // awaited before the first frame; an input error may come first
  const opts = animationOptions(r);
  const cropOpts: CropOptions = {};
  if (r.scale !== undefined) cropOpts.scale = r.scale;
  if (r.vxRatio !== undefined) cropOpts.vxRatio = r.vxRatio;
  if (r.vyRatio !== undefined) cropOpts.vyRatio = r.vyRatio;
  if (r.doRot !== undefined) cropOpts.doRot = r.doRot;
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
  if (imageOut !== (sourceKind === 'image' && !driving.isVideo)) throw new CliError(`driving ${r.driving} changed while reading it; run again`);
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
    const run: Run = { r, getLp: lp, workersReady, opts, driving, doCrop, doPaste, cropOpts, limit, emit, progress };
    if (sourceKind === 'image') faceCount = await animateImageSource(run);
    else await animateVideoSource(run, sourceInfo!);
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

/**
 * --crop-box in the working image's pixels: the box is given in the source
 * file's pixels, the working image is shrunk to sourceMaxDim.
 */
function sourceBox(r: AnimateRequest, img: RgbImage, o: { width: number; height: number }): CropBox {
  const box = r.cropBox as CropBox;
  const maxDim = r.sourceMaxDim ?? 1280;
  const k = maxDim > 0 && Math.max(o.width, o.height) > maxDim ? maxDim / Math.max(o.width, o.height) : 1;
  const b = k === 1 ? box : scaleCropBox(box, k);
  if (b.x >= img.width || b.y >= img.height || b.x + b.size <= 0 || b.y + b.size <= 0)
    throw new UsageError(`--crop-box ${fmtBox(box)} lies outside the ${o.width}x${o.height} source ${r.source}; give the top-left corner and side of a square over the face, in source pixels`);
  return b;
}

function fmtBox(b: CropBox): string {
  const f = (v: number) => String(Math.round(v * 10) / 10);
  return [b.x, b.y, b.size, ...(b.angle ? [b.angle] : [])].map(f).join(',');
}

/** Write one result frame; `begin` is called once when the frame loop starts (progress timing). */
type Emit = ((result: RgbImage, concatPanels: () => RgbImage) => Promise<void>) & { begin?: () => void };

interface SourceFace {
  crop: CropResult;
  info: SourceInfo;
  mask?: PasteBackMask;
}


/** What both source modes share: the request, the model (loaded when first needed), the driving frames and the choices made. */
interface Run {
  r: AnimateRequest;
  getLp: () => LivePortrait;
  /** The frame workers' start-up, begun with the run. */
  workersReady: Promise<void>;
  opts: Partial<AnimationOptions>;
  driving: DrivingPlan;
  /** Crop the source to its face(s). */
  doCrop: boolean;
  /** Paste the animated crop back into the source. */
  doPaste: boolean;
  cropOpts: CropOptions;
  /** Most frames to animate (Infinity: all). */
  limit: number;
  emit: Emit;
  progress: ProgressStream | false;
}

async function animateImageSource({ r, getLp, workersReady, opts, driving, doCrop, doPaste, cropOpts, emit }: Run): Promise<number> {
  let img: RgbImage;
  let original: RgbImage;
  try {
    original = await readImage(r.source);
    img = resizeToLimit(original, r.sourceMaxDim ?? 1280, 2);
    const note = shrinkNote(original, img, r.sourceMaxDim ?? 1280);
    if (note) r.log?.(note);
  } catch (e) {
    throw withFile(e, r.source);
  }
  let crops: CropResult[];
  let lmks: (Point2[] | undefined)[];
  if (doCrop && r.cropBox) {
    const box = sourceBox(r, img, original);
    crops = [cropImageByBox(img, box)];
    lmks = [undefined];
    // Eye/lip ratios (scale-free) from landmarks found in the placed crop, when the options need them.
    if (!r.animal && (r.eyeRetargeting || r.lipRetargeting || r.normalizeLip)) {
      const face = (await (await loadFaceDetector()).detect(crops[0].imgCrop, { maxFaces: 1 }))[0];
      lmks = [face?.landmarks];
      if (!face) r.log?.('note: no face landmarks in the placed crop: the source has no eye/lip ratios');
    }
    r.log?.(`source ${r.source}: crop placed at ${fmtBox(box)} (pixels of the ${img.width}x${img.height} working image)`);
  } else if (doCrop) {
    const faces = await (await loadFaceDetector()).detect(img);
    if (faces.length === 0) throw new CliError(`no face found in the source ${r.source}; ${r.animal ? NO_FACE_FIX_ANIMAL : NO_FACE_FIX}`);
    if (r.animal) r.log?.('note: --animal: no animal face detector here, the human one found a face; place the crop with --crop-box if it is wrong');
    let chosen = faces;
    if (!r.allFaces) {
      const i = r.faceIndex ?? 0;
      if (i >= faces.length) throw new CliError(`--face-index ${i} is out of range: ${faces.length} face(s) found in ${r.source} (largest first, from 0)`);
      chosen = [faces[i]];
    }
    crops = chosen.map((f) => cropImage(img, f.landmarks, cropOpts));
    lmks = chosen.map((f) => f.landmarks);
    r.log?.(facesNote(r.source, faces.length, r.allFaces ? 'all' : (r.faceIndex ?? 0)));
  } else {
    const face = (await (await loadFaceDetector()).detect(img, { maxFaces: 1 }))[0];
    crops = [wholeImageCrop(img)];
    lmks = [face?.landmarks];
  }
  const faces: SourceFace[] = [];
  const lp = getLp();
  try {
    for (const [k, c] of crops.entries()) {
      faces.push({ crop: c, info: await lp.prepareSource(c.imgCrop256, ratiosFromLandmarks(lmks[k])), mask: doPaste ? preparePasteBack(c.M_c2o, img.width, img.height) : undefined });
    }
    await workersReady;
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

async function animateVideoSource({ r, getLp, workersReady, opts, driving, doCrop, doPaste, cropOpts, limit, emit, progress }: Run, info: VideoInfo): Promise<void> {
  // Nothing here grows with the length of the videos: the source video is read again for each pass
  // (its crops made again from the landmarks kept), the driving frames are streamed, and the library
  // keeps only their motion (a few hundred numbers a frame).
  const maxDim = r.sourceMaxDim ?? 1280;
  const template = driving.kind === 'template' ? (await collect(driving.frames())).map((d) => d.frame as MotionFrame) : undefined;
  // The driving frames' count bounds the source frames read (a driving video's faceless frames are skipped).
  let drivingCount = template?.length ?? 0;
  if (!template && driving.isVideo) for await (const _ of driving.frames()) drivingCount++;
  const firstDriving = !template && !driving.isVideo ? (await driving.frames().next()).value as DrivingItem | undefined : undefined;
  const n = Math.min(Number.isFinite(limit) ? limit : Infinity, info.frameCount ?? Infinity, driving.isVideo ? drivingCount : Infinity);
  const read = () => readVideoFrames(r.source, { maxFrames: Number.isFinite(n) ? n : undefined, info });
  // Where each source frame's crop is (the reference's crop_source_video: frames without a face are skipped).
  const src: { index: number; M_c2o: CropResult['M_c2o']; lmk?: Point2[] }[] = [];
  const cropOf = (f: RgbImage, raw: RgbImage, lmk: Point2[] | undefined): CropResult | undefined => {
    if (doCrop && r.cropBox) return cropImageByBox(f, sourceBox(r, f, raw));
    if (doCrop) return lmk ? cropImage(f, lmk, cropOpts) : undefined;
    return wholeImageCrop(f);
  };
  let prev: Point2[] | undefined;
  let idx = 0;
  const cropBar = progress ? new Progress('Cropping the source video', Number.isFinite(n) ? n : undefined, { stream: progress }) : undefined;
  try {
    for await (const raw of read()) {
      cropBar?.tick();
      const f = resizeToLimit(raw, maxDim, 2);
      if (idx === 0) {
        const note = shrinkNote(raw, f, maxDim);
        if (note) r.log?.(note.replace(/^source/, 'source video'));
      }
      let lmk: Point2[] | undefined;
      if (!(doCrop && r.cropBox)) {
        const face = await (await loadFaceDetector()).track(f, prev);
        lmk = prev = face?.landmarks;
      }
      const c = cropOf(f, raw, lmk);
      if (c) src.push({ index: idx, M_c2o: c.M_c2o, lmk });
      idx++;
    }
  } catch (e) {
    throw withFile(e, r.source);
  } finally {
    cropBar?.finish();
  }
  if (src.length === 0) throw new CliError(`no face found in the source video ${r.source}; ${NO_FACE_FIX}`);
  const count = driving.isVideo ? Math.min(src.length, drivingCount) : src.length;
  const lp = getLp();
  await workersReady;
  r.log?.(`source video ${r.source}: ${src.length} frame(s) with a face; extracting the motion of every frame first (for smoothing)`);
  // The crops of the pass that renders, kept until their frame is out (for the comparison panel).
  let pass = 0;
  const rendering = new Map<number, RgbImage>();
  async function* sourceFrames(): AsyncGenerator<DrivingFrameInput> {
    const record = ++pass === 2;
    let i = 0;
    let k = 0;
    for await (const raw of read()) {
      if (i >= count) return;
      if (src[i].index === k) {
        const f = resizeToLimit(raw, maxDim, 2);
        const crop256 = cropOf(f, raw, src[i].lmk)!.imgCrop256;
        if (record) rendering.set(i, crop256);
        yield { image: crop256, ...ratiosFromLandmarks(src[i].lmk) };
        i++;
      }
      k++;
    }
  }
  async function* drivingStream(): AsyncGenerator<DrivingFrameInput> {
    let i = 0;
    for await (const d of driving.frames()) {
      if (i++ >= count) return;
      yield d.frame as DrivingFrameInput;
    }
  }
  const drivingInput: DrivingInput = template ? { fps: 25, frames: template } : driving.isVideo ? drivingStream() : (firstDriving!.frame as DrivingFrameInput);
  // Originals for paste-back and driving panels, read again in step with the results.
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
  let panels: AsyncIterator<DrivingItem> | undefined;
  let panelIdx = -1;
  let panel: RgbImage | undefined = firstDriving?.panel;
  const panelAt = async (i: number): Promise<RgbImage | undefined> => {
    if (!driving.isVideo || template) return panel;
    panels ??= driving.frames()[Symbol.asyncIterator]();
    while (panelIdx < i) {
      const nx = await panels.next();
      panel = nx.done ? undefined : nx.value.panel;
      panelIdx++;
    }
    return panel;
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
      const crop256 = rendering.get(i)!;
      rendering.delete(i);
      const p = await panelAt(i);
      await emit(result, () => concatFrame(p, crop256, crop));
      i++;
    }
  } finally {
    await originals?.return?.();
    await panels?.return?.();
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const x of it) all.push(x);
  return all;
}
