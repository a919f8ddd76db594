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
import type { CropBox } from '../../face/crop.js';
import { parseCropBox } from '../../face/crop.js';
import type { AnimationOptions, AnimationRegion, DrivingOption } from '../../motion/options.js';
import { type Driving, type DrivingPlan, fpsValue } from '../../pipeline/driving.js';
import { faceDrivingList, parseReferenceFrame } from './face_drivings.js';
import { limitedSize } from '../../image/image.js';
import { type Portrait, type PortraitVideo, SOURCE_MAX_DIM, type SourceOptions } from '../../pipeline/portrait.js';
import { writeImage } from '../image_files.js';
import { OutputDirError, prepareOutputDir, removeCreatedDirs } from '../output.js';
import { type VideoWriter, openVideoWriter } from '../video.js';
import { CliError, UsageError, userMessage } from './errors.js';
import { type InputKind, checkNotExisting, classifyInput, drivingIsVideo, drivingTag, facesNote, shrinkNote, stem } from './inputs.js';
import { type ModelOptions, ensureBackend, ensureWorkers, loadModel, loadModelCheck, weightsSpec } from './model.js';
import { cliMessage, openDriving, openVideoFile, progressBars, readSourceImage } from './open.js';
import { summaryLine, type ProgressStream } from './progress.js';

export interface AnimateRequest extends ModelOptions {
  source: string;
  /** The driving input; several (with allFaces): one per face, left to right. */
  driving: string | string[];
  /** One driving per face by position from the left: `0:a.mp4,2:b.mp4` (with allFaces; the others stay still). */
  faceDrivings?: string;
  /** Kalman smoothing of the driving motion: the observation variance, 0 off (default). */
  drivingSmooth?: number;
  /** The driving frame relative motion is taken against: an index (default 0) or 'auto' (the most neutral), or the flag's text. */
  referenceFrame?: number | 'auto' | string;
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
    drivingSmooth: r.drivingSmooth,
    referenceFrame: r.referenceFrame as number | 'auto' | undefined,
  };
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
  const faceList = faceDrivingList(r.driving, r.faceDrivings);
  if (faceList) {
    if (!r.allFaces) throw new UsageError('several drivings drive the faces of a group photo, left to right: add --all-faces');
    if (r.animal) throw new UsageError('--animal animates one face; give one driving');
    r.driving = faceList.find((d): d is string => !!d)!;
    if (!r.driving) throw new UsageError('--face-drivings: give at least one FACE:FILE');
    for (const d of faceList) if (d) classifyInput(d, 'driving');
  } else if (Array.isArray(r.driving)) r.driving = r.driving[0];
  const driving = r.driving as string;
  r.referenceFrame = parseReferenceFrame(r.referenceFrame);
  if (r.drivingSmooth !== undefined && !(Number.isFinite(r.drivingSmooth) && r.drivingSmooth >= 0)) throw new UsageError(`--driving-smooth must be 0 (off) or a positive variance, got ${r.drivingSmooth}`);
  const sourceKind = classifyInput(r.source, 'source');
  const drivingKind = classifyInput(driving, 'driving');
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
  const names = outputNames(r, outputDir, sourceKind, drivingKind, driving, faceList);
  const { written } = names;
  if (!r.overwrite) checkNotExisting(written);
  let created: string[];
  try {
    created = prepareOutputDir(outputDir);
  } catch (e) {
    if (e instanceof OutputDirError) throw new CliError(`${e.message}; give -o a folder you can write to`, { cause: e });
    throw e;
  }
  return { plan: { faceList, sourceKind, drivingKind, ...names }, created, outputDir };
}

/**
 * The files a request writes, in the order they are written (the animation,
 * then the comparison, then the GIF), without any other check or work: what
 * `batch` looks at to tell a finished job. Throws a CliError when an input
 * is missing or of the wrong kind.
 */
export function plannedOutputs(r: AnimateRequest): string[] {
  const faceList = faceDrivingList(r.driving, r.faceDrivings);
  const driving = (faceList ? faceList.find((d): d is string => !!d) : Array.isArray(r.driving) ? r.driving[0] : r.driving) as string;
  const sourceKind = classifyInput(r.source, 'source');
  const drivingKind = classifyInput(driving, 'driving');
  return outputNames(r, resolve(r.outputDir ?? 'animations'), sourceKind, drivingKind, driving, faceList).written;
}

