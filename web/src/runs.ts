/**
 * The page's runs, each a few library calls with browser I/O around them:
 * animate (a photo or a source video by a video, image or template), video
 * editing, image editing, webcam live driving. The library plans, crops,
 * animates and pastes back; this file decodes, encodes and posts messages.
 */
import {
  Driving,
  InputError,
  LivePortrait,
  SOURCE_CROP,
  DRIVING_CROP,
  parseAnyTemplate,
  type CropBox,
  type Portrait,
  type PortraitFrame,
  type PortraitVideo,
  type ProgressInfo,
  type RgbImage,
  ReferenceControl,
} from '../../src/index.js';
import { GifOut, VideoOut, decodeImage, encodePng, kindOf, openVideo, rgbToRgba, type VideoIn } from './media.js';
import type { AnimateParams, EditParams, FromEngine, NamedFile } from './protocol.js';
import { toRetargetEdit } from './edits.js';

export const post = (m: FromEngine, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);
/** Let messages (cancel) in between frames. */
const breathe = () => new Promise<void>((r) => setTimeout(r, 0));
const imageData = (img: RgbImage) => new ImageData(rgbToRgba(img), img.width, img.height);

function stem(name: string): string {
  const n = name.replace(/\.lpmotion\.safetensors$/i, '');
  const i = n.lastIndexOf('.');
  return i > 0 ? n.slice(0, i) : n;
}

/** The page's options as the library's: one mapping, the library's defaults behind it. */
function animation(p: AnimateParams) {
  return {
    relativeMotion: p.relativeMotion,
    animationRegion: p.animationRegion,
    drivingMultiplier: p.drivingMultiplier,
    drivingOption: p.drivingOption,
    stitching: p.stitching,
    eyeRetargeting: p.eyeRetargeting,
    lipRetargeting: p.lipRetargeting,
    normalizeLip: p.normalizeLip,
    smoothObservationVariance: p.smoothObservationVariance,
    drivingSmooth: p.drivingSmooth,
    referenceFrame: p.referenceFrame,
    animal: p.animal,
    pasteBack: p.pasteBack,
    maxFrames: p.maxFrames,
  };
}

function sourceOptions(p: { crop: boolean; cropBox?: CropBox; scale?: number; vxRatio?: number; vyRatio?: number; faceIndex?: number; allFaces?: boolean }, name: string) {
  return {
    crop: p.crop ? (p.cropBox ?? true) : false,
    cropOptions: { scale: p.scale ?? SOURCE_CROP.scale, vxRatio: p.vxRatio ?? SOURCE_CROP.vxRatio, vyRatio: p.vyRatio ?? SOURCE_CROP.vyRatio },
    faceIndex: p.faceIndex,
    allFaces: p.allFaces,
    name,
  };
}

/** Progress messages; the animating phase with seconds per frame and time left. */
function progressPoster(): (p: ProgressInfo) => void {
  let t0 = 0;
  return (p) => {
    if (p.phase !== 'Animating') return post({ type: 'progress', progress: p });
    if (p.done === 0) t0 = performance.now();
    const spf = p.done > 0 ? (performance.now() - t0) / 1000 / p.done : undefined;
    post({ type: 'progress', progress: { ...p, secondsPerFrame: spf, eta: spf !== undefined && p.total !== undefined ? spf * Math.max(0, p.total - p.done) : undefined } });
  };
}

async function openDriving(f: NamedFile, p: AnimateParams): Promise<{ driving: Driving; video?: VideoIn }> {
  const kind = kindOf(f.name, f.blob.type);
  const crop = { crop: p.cropDriving, cropOptions: { scale: p.drivingScale ?? DRIVING_CROP.scale, vxRatio: p.drivingVx ?? DRIVING_CROP.vxRatio, vyRatio: p.drivingVy ?? DRIVING_CROP.vyRatio }, name: f.name };
  if (kind === 'template') return { driving: Driving.template(parseAnyTemplate(new Uint8Array(await f.blob.arrayBuffer()), f.name), { name: f.name }) };
  if (kind === 'image') return { driving: Driving.image(await decodeImage(f.blob, `driving ${f.name}`), crop) };
  if (kind !== 'video') throw new InputError(`driving ${f.name} is not a video, an image or a motion template (.pkl, .lpmotion.safetensors)`);
  const video = await openVideo(f.blob, `driving ${f.name}`);
  return { driving: Driving.video(video, crop), video };
}

