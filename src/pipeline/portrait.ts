/**
 * The source side of the reference's `execute`: a photo (or a video's
 * frames) shrunk to the working size, its face(s) found and cropped as the
 * reference crops them (or a placed box, or no crop), eye and lip ratios
 * read from the landmarks, F and M run, and the paste-back mask prepared.
 */
import type { Point2 } from '../image/affine.js';
import { type RgbImage, resizeToLimit } from '../image/image.js';
import { type CropBox, type CropOptions, type CropResult, cropImage, cropImageByBox, scaleCropBox, wholeImageCrop } from '../face/crop.js';
import { type PasteBackMask, preparePasteBack } from '../face/paste_back.js';
import { ratiosFromLandmarks } from '../face/ratios.js';
import { FaceIndexError, InputError, NoFaceError } from '../errors.js';
import type { LivePortrait, SourceInfo } from './live_portrait.js';
import type { ProgressInfo, VideoFrames } from './driving.js';
import { checkAborted, definedOnly, describeValue } from './inputs.js';

export type PortraitImage = RgbImage;
/** A source video: read again for each pass, never held whole. */
export type SourceVideo = VideoFrames;

/** Source images and videos are shrunk so their longer side is at most this (the reference's source_max_dim). */
export const SOURCE_MAX_DIM = 1280;

/** How a source is cropped and prepared (the reference's defaults). */
export interface SourceOptions {
  /**
   * true (default): the face found by the detector, cropped as the
   * reference (scale 2.3, vy -0.125, rotation aligned); a CropBox: a square
   * placed by hand, in the source's own pixels (for faces the detector
   * misses); false: the whole picture is the face crop.
   */
  crop?: boolean | CropBox;
  /** Which face, largest first (default 0). */
  faceIndex?: number;
  /** Every face of a group photo (photos only). */
  allFaces?: boolean;
  /** The source crop: scale (2.3), vxRatio (0), vyRatio (-0.125), doRot (true). */
  cropOptions?: Pick<CropOptions, 'scale' | 'vxRatio' | 'vyRatio' | 'doRot'>;
  /** Longest side of the working picture (default 1280; 0: no limit). */
  maxDim?: number;
  /** Prepare the paste-back mask (default true). */
  pasteBack?: boolean;
  /** With a placed box: find landmarks in the crop for the eye and lip ratios (default false). */
  ratios?: boolean;
  /** Named in messages (default 'the source'). */
  name?: string;
  /**
   * Told what was found before F and M run: the working picture's size and
   * the faces the detector found (0 without detection), for messages.
   */
  onFaces?: (found: { faces: number; width: number; height: number }) => void;
  onProgress?: (p: ProgressInfo) => void;
  signal?: AbortSignal;
}

/** One prepared face of a photo: its crop, F and M's results, the paste-back mask. */
export interface PortraitFace {
  crop: CropResult;
  info: SourceInfo;
  mask?: PasteBackMask;
  /** FaceMesh landmarks in the working picture's pixels, where found. */
  landmarks?: Point2[];
}

/** A prepared source photo. Owns its faces' tensors: dispose() it. */
export class Portrait {
  readonly kind = 'image';
  private disposed = false;

  constructor(
    private readonly lp: LivePortrait,
    /** The working picture (the source shrunk to maxDim): results have its size. */
    readonly image: RgbImage,
    /** The source's own size. */
    readonly original: { width: number; height: number },
    readonly faces: PortraitFace[],
    /** Faces the detector found (0 without detection). */
    readonly facesFound: number,
    readonly name: string,
    /** The face was cropped (detected or placed), not the whole picture taken as the crop. */
    readonly cropped: boolean,
  ) {}

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const f of this.faces) this.lp.disposeSource(f.info);
  }
}

/** One frame of a source video with a face: where its crop is. */
export interface VideoFace {
  /** The frame's index in the video. */
  index: number;
  M_c2o: CropResult['M_c2o'];
  landmarks?: Point2[];
}

/** A prepared source video: its face tracked (landmarks kept), frames read again when animated. */
export class PortraitVideo {
  readonly kind = 'video';

