/**
 * The driving frames of a request, as animate and template read them: a
 * motion template's frames, a driving image (cropped to its face unless
 * square), or a video streamed from ffmpeg, tracked and cropped with one
 * averaged box as the reference's crop_driving_video.
 */
import { type RgbImage, resizeImage } from '../../image/image.js';
import type { Point2 } from '../../image/affine.js';
import { bboxFromLandmarks, cropImageByBbox } from '../../face/crop.js';
import { type Face, drivingBbox } from '../../face/detector.js';
import { ratiosFromLandmarks } from '../../face/ratios.js';
import type { DrivingFrameInput } from '../../pipeline/live_portrait.js';
import { type MotionFrame, type MotionTemplate, checkMotionFrame } from '../../formats/template.js';
import { loadFaceDetector } from '../face_models.js';
import { loadTemplate } from '../files.js';
import { readImage } from '../image_files.js';
import { probeVideo, readVideoFrames, type VideoInfo } from '../video.js';
import { CliError, withFile } from './errors.js';
import type { InputKind } from './inputs.js';
import { Progress, type ProgressStream } from './progress.js';

/** What planning the driving frames needs of a request (animate's, or template's). */
export interface DrivingRequest {
  driving: string;
  /** Crop the driving video to the face (default: when it is not square). */
  cropDriving?: boolean;
  /** Landmark ratios are needed per frame (eye or lip retargeting, templates). */
  eyeRetargeting?: boolean;
  lipRetargeting?: boolean;
  /** Ratios are read where there is a face, but a faceless driving input is only a warning (templates). */
  ratiosOptional?: boolean;
  log?: (line: string) => void;
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

/**
 * Whether the driving input animates a video (true) or gives one picture: a
 * video, or a template of more than one frame. Cheap (no model, no decoding);
 * a template that cannot be read counts as a video here, and the error comes
 * when it is planned.
 */
export function drivingIsVideo(kind: InputKind, path: string): boolean {
  if (kind !== 'template') return kind === 'video';
  try {
    return loadTemplate(path).frames.length > 1;
  } catch {
    return true;
  }
}

function noDrivingFace(what: 'image' | 'video', path: string, r: DrivingRequest): string {
  const flags = [r.eyeRetargeting && '--eye-retargeting', r.lipRetargeting && '--lip-retargeting'].filter(Boolean).join(' and ');
  return `no face found in the driving ${what}${what === 'video' ? "'s first frame" : ''} ${path}, but ${flags || 'eye and lip ratios'} need${flags.includes(' and ') ? '' : 's'} the driving face; use a ${what} with a clearly visible face${flags ? ` or drop ${flags}` : ''}`;
}

/** The driving frames of a request, as animate reads them (also for templates). */
export async function planDrivingFrames(r: DrivingRequest, kind: InputKind, limit: number | undefined, progress: ProgressStream | false): Promise<DrivingPlan> {
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
    const faces = await (await loadFaceDetector()).detect(img, { maxFaces: 1 });
    if (!faces[0] && needRatios && !r.ratiosOptional && !crop) throw new CliError(noDrivingFace('image', path, r));
    if (!faces[0] && !crop) r.log?.(`warning: no face found in the driving image ${path}; its motion is read from the whole picture and may not look like a face's`);
    if (crop) {
      if (!faces[0]) throw new CliError(`no face found in the driving image ${path}; use an image with a clearly visible face, or a square face crop without --crop-driving`);
      const c = cropImageByBbox(img, bboxFromLandmarks(faces[0].landmarks), faces[0].landmarks);
      panel = c.imgCrop256;
      lmk = c.lmkCrop;
    } else {
      panel = resizeImage(img, 256, 256, 'linear');
      lmk = faces[0]?.landmarks;
    }
    const ratios = ratiosFromLandmarks(lmk);
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
          ratios = ratiosFromLandmarks(prev);
        }
        yield { panel, frame: { image: panel, ...ratios } };
      }
    },
  };
  if (!crop) {
    // Square videos are used as they are: look for a face in the first frame at least.
    let first: RgbImage | undefined;
    try {
      for await (const f of readVideoFrames(path, { maxFrames: 1, info })) first = f;
    } catch (e) {
      throw withFile(e, path);
    }
    const face = first && (await (await loadFaceDetector()).detect(first, { maxFaces: 1 }))[0];
    if (!face && needRatios && !r.ratiosOptional) throw new CliError(noDrivingFace('video', path, r));
    if (!face) r.log?.(`warning: no face found in the first frame of the driving video ${path}; its motion is read from the whole picture and may not look like a face's`);
    return plan;
  }
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
      yield { panel: c.imgCrop256, frame: { image: c.imgCrop256, ...ratiosFromLandmarks(c.lmkCrop) } };
    }
  };
  return plan;
}