/** Encode the frames of a run as the page's downloads: the result, the comparison, a GIF on request. */
async function deliver(frames: AsyncIterable<PortraitFrame>, name: string, o: { fps: number; audio?: VideoIn['audio']; gif?: boolean; t0: number; faces: number; signal: AbortSignal }): Promise<void> {
  let out: VideoOut | undefined;
  let concatOut: VideoOut | undefined;
  let gifOut: GifOut | undefined;
  let last: PortraitFrame | undefined;
  let n = 0;
  try {
    for await (const f of frames) {
      if (f.video) {
        out ??= new VideoOut(o.fps, o.audio);
        concatOut ??= new VideoOut(o.fps, o.audio);
        if (o.gif) gifOut ??= new GifOut(o.fps);
        await out.add(f.image);
        await concatOut.add(f.concat());
        gifOut?.add(f.image);
      }
      last = f;
      n++;
      await breathe();
      if (o.signal.aborted) throw o.signal.reason;
    }
    if (!last) throw new InputError(`nothing to animate: no frames`);
    const common = { frames: n, seconds: (performance.now() - o.t0) / 1000, faces: o.faces };
    if (!out) {
      post({
        type: 'animated',
        result: { blob: await encodePng(last.image), name: `${name}.png`, mime: 'image/png' },
        concat: { blob: await encodePng(last.concat()), name: `${name}_concat.png`, mime: 'image/png' },
        image: true,
        audio: false,
        ...common,
      });
      return;
    }
    const v = await out.finish();
    const c = await concatOut!.finish();
    post({
      type: 'animated',
      result: { blob: v.blob, name: `${name}.${v.ext}`, mime: v.mime },
      concat: { blob: c.blob, name: `${name}_concat.${c.ext}`, mime: c.mime },
      gif: gifOut ? { blob: gifOut.finish(), name: `${name}.gif`, mime: 'image/gif' } : undefined,
      image: false,
      note: v.note,
      audio: v.audio,
      ...common,
    });
  } catch (e) {
    await out?.cancel();
    await concatOut?.cancel();
    throw e;
  }
}

/**
 * Animate: a photo (one face, a chosen one, or all) or a source video, by a
 * driving video, image or template; with `faceDrivings` (all faces of a
 * group photo) the driving takes the leftmost face and these the next ones,
 * left to right.
 */
export async function animate(lp: LivePortrait, source: NamedFile, drivingFile: NamedFile, p: AnimateParams, signal: AbortSignal, faceDrivings: NamedFile[] = []): Promise<void> {
  const t0 = performance.now();
  const kind = kindOf(source.name, source.blob.type);
  if (kind === 'template') throw new InputError(`source ${source.name}: a motion template cannot be a source; give an image or a video`);
  if (kind !== 'image' && kind !== 'video') throw new InputError(`source ${source.name} is not an image or a video; give a jpg, png, webp, mp4 or webm`);
  const onProgress = progressPoster();
  const sourceVideo = kind === 'video' ? await openVideo(source.blob, `source ${source.name}`) : undefined;
  const { driving, video } = await openDriving(drivingFile, p);
  if (faceDrivings.length && (!p.allFaces || kind !== 'image')) throw new InputError('drivings per face animate the faces of a group photo: pick a source image and tick "all faces"');
  const more: { driving: Driving; video?: VideoIn }[] = [];
  for (const f of faceDrivings) more.push(await openDriving(f, p));
  let portrait: Portrait | PortraitVideo | undefined;
  try {
    const opts = { ...sourceOptions(p, source.name), signal, onProgress };
    portrait = sourceVideo ? await lp.preparePortraitVideo(sourceVideo, { ...opts, maxFrames: p.maxFrames }) : await lp.preparePortrait(await decodeImage(source.blob, `source ${source.name}`), opts);
    const frames = lp.animatePortrait(portrait, more.length ? [driving, ...more.map((d) => d.driving)] : driving, { ...animation(p), signal, onProgress, log: (line) => post({ type: 'log', line }) });
    const fps = sourceVideo?.fps ?? (typeof driving.fps === 'number' ? driving.fps : driving.fps.num / driving.fps.den);
    await deliver(frames, `${stem(source.name)}--${[drivingFile, ...faceDrivings].map((f) => stem(f.name)).join('+')}`, { fps, audio: video?.audio ?? sourceVideo?.audio, gif: p.gif, t0, faces: portrait.kind === 'image' ? portrait.faces.length : 1, signal });
  } finally {
    portrait?.dispose();
    video?.close();
    for (const d of more) d.video?.close();
    sourceVideo?.close();
  }
}

/** Video editing: the reference's video retargeting of a source video, lips to one opening or silent. */
export async function videoEdit(lp: LivePortrait, source: NamedFile, o: { lipRatio: number | null; smoothObservationVariance: number; scale: number; crop: boolean; maxFrames?: number }, signal: AbortSignal): Promise<void> {
  const t0 = performance.now();
  const video = await openVideo(source.blob, `source ${source.name}`);
  try {
    const onProgress = progressPoster();
    const portrait = await lp.preparePortraitVideo(video, { ...sourceOptions({ crop: o.crop, scale: o.scale }, source.name), maxFrames: o.maxFrames, signal, onProgress });
    const frames = lp.retargetPortraitVideo(portrait, { lipRatio: o.lipRatio, smoothObservationVariance: o.smoothObservationVariance, maxFrames: o.maxFrames, pasteBack: o.crop, signal, onProgress });
    await deliver(frames, `${stem(source.name)}--${o.lipRatio === null ? 'silent' : `lip-${o.lipRatio}`}`, { fps: video.fps, audio: video.audio, t0, faces: 1, signal });
  } finally {
    video.close();
  }
}