  constructor(
    readonly video: SourceVideo,
    /** Frames with a face, in order (frames without one are skipped, as the reference does). */
    readonly faces: VideoFace[],
    /** The source's own size and the working size. */
    readonly original: { width: number; height: number },
    readonly size: { width: number; height: number },
    private readonly cropOf: (frame: RgbImage, landmarks: Point2[] | undefined) => CropResult | undefined,
    readonly maxDim: number,
    readonly name: string,
  ) {}

  /**
   * The frames with a face, read again: the working picture, its crop and
   * ratios, at most `max`.
   */
  async *frames(max = Infinity): AsyncGenerator<{ i: number; face: VideoFace; image: RgbImage; crop: CropResult }> {
    let i = 0;
    let k = 0;
    if (max <= 0) return;
    for await (const raw of this.video.frames(this.faces[Math.min(max, this.faces.length) - 1].index + 1)) {
      const face = this.faces[i];
      if (!face) return;
      if (face.index === k) {
        const image = resizeToLimit(raw, this.maxDim || Infinity, 2);
        yield { i, face, image, crop: this.cropOf(image, face.landmarks)! };
        if (++i >= max) return;
      }
      k++;
    }
  }

  /** Nothing is held: the frames are read from the video. */
  dispose(): void {}
}

function checkImage(image: RgbImage, name: string): void {
  if (!image || !(image.data instanceof Uint8Array) || !Number.isInteger(image.width) || !Number.isInteger(image.height) || image.data.length !== image.width * image.height * 3)
    throw new InputError(`${name}: expected an RGB image ({ data: Uint8Array, width, height }, e.g. await readImage(path)), got ${describeValue(image)}`);
}

/** A placed box in the source's pixels → the working picture's pixels, checked against it. */
function placedBox(box: CropBox, original: { width: number; height: number }, img: RgbImage, name: string): CropBox {
  const k = img.width / original.width;
  const b = k === 1 ? box : scaleCropBox(box, k);
  if (b.x >= img.width || b.y >= img.height || b.x + b.size <= 0 || b.y + b.size <= 0)
    throw new InputError(`crop box ${box.x},${box.y},${box.size} lies outside the ${original.width}x${original.height} source ${name}; give the top-left corner and side of a square over the face, in source pixels`);
  return b;
}

export async function preparePortrait(lp: LivePortrait, source: RgbImage, opts: SourceOptions = {}): Promise<Portrait> {
  const name = opts.name ?? 'the source';
  checkImage(source, name);
  checkAborted(opts.signal);
  const maxDim = opts.maxDim ?? SOURCE_MAX_DIM;
  const img = resizeToLimit(source, maxDim || Infinity, 2);
  const crop = opts.crop ?? true;
  if (opts.allFaces && crop !== true) throw new InputError('allFaces needs face detection: drop the placed crop box or crop: false');
  const faceIndex = opts.faceIndex ?? 0;
  if (!(Number.isInteger(faceIndex) && faceIndex >= 0)) throw new InputError(`faceIndex must be 0 or more, got ${faceIndex}`);
  let crops: CropResult[];
  let lmks: (Point2[] | undefined)[];
  let found = 0;
  if (typeof crop === 'object') {
    crops = [cropImageByBox(img, placedBox(crop, source, img, name))];
    // Landmarks found in the crop give the ratios (scale-free); none map back to the picture.
    const inCrop = opts.ratios ? (await (await lp.faceDetector()).detect(crops[0].imgCrop, { maxFaces: 1 }))[0]?.landmarks : undefined;
    return finish(lp, img, source, crops, [undefined], [inCrop], 0, name, opts);
  } else if (crop) {
    const faces = await (await lp.faceDetector()).detect(img);
    found = faces.length;
    if (faces.length === 0) throw new NoFaceError('source', 'image', name);
    let chosen = faces;
    if (!opts.allFaces) {
      if (faceIndex >= faces.length) throw new FaceIndexError(faceIndex, faces.length, name);
      chosen = [faces[faceIndex]];
    }
    crops = chosen.map((f) => cropImage(img, f.landmarks, definedOnly(opts.cropOptions)));
    lmks = chosen.map((f) => f.landmarks);
  } else {
    const face = (await (await lp.faceDetector()).detect(img, { maxFaces: 1 }))[0];
    crops = [wholeImageCrop(img)];
    lmks = [face?.landmarks];
  }
  return finish(lp, img, source, crops, lmks, lmks, found, name, opts);
}