function outputNames(r: AnimateRequest, outputDir: string, sourceKind: InputKind, drivingKind: InputKind, driving: string, faceList: (string | undefined)[] | undefined): Omit<OutputPlan, 'sourceKind' | 'drivingKind' | 'faceList'> {
  const name = faceList ? `${stem(r.source)}--${faceList.map((d) => (d ? stem(d) : 'still')).join('+')}` : `${stem(r.source)}--${stem(driving)}${drivingTag(driving)}`;
  const imageOut = sourceKind === 'image' && !faceList && !drivingIsVideo(drivingKind, driving);
  const ext = imageOut ? extname(r.source).toLowerCase().replace('.jpeg', '.jpg') : '.mp4';
  const outExt = imageOut ? (['.jpg', '.png', '.bmp'].includes(ext) ? ext : '.jpg') : '.mp4';
  const outPath = join(outputDir, `${name}${outExt}`);
  const concatPath = join(outputDir, `${name}_concat${outExt}`);
  const gifPath = join(outputDir, `${name}.gif`);
  const wantConcat = r.concat ?? true;
  const wantGif = !!r.gif && !imageOut;
  const written = [outPath, ...(wantConcat ? [concatPath] : []), ...(wantGif ? [gifPath] : [])];
  return { imageOut, outPath, concatPath, gifPath, wantConcat, wantGif, written };
}