// ------------------------------------------------------------------ image editing

let editing: Portrait | undefined;

export async function editSource(lp: LivePortrait, source: NamedFile, o: { crop: boolean; cropBox?: CropBox; scale: number; faceIndex: number }): Promise<void> {
  if (kindOf(source.name, source.blob.type) !== 'image') throw new InputError(`${source.name} is not an image; image editing takes a jpg, png or webp`);
  const img = await decodeImage(source.blob, source.name);
  const next = await lp.preparePortrait(img, sourceOptions({ ...o, vxRatio: 0, vyRatio: -0.125 }, source.name));
  editing?.dispose();
  editing = next;
  const f = next.faces[0];
  const eye = f.info.eyeRatio ? (f.info.eyeRatio[0] + f.info.eyeRatio[1]) / 2 : 0.3;
  post({ type: 'edit-ready', eyeRatio: eye, lipRatio: f.info.lipRatio ?? 0, sourceEyeRatio: f.info.eyeRatio ? Array.from(f.info.eyeRatio) : undefined, sourceLipRatio: f.info.lipRatio, crop: imageData(f.crop.imgCrop256) });
}

export async function edit(lp: LivePortrait, e: EditParams, seq: number): Promise<void> {
  if (!editing) throw new InputError('pick a source image for editing first');
  const t0 = performance.now();
  const out = await lp.editPortrait(editing, toRetargetEdit(e, editing.faces[0].info));
  post({ type: 'edit-result', seq, crop: imageData(out.crop), pasted: imageData(out.image), pastedPng: await encodePng(out.image), seconds: (performance.now() - t0) / 1000 });
}

/** The model changed: what was prepared with the old one goes. */
export function forgetPrepared(): void {
  editing = undefined;
  liveStop();
}

// ------------------------------------------------------------------ webcam live

/** The newest webcam picture waiting (older ones are dropped), read by the live run as Driving.live's pictures. */
class Pictures implements AsyncIterable<RgbImage> {
  private waiting?: ImageBitmap;
  private wake?: () => void;
  private ended = false;

  push(frame: ImageBitmap): void {
    this.waiting?.close();
    this.waiting = frame;
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.waiting?.close();
    this.waiting = undefined;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RgbImage> {
    for (;;) {
      while (!this.waiting && !this.ended) await new Promise<void>((r) => (this.wake = r));
      if (this.ended) return;
      const frame = this.waiting!;
      this.waiting = undefined;
      yield bitmapRgb(frame);
    }
  }
}

function bitmapRgb(frame: ImageBitmap): RgbImage {
  const canvas = new OffscreenCanvas(frame.width, frame.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(frame, 0, 0);
  frame.close();
  const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const data = new Uint8Array(canvas.width * canvas.height * 3);
  for (let i = 0, j = 0; j < rgba.length; i += 3, j += 4) (data[i] = rgba[j]), (data[i + 1] = rgba[j + 1]), (data[i + 2] = rgba[j + 2]);
  return { width: canvas.width, height: canvas.height, data };
}

let live: { pictures: Pictures; stop: AbortController; done: Promise<void>; control: ReferenceControl } | undefined;

/** Start live driving: the source prepared, then every webcam picture animated as it comes (the first is the reference). */
export async function liveStart(lp: LivePortrait, source: NamedFile, p: AnimateParams): Promise<void> {
  const portrait = await lp.preparePortrait(await decodeImage(source.blob, `source ${source.name}`), sourceOptions({ ...p, allFaces: false }, source.name));
  liveStop();
  const pictures = new Pictures();
  const stop = new AbortController();
  const driving = Driving.live(pictures, { crop: p.cropDriving !== false, cropOptions: { scale: p.drivingScale, vxRatio: p.drivingVx, vyRatio: p.drivingVy } });
  const control = new ReferenceControl();
  const run = async () => {
    let t = performance.now();
    try {
      for await (const f of lp.animatePortrait(portrait, driving, { ...animation(p), maxFrames: undefined, signal: stop.signal, referenceControl: control, log: (line) => post({ type: 'log', line: `live: ${line}` }) })) {
        if (stop.signal.aborted) break;
        post({ type: 'live-frame', image: imageData(f.image), seconds: (performance.now() - t) / 1000 });
        t = performance.now();
      }
    } catch (e) {
      if (!stop.signal.aborted) post({ type: 'error', message: e instanceof Error ? e.message : String(e), during: 'live-frame' });
    } finally {
      portrait.dispose();
    }
  };
  live = { pictures, stop, done: run(), control };
  post({ type: 'log', line: 'live: source ready' });
}

export function liveFrame(frame: ImageBitmap): void {
  if (!live) return frame.close();
  live.pictures.push(frame);
}

/** "Set neutral": the next webcam frame becomes the reference of relative motion. */
export function liveNeutral(): void {
  live?.control.setNeutral();
}

export function liveStop(): void {
  if (!live) return;
  live.stop.abort();
  live.pictures.end();
  live = undefined;
}