async function finish(
  lp: LivePortrait,
  img: RgbImage,
  source: RgbImage,
  crops: CropResult[],
  lmks: (Point2[] | undefined)[],
  ratioLmks: (Point2[] | undefined)[],
  found: number,
  name: string,
  opts: SourceOptions,
): Promise<Portrait> {
  opts.onFaces?.({ faces: found, width: img.width, height: img.height });
  const faces: PortraitFace[] = [];
  try {
    for (const [k, c] of crops.entries()) {
      checkAborted(opts.signal);
      const info = await lp.prepareSource(c.imgCrop256, ratiosFromLandmarks(ratioLmks[k]));
      faces.push({ crop: c, info, mask: opts.pasteBack === false ? undefined : preparePasteBack(c.M_c2o, img.width, img.height), landmarks: lmks[k] });
    }
  } catch (e) {
    for (const f of faces) lp.disposeSource(f.info);
    throw e;
  }
  return new Portrait(lp, img, { width: source.width, height: source.height }, faces, found, name, opts.crop !== false);
}

/**
 * A source video prepared: every frame's face tracked (the reference's
 * crop_source_video; frames without a face are skipped), landmarks kept,
 * the frames themselves read again when animated.
 */
export async function preparePortraitVideo(lp: LivePortrait, video: SourceVideo, opts: SourceOptions & { maxFrames?: number } = {}): Promise<PortraitVideo> {
  const name = opts.name ?? video?.name ?? 'the source video';
  if (!video || typeof video.frames !== 'function') throw new InputError(`${name}: expected a video ({ width, height, fps, frames() }, e.g. openVideo(path)), got ${describeValue(video)}`);
  if (opts.allFaces) throw new InputError('allFaces works with a source photo only; animate a video one face at a time (faceIndex)');
  const maxDim = opts.maxDim ?? SOURCE_MAX_DIM;
  const crop = opts.crop ?? true;
  const original = { width: video.width, height: video.height };
  const k = maxDim > 0 && Math.max(video.width, video.height) > maxDim ? maxDim / Math.max(video.width, video.height) : 1;
  const cropOf = (f: RgbImage, lmk: Point2[] | undefined): CropResult | undefined => {
    if (typeof crop === 'object') return cropImageByBox(f, placedBox(crop, original, f, name));
    if (crop) return lmk ? cropImage(f, lmk, definedOnly(opts.cropOptions)) : undefined;
    return wholeImageCrop(f);
  };
  const n = Math.min(opts.maxFrames ?? Infinity, video.frameCount ?? Infinity);
  const faces: VideoFace[] = [];
  let prev: Point2[] | undefined;
  let idx = 0;
  let size = { width: Math.round(video.width * k), height: Math.round(video.height * k) };
  const det = typeof crop === 'object' && !opts.ratios ? undefined : await lp.faceDetector();
  for await (const raw of video.frames(Number.isFinite(n) ? n : undefined)) {
    checkAborted(opts.signal);
    const f = resizeToLimit(raw, maxDim || Infinity, 2);
    size = { width: f.width, height: f.height };
    const lmk = det ? (prev = (await det.track(f, prev))?.landmarks) : undefined;
    const c = cropOf(f, lmk);
    if (c) faces.push({ index: idx, M_c2o: c.M_c2o, landmarks: lmk });
    idx++;
    opts.onProgress?.({ phase: 'Cropping the source video', done: idx, total: Number.isFinite(n) ? n : undefined });
  }
  if (faces.length === 0) throw new NoFaceError('source', 'video', name);
  return new PortraitVideo(video, faces, original, size, cropOf, maxDim, name);
}