interface OutputPlan {
  /** One driving per face, left to right (undefined: still). */
  faceList?: (string | undefined)[];
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

interface Outputs {
  main?: VideoWriter;
  concat?: VideoWriter;
  gif?: VideoWriter;
}

async function animateInto(r: AnimateRequest, { t0, log, progress, faceList, sourceKind, drivingKind, imageOut, outPath, concatPath, gifPath, wantConcat, wantGif, written }: Plan): Promise<AnimateResult> {
  await ensureBackend(r, log);
  // Weights are checked first (cheap when missing), loaded when first needed: bad inputs fail fast.
  if (!r.model && weightsSpec(r) !== 'synthetic') await loadModelCheck(r);
  const lp = await loadModel(r);
  // The frame workers start now and load their W and G while this thread reads the inputs, finds
  // the faces and runs F and M: the start-up overlaps the rest instead of preceding the first frame.
  const workersReady = ensureWorkers(lp, r, log);
  workersReady.catch(() => undefined); // awaited before the first frame; an input error may come first
  if (r.allFaces && r.pasteBack === false) throw new UsageError('--all-faces stitches every face back into the photo; drop --no-paste-back');
  const bars = progressBars(progress);
  const maxDim = r.sourceMaxDim ?? SOURCE_MAX_DIM;
  const cropOptions = { scale: r.scale, vxRatio: r.vxRatio, vyRatio: r.vyRatio, doRot: r.doRot };
  const sourceOpts: SourceOptions = {
    crop: r.crop === false ? false : ((r.cropBox as CropBox | undefined) ?? true),
    faceIndex: r.faceIndex,
    allFaces: r.allFaces,
    cropOptions,
    maxDim,
    name: r.source,
    ratios: !r.animal && !!(r.eyeRetargeting || r.lipRetargeting || r.normalizeLip),
    onProgress: bars.onProgress,
  };
  const outputs: Outputs = {};
  let portrait: Portrait | PortraitVideo | undefined;
  let frames = 0;
  let audioFrom: string | undefined;
  let fpsNum = 25;
  try {
    // The source video's frame count bounds the driving frames read; the driving input is planned
    // (its face tracked) before the source is prepared, as the reference does.
    const sourceVideo = sourceKind === 'video' ? await openVideoFile(r.source) : undefined;
    const { driving, video: drivingVideo } = await openDriving(r.driving as string, drivingKind, { crop: r.cropDriving, log });
    const limit = Math.min(r.maxFrames ?? Infinity, sourceVideo?.frameCount ?? Infinity);
    const planOf = (d: Driving) => lp.planDriving(d, animationOptions(r), { limit: Number.isFinite(limit) ? limit : undefined, log, onProgress: bars.onProgress });
    const plan = await planOf(driving);
    // One driving per face: the first given is planned above (its fps and audio are the output's).
    let facePlans: (DrivingPlan | undefined)[] | undefined;
    if (faceList) {
      const firstAt = faceList.indexOf(r.driving as string);
      facePlans = [];
      for (const [k, d] of faceList.entries()) facePlans.push(!d ? undefined : k === firstAt ? plan : await planOf((await openDriving(d, classifyInput(d, 'driving'), { crop: r.cropDriving, log })).driving));
      const rates = new Set(facePlans.filter((p): p is DrivingPlan => !!p).map((p) => fpsValue(p.fps).toFixed(3)));
      if (rates.size > 1) log(`note: the drivings have different frame rates; each face takes one driving frame per output frame, at ${fpsValue(plan.fps)} fps (the first driving's)`);
      log(`drivings by face, left to right: ${faceList.map((d, k) => `${k}: ${d ?? 'still'}`).join(', ')}`);
    }
    bars.finish();
    if (sourceKind === 'image') {
      const original = await readSourceImage(r.source);
      const note = shrinkNote(original, limitedSize(original.width, original.height, maxDim), maxDim);
      if (note) log(note);
      portrait = await lp.preparePortrait(original, {
        ...sourceOpts,
        onFaces: ({ faces }) => {
          if (r.cropBox) log(`source ${r.source}: crop placed at ${fmtBox(r.cropBox as CropBox)} (source pixels)`);
          else if (r.crop !== false) {
            log(facesNote(r.source, faces, r.allFaces ? 'all' : (r.faceIndex ?? 0)));
            if (r.animal) log('note: --animal: no animal face detector here, the human one found a face; place the crop with --crop-box if it is wrong');
          }
        },
      });
      if (r.cropBox && sourceOpts.ratios && !portrait.faces[0].info.eyeRatio) log('note: no face landmarks in the placed crop: the source has no eye/lip ratios');
    } else {
      portrait = await lp.preparePortraitVideo(sourceVideo!, { ...sourceOpts, maxFrames: r.maxFrames });
      const note = shrinkNote(sourceVideo!, portrait.size, maxDim);
      if (note) log(note.replace(/^source/, 'source video'));
      log(`source video ${r.source}: ${portrait.faces.length} frame(s) with a face; extracting the motion of every frame first (for smoothing)`);
    }
    bars.finish();
    const outFps = sourceVideo ? sourceVideo.fps : plan.fps;
    fpsNum = fpsValue(outFps);
    // Audio: the reference's audio_priority (driving first, else the source video).
    const sourceHasAudio = !!sourceVideo?.hasAudio;
    const drivingHasAudio = !!drivingVideo?.hasAudio;
    if (sourceHasAudio || drivingHasAudio) audioFrom = (drivingHasAudio && (r.audioPriority ?? 'driving') === 'driving') || !sourceHasAudio ? (r.driving as string) : r.source;
    if (r.gif && imageOut) log('note: --gif is ignored: an image driving an image gives a picture, not a video');
    const open = (path: string, w: number, h: number, format: 'mp4' | 'gif') =>
      openVideoWriter(path, { width: w, height: h, fps: outFps, crf: r.crf, format, audioFrom: format === 'mp4' ? audioFrom : undefined });
    await workersReady;
    const run = lp.animatePortrait(portrait, facePlans ?? plan, { ...animationOptions(r), pasteBack: r.pasteBack, maxFrames: r.maxFrames, log, onProgress: bars.onProgress });
    for await (const f of run) {
      if (f.video === imageOut) throw new CliError(`driving ${r.driving} changed while reading it; run again`);
      if (imageOut) {
        await writeImage(outPath, f.image);
        if (wantConcat) await writeImage(concatPath, f.concat());
      } else {
        outputs.main ??= open(outPath, f.image.width, f.image.height, 'mp4');
        await outputs.main.write(f.image);
        if (wantGif) {
          outputs.gif ??= open(gifPath, f.image.width, f.image.height, 'gif');
          await outputs.gif.write(f.image);
        }
        if (wantConcat) {
          const c = f.concat();
          outputs.concat ??= open(concatPath, c.width, c.height, 'mp4');
          await outputs.concat.write(c);
        }
      }
      frames++;
    }
    if (frames === 0) throw new CliError(`nothing to animate: no driving frames in ${r.driving}`);
    for (const w of [outputs.main, outputs.concat, outputs.gif]) await w?.close();
  } catch (e) {
    for (const w of [outputs.main, outputs.concat, outputs.gif]) await w?.abort().catch(() => undefined);
    throw cliMessage(e, { ...r, weightsDir: r.model ? undefined : safeWeightsDir(r) });
  } finally {
    bars.finish();
    portrait?.dispose();
  }
  const seconds = (Date.now() - t0) / 1000;
  return {
    output: outPath,
    concat: wantConcat ? concatPath : undefined,
    gif: wantGif ? gifPath : undefined,
    frames,
    seconds,
    fps: seconds > 0 ? frames / seconds : 0,
    faces: portrait?.kind === 'image' ? portrait.faces.length : 1,
    outputFps: fpsNum,
    audioFrom: outputs.main?.audioAdded ? audioFrom : undefined,
    summary: summaryLine(frames, seconds, written),
  };
}

function fmtBox(b: CropBox): string {
  const f = (v: number) => String(Math.round(v * 10) / 10);
  return [b.x, b.y, b.size, ...(b.angle ? [b.angle] : [])].map(f).join(',');
}

/** The weights folder the run used, for the lip-array hint (none when it cannot be told). */
function safeWeightsDir(r: AnimateRequest): string | undefined {
  try {
    return resolve(weightsSpec(r));
  } catch {
    return undefined;
  }
}
