/**
 * The page's worker: the library's core (networks, face detection and crop,
 * the animation loop, paste-back) on the backend the page picked, with
 * browser decoding and encoding (media.ts). The page thread only draws the UI.
 * Nothing here re-implements a network or a pipeline step: it is the glue the
 * Node app (src/node/app) is for the CLI, with files from the page.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import {
  FaceDetector,
  InputError,
  LivePortrait,
  LivePortraitError,
  WeightsError,
  calcEyeCloseRatio,
  calcLipCloseRatio,
  concatFrame,
  cropImage,
  cropImageByBbox,
  wholeImageCrop,
  initBackend,
  parseAnyTemplate,
  pasteBack,
  preparePasteBack,
  resizeImage,
  resizeToLimit,
  type AnimationOptions,
  type DrivingFrameInput,
  type MotionTemplate,
  type PasteBackMask,
  type RgbImage,
  type SourceInfo,
} from '../../src/index.js';
import { drivingBbox } from '../../src/face/detector.js';
import type { CropResult } from '../../src/face/crop.js';
import type { Point2 } from '../../src/image/affine.js';
import { prepareImage } from '../../src/pipeline/live_portrait.js';
import { MODULES, type ModuleName, checkSignature, splitStitching, type LivePortraitWeights } from '../../src/models/registry.js';
import { hfFileUrl, hfTreeUrl, officialPath } from '../../src/models/checkpoints.js';
import { parseSafetensors } from '../../src/formats/safetensors.js';
import { flattenStateDict, parsePth } from '../../src/formats/pth.js';
import type { StateDict } from '../../src/formats/host_tensor.js';
import { GifOut, VideoOut, decodeImage, encodePng, kindOf, openVideo, rgbToRgba, type VideoIn } from './media.js';
import type { AnimateParams, EditParams, FromEngine, NamedFile, ToEngine } from './protocol.js';
import { toRetargetEdit } from './edits.js';

const post = (m: FromEngine, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

let base = '/';
let wasmThreads: number | undefined;
let lp: LivePortrait | undefined;
let detector: Promise<FaceDetector> | undefined;
let cancelled = false;
/** Let messages (cancel) in between frames. */
const breathe = () => new Promise<void>((r) => setTimeout(r, 0));

class Cancelled extends Error {}

function model(): LivePortrait {
  if (!lp) throw new WeightsError('no weights loaded: pick synthetic weights, local files or download the official ones first');
  return lp;
}

function faceDetector(): Promise<FaceDetector> {
  if (!detector) {
    detector = FaceDetector.load({ detector: `${base}models/blazeface.json`, mesh: `${base}models/facemesh.json` });
    detector.catch(() => (detector = undefined));
  }
  return detector;
}

function ratiosOf(lmk: Point2[] | undefined): { eyeRatio?: number[]; lipRatio?: number } {
  if (!lmk || lmk.length === 0) return {};
  return { eyeRatio: calcEyeCloseRatio(lmk)[0], lipRatio: calcLipCloseRatio(lmk)[0][0] };
}

function imageData(img: RgbImage): ImageData {
  return new ImageData(rgbToRgba(img), img.width, img.height);
}

// ------------------------------------------------------------------ backend and weights

async function init(backend: string): Promise<void> {
  setWasmPaths(`${base}wasm/`);
  // A model made on another backend keeps its tensors there: drop it (weights are reloaded by the page).
  // tfjs-backend-wasm's default is half the logical cores (1 on a 2-core machine): ask for all of them,
  // which it uses when the page is cross-origin isolated (the threaded SIMD build), else 1.
  const info = await initBackend({ backend, log: false, wasmThreads: wasmThreads ?? navigator.hardwareConcurrency });
  let threads: number | undefined;
  if (info.name === 'wasm') threads = getThreadsCount();
  let adapter: string | undefined;
  if (info.name === 'webgpu') {
    const a = (await (navigator as unknown as { gpu: GPU }).gpu.requestAdapter()) as { info?: { vendor?: string; architecture?: string } } | null;
    adapter = a ? `${a.info?.vendor ?? ''} ${a.info?.architecture ?? ''}`.trim() : undefined;
  }
  post({ type: 'ready', backend: info.name, provider: info.provider, threads, adapter });
}

async function chooseAuto(): Promise<string> {
  const gpu = (navigator as unknown as { gpu?: GPU }).gpu;
  if (gpu && (await gpu.requestAdapter().catch(() => null))) return 'webgpu';
  return 'wasm';
}

function replaceModel(next: LivePortrait): void {
  void lp?.dispose();
  lp = next;
}

function moduleOfName(name: string): ModuleName | undefined {
  const n = name.toLowerCase();
  return MODULES.find((m) => n.includes(m));
}

function stateDictOf(bytes: Uint8Array, name: string): StateDict {
  try {
    if (name.toLowerCase().endsWith('.safetensors')) return parseSafetensors(bytes, name).tensors;
    if (name.toLowerCase().endsWith('.pth')) return flattenStateDict(parsePth(bytes, name), name);
  } catch (e) {
    throw new WeightsError(`${name} is not a readable weights file: ${(e as Error).message}`);
  }
  throw new WeightsError(`${name}: give the official .pth files or this library's .safetensors`);
}

function weightsFromDicts(dicts: Map<ModuleName, { sd: StateDict; name: string }>, label: string): LivePortrait {
  const missing = MODULES.filter((m) => !dicts.has(m));
  if (missing.length) throw new WeightsError(`weights missing for ${missing.join(', ')}: give all five files (${MODULES.map((m) => `${m}.pth`).join(', ')})`);
  for (const [m, { sd, name }] of dicts) checkSignature(sd, m, name);
  const get = (m: ModuleName) => dicts.get(m)!.sd;
  const w: LivePortraitWeights = {
    appearance_feature_extractor: get('appearance_feature_extractor'),
    motion_extractor: get('motion_extractor'),
    warping_module: get('warping_module'),
    spade_generator: get('spade_generator'),
    stitching_retargeting_module: splitStitching(get('stitching_retargeting_module'), dicts.get('stitching_retargeting_module')!.name),
  };
  // lip_array.pkl is not among the official HuggingFace files: image-driven relative motion asks for it (see README).
  return LivePortrait.fromStateDicts(w, label);
}

async function loadFiles(files: NamedFile[]): Promise<void> {
  const t0 = performance.now();
  const dicts = new Map<ModuleName, { sd: StateDict; name: string }>();
  let lipArray: Uint8Array | undefined;
  for (const f of files) {
    if (f.name.toLowerCase().endsWith('lip_array.pkl')) {
      lipArray = new Uint8Array(await f.blob.arrayBuffer());
      continue;
    }
    const m = moduleOfName(f.name);
    if (!m) throw new WeightsError(`${f.name}: not one of the five LivePortrait modules (the file name must contain ${MODULES.join(', ')})`);
    post({ type: 'weights-progress', file: f.name, loaded: 0, total: f.blob.size });
    dicts.set(m, { sd: stateDictOf(new Uint8Array(await f.blob.arrayBuffer()), f.name), name: f.name });
  }
  const next = weightsFromDicts(dicts, 'local files');
  if (lipArray) next.lipArray = LivePortrait.readLipArray(lipArray);
  replaceModel(next);
  post({ type: 'weights-ready', label: `local files (${files.length})`, seconds: (performance.now() - t0) / 1000 });
}

async function sha256Hex(buf: ArrayBuffer): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The official weights from HuggingFace: sha256 against the repository's LFS record, kept in Cache Storage. */
async function loadHf(set: 'human' | 'animal', endpoint?: string): Promise<void> {
  const t0 = performance.now();
  const cache = await caches.open('liveportrait-weights-v1');
  const records = new Map<string, { sha256?: string; size?: number }>();
  const folders = new Set(MODULES.map((m) => officialPath(m, set).split('/').slice(0, -1).join('/')));
  for (const folder of folders) {
    const res = await fetch(hfTreeUrl(folder, endpoint));
    if (!res.ok) throw new WeightsError(`HuggingFace listing ${folder}: HTTP ${res.status}; check the connection or load local files`);
    for (const e of (await res.json()) as { path: string; size?: number; lfs?: { oid?: string; size?: number } }[])
      records.set(e.path, { sha256: e.lfs?.oid, size: e.lfs?.size ?? e.size });
  }
  const dicts = new Map<ModuleName, { sd: StateDict; name: string }>();
  for (const m of MODULES) {
    const path = officialPath(m, set);
    const url = hfFileUrl(path, endpoint);
    const rec = records.get(path);
    if (!rec?.sha256) throw new WeightsError(`HuggingFace has no record of ${path}`);
    let buf: ArrayBuffer | undefined;
    const hit = await cache.match(url);
    if (hit) {
      buf = await hit.arrayBuffer();
      if ((await sha256Hex(buf)) !== rec.sha256) {
        await cache.delete(url);
        buf = undefined;
      } else post({ type: 'weights-progress', file: path, loaded: buf.byteLength, total: buf.byteLength });
    }
    if (!buf) {
      const res = await fetch(url);
      if (!res.ok || !res.body) throw new WeightsError(`download of ${path} failed: HTTP ${res.status}`);
      const total = rec.size ?? Number(res.headers.get('content-length') ?? 0);
      const parts: Uint8Array[] = [];
      let loaded = 0;
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        loaded += value.length;
        post({ type: 'weights-progress', file: path, loaded, total });
      }
      const bytes = new Uint8Array(loaded);
      let o = 0;
      for (const p of parts) (bytes.set(p, o), (o += p.length));
      buf = bytes.buffer;
      const got = await sha256Hex(buf);
      if (got !== rec.sha256) throw new WeightsError(`${path}: sha256 mismatch (expected ${rec.sha256}, got ${got}); the download was corrupt and was not kept, try again`);
      await cache.put(url, new Response(buf));
    }
    dicts.set(m, { sd: stateDictOf(new Uint8Array(buf), `${m}.pth`), name: path });
  }
  replaceModel(weightsFromDicts(dicts, `HuggingFace ${set}`));
  post({ type: 'weights-ready', label: `official ${set} weights (HuggingFace, sha256 checked)`, seconds: (performance.now() - t0) / 1000 });
}

// ------------------------------------------------------------------ animate

interface SourceFace {
  crop: CropResult;
  info: SourceInfo;
  mask?: PasteBackMask;
}

function animationOptions(p: AnimateParams): Partial<AnimationOptions> {
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
  };
}

function stem(name: string): string {
  const n = name.replace(/\.lpmotion\.safetensors$/i, '');
  const i = n.lastIndexOf('.');
  return i > 0 ? n.slice(0, i) : n;
}

interface DrivingItem {
  panel?: RgbImage;
  frame: DrivingFrameInput | MotionTemplate['frames'][number];
}

interface DrivingPlan {
  isVideo: boolean;
  count: number;
  fps: number;
  video?: VideoIn;
  frames(): AsyncGenerator<DrivingItem>;
}

async function planDriving(f: NamedFile, p: AnimateParams, limit: number): Promise<DrivingPlan> {
  const kind = kindOf(f.name, f.blob.type);
  const needRatios = p.eyeRetargeting || p.lipRetargeting;
  const cropOpts = { scale: p.drivingScale, vxRatio: p.drivingVx, vyRatio: p.drivingVy };
  if (kind === 'template') {
    const tpl = parseAnyTemplate(new Uint8Array(await f.blob.arrayBuffer()), f.name);
    const frames = tpl.frames.slice(0, limit);
    return {
      isVideo: tpl.frames.length > 1,
      count: frames.length,
      fps: tpl.fps,
      async *frames() {
        for (const fr of frames) yield { frame: fr };
      },
    };
  }
  if (kind === 'image') {
    const img = await decodeImage(f.blob, `driving ${f.name}`);
    const crop = p.cropDriving ?? img.width !== img.height;
    const faces = crop || needRatios ? await (await faceDetector()).detect(img, { maxFaces: 1 }) : [];
    let panel: RgbImage;
    let lmk: Point2[] | undefined;
    if (crop) {
      if (!faces[0]) throw new InputError(`no face found in the driving image ${f.name}; use an image with a clearly visible face, or a square face crop with "do crop (driving)" off`);
      const c = cropImageByBbox(img, drivingBbox([faces[0].landmarks], cropOpts), faces[0].landmarks);
      panel = c.imgCrop256;
      lmk = c.lmkCrop;
    } else {
      panel = resizeImage(img, 256, 256, 'linear');
      lmk = faces[0]?.landmarks;
    }
    const ratios = ratiosOf(lmk);
    return {
      isVideo: false,
      count: 1,
      fps: 25,
      async *frames() {
        yield { panel, frame: { image: panel, ...ratios } };
      },
    };
  }
  if (kind !== 'video') throw new InputError(`driving ${f.name} is not a video, an image or a motion template (.pkl, .lpmotion.safetensors)`);
  const video = await openVideo(f.blob, `driving ${f.name}`);
  const count = Math.min(video.frameCount || Infinity, limit);
  if (!Number.isFinite(count) || count <= 0) throw new InputError(`driving video ${f.name} has no frames`);
  const crop = p.cropDriving ?? video.width !== video.height;
  const plan: DrivingPlan = {
    isVideo: true,
    count,
    fps: video.fps,
    video,
    async *frames() {
      let prev: Point2[] | undefined;
      for await (const fr of video.frames(count)) {
        const panel = resizeImage(fr, 256, 256, 'linear');
        let ratios = {};
        if (needRatios) {
          const face = await (await faceDetector()).track(fr, prev);
          prev = face?.landmarks;
          ratios = ratiosOf(prev);
        }
        yield { panel, frame: { image: panel, ...ratios } };
      }
    },
  };
  if (!crop) return plan;
  // The reference's crop_driving_video: track, one averaged box, crop every frame with it.
  const lmks: (Point2[] | undefined)[] = [];
  let prev: Point2[] | undefined;
  for await (const fr of video.frames(count)) {
    if (cancelled) throw new Cancelled();
    const face = await (await faceDetector()).track(fr, prev);
    prev = face?.landmarks;
    lmks.push(prev);
    post({ type: 'progress', progress: { phase: 'Tracking the driving face', done: lmks.length, total: count } });
    await breathe();
  }
  const kept = lmks.filter((l): l is Point2[] => !!l);
  if (kept.length === 0) throw new InputError(`no face found in the driving video ${f.name}; use a video with a clearly visible face, or a square face-cropped video with "do crop (driving)" off`);
  const bbox = drivingBbox(kept, cropOpts);
  plan.count = kept.length;
  plan.frames = async function* () {
    let i = 0;
    for await (const fr of video.frames(count)) {
      const l = lmks[i++];
      if (!l) continue;
      const c = cropImageByBbox(fr, bbox, l);
      yield { panel: c.imgCrop256, frame: { image: c.imgCrop256, ...ratiosOf(c.lmkCrop) } };
    }
  };
  return plan;
}

async function sourceFaces(img: RgbImage, name: string, p: { crop: boolean; scale: number; vxRatio: number; vyRatio: number; allFaces: boolean; faceIndex: number; pasteBack: boolean }): Promise<SourceFace[]> {
  const det = await faceDetector();
  let crops: CropResult[];
  let lmks: (Point2[] | undefined)[];
  if (p.crop) {
    const faces = await det.detect(img);
    if (faces.length === 0) throw new InputError(`no face found in the source ${name}; use a photo where the face is clearly visible (frontal, not tiny), or turn "do crop (source)" off if it is already a face crop`);
    let chosen = faces;
    if (!p.allFaces) {
      if (p.faceIndex >= faces.length) throw new InputError(`face index ${p.faceIndex} is out of range: ${faces.length} face(s) found in ${name} (largest first, from 0)`);
      chosen = [faces[p.faceIndex]];
    }
    crops = chosen.map((f) => cropImage(img, f.landmarks, { scale: p.scale, vxRatio: p.vxRatio, vyRatio: p.vyRatio }));
    lmks = chosen.map((f) => f.landmarks);
  } else {
    const face = (await det.detect(img, { maxFaces: 1 }))[0];
    crops = [wholeImageCrop(img)];
    lmks = [face?.landmarks];
  }
  const m = model();
  const out: SourceFace[] = [];
  try {
    for (const [k, c] of crops.entries()) out.push({ crop: c, info: await m.prepareSource(c.imgCrop256, ratiosOf(lmks[k])), mask: p.pasteBack ? preparePasteBack(c.M_c2o, img.width, img.height) : undefined });
  } catch (e) {
    for (const f of out) m.disposeSource(f.info);
    throw e;
  }
  return out;
}

/** Panels scaled to one height and joined left to right (several faces' comparison). */
function panelRow(panels: RgbImage[], height: number): RgbImage {
  const fit = panels.map((q) => resizeImage(q, Math.max(2, Math.round((q.width * height) / q.height / 2) * 2), height, 'linear'));
  const width = fit.reduce((s, q) => s + q.width, 0);
  const data = new Uint8Array(width * height * 3);
  let x0 = 0;
  for (const q of fit) {
    for (let y = 0; y < height; y++) data.set(q.data.subarray(y * q.width * 3, (y + 1) * q.width * 3), (y * width + x0) * 3);
    x0 += q.width;
  }
  return { width, height, data };
}

async function animate(source: NamedFile, driving: NamedFile, p: AnimateParams): Promise<void> {
  const t0 = performance.now();
  const m = model();
  const sKind = kindOf(source.name, source.blob.type);
  if (sKind === 'template') throw new InputError(`source ${source.name}: a motion template cannot be a source; give an image or a video`);
  if (sKind === 'video') return animateVideoSource(source, driving, p, t0);
  if (sKind !== 'image') throw new InputError(`source ${source.name} is not an image or a video; give a jpg, png, webp, mp4 or webm`);
  const img = resizeToLimit(await decodeImage(source.blob, `source ${source.name}`), 1280, 2);
  const limit = p.maxFrames ?? Infinity;
  const plan = await planDriving(driving, p, limit);
  const doPaste = p.allFaces || (p.pasteBack && p.crop && p.stitching);
  const faces = await sourceFaces(img, source.name, { ...p, pasteBack: doPaste });
  const imageOut = !plan.isVideo;
  const out = imageOut ? undefined : new VideoOut(plan.fps, plan.video?.audio);
  const concatOut = imageOut ? undefined : new VideoOut(plan.fps, plan.video?.audio);
  const gifOut = !imageOut && p.gif ? new GifOut(plan.fps) : undefined;
  let frames = 0;
  let lastImage: { result: RgbImage; concat: RgbImage } | undefined;
  const tLoop = performance.now();
  try {
    async function* inputs() {
      for await (const item of plan.frames()) yield item.frame;
    }
    post({ type: 'progress', progress: { phase: 'Animating', done: 0, total: plan.count } });
    for await (const o of m.animateFaces(faces.map((f) => f.info), inputs(), animationOptions(p), { drivingIsVideo: plan.isVideo })) {
      const results: RgbImage[] = o.faces.map((f) => ({ width: f.width, height: f.height, data: f.rgb }));
      let result = results[0];
      if (doPaste) {
        result = img;
        faces.forEach((f, k) => (result = pasteBack(results[k], f.crop.M_c2o, result, f.mask!)));
      }
      const panel = 'image' in o.input ? (o.input.image as RgbImage) : undefined;
      const concat = faces.length === 1 ? concatFrame(panel, faces[0].crop.imgCrop256, results[0]) : panelRow([...(panel ? [panel] : []), img, result], 512);
      if (out) {
        await out.add(result);
        await concatOut!.add(concat);
        gifOut?.add(result);
      } else lastImage = { result, concat };
      frames++;
      const spf = (performance.now() - tLoop) / 1000 / frames;
      post({ type: 'progress', progress: { phase: 'Animating', done: frames, total: plan.count, secondsPerFrame: spf, eta: spf * Math.max(0, plan.count - frames) } });
      await breathe();
      if (cancelled) throw new Cancelled();
    }
    if (frames === 0) throw new InputError(`nothing to animate: no driving frames in ${driving.name}`);
    const name = `${stem(source.name)}--${stem(driving.name)}`;
    if (imageOut) {
      post({
        type: 'animated',
        result: { blob: await encodePng(lastImage!.result), name: `${name}.png`, mime: 'image/png' },
        concat: { blob: await encodePng(lastImage!.concat), name: `${name}_concat.png`, mime: 'image/png' },
        image: true,
        frames,
        seconds: (performance.now() - t0) / 1000,
        faces: faces.length,
        audio: false,
      });
    } else {
      const v = await out!.finish();
      const c = await concatOut!.finish();
      post({
        type: 'animated',
        result: { blob: v.blob, name: `${name}.${v.ext}`, mime: v.mime },
        concat: { blob: c.blob, name: `${name}_concat.${c.ext}`, mime: c.mime },
        gif: gifOut ? { blob: gifOut.finish(), name: `${name}.gif`, mime: 'image/gif' } : undefined,
        image: false,
        frames,
        seconds: (performance.now() - t0) / 1000,
        faces: faces.length,
        note: v.note,
        audio: v.audio,
      });
    }
  } catch (e) {
    await out?.cancel();
    await concatOut?.cancel();
    throw e;
  } finally {
    for (const f of faces) m.disposeSource(f.info);
    plan.video?.close();
  }
}

/** A source video: every frame cropped (frames without a face skipped), animated with the reference's smoothing, pasted back. */
async function animateVideoSource(source: NamedFile, driving: NamedFile, p: AnimateParams, t0: number, lipRatio?: number | null): Promise<void> {
  const m = model();
  const video = await openVideo(source.blob, `source ${source.name}`);
  try {
    const limit = Math.min(p.maxFrames ?? Infinity, video.frameCount || Infinity);
    const editing = lipRatio !== undefined;
    const plan = editing ? undefined : await planDriving(driving, p, limit);
    const drv: DrivingItem[] = [];
    if (plan) for await (const it of plan.frames()) drv.push(it);
    const n = Math.min(limit, plan?.isVideo ? drv.length : Infinity);
    const det = await faceDetector();
    const src: { index: number; crop256: RgbImage; M_c2o: CropResult['M_c2o']; lmk?: Point2[]; original: RgbImage }[] = [];
    let prev: Point2[] | undefined;
    let idx = 0;
    for await (const raw of video.frames(n)) {
      if (cancelled) throw new Cancelled();
      const f = resizeToLimit(raw, 1280, 2);
      const face = await det.track(f, prev);
      prev = face?.landmarks;
      if (p.crop) {
        if (face) {
          const c = cropImage(f, face.landmarks, { scale: p.scale, vxRatio: p.vxRatio, vyRatio: p.vyRatio });
          src.push({ index: idx, crop256: c.imgCrop256, M_c2o: c.M_c2o, lmk: face.landmarks, original: f });
        }
      } else src.push({ index: idx, crop256: resizeImage(f, 256, 256, 'linear'), M_c2o: [1, 0, 0, 0, 1, 0], lmk: face?.landmarks, original: f });
      idx++;
      post({ type: 'progress', progress: { phase: 'Cropping the source video', done: idx, total: Number.isFinite(n) ? n : undefined } });
      await breathe();
    }
    if (src.length === 0) throw new InputError(`no face found in the source video ${source.name}; use a video where the face is clearly visible`);
    const count = plan?.isVideo ? Math.min(src.length, drv.length) : src.length;
    const sourceFrames = src.slice(0, count).map((s) => ({ image: s.crop256, ...ratiosOf(s.lmk) }));
    let frames: AsyncGenerator<{ width: number; height: number; rgb: Uint8Array }>;
    if (editing) {
      // Video editing: the reference's video retargeting, each frame's lips to one opening (or silent).
      frames = m.retargetVideo(sourceFrames, { lipRatio, smoothObservationVariance: p.smoothObservationVariance });
    } else {
      const drivingInput = plan!.isVideo ? (drv.slice(0, count).map((d) => d.frame) as DrivingFrameInput[]) : (drv[0].frame as DrivingFrameInput);
      frames = m.animateSourceVideo(sourceFrames, drivingInput, animationOptions(p));
    }
    const fps = video.fps;
    const out = new VideoOut(fps, plan?.video?.audio ?? video.audio);
    const concatOut = new VideoOut(fps, plan?.video?.audio ?? video.audio);
    const gifOut = p.gif ? new GifOut(fps) : undefined;
    const doPaste = p.pasteBack && p.crop && p.stitching;
    let i = 0;
    const tLoop = performance.now();
    try {
      for await (const o of frames) {
        const s = src[i];
        const crop: RgbImage = { width: o.width, height: o.height, data: o.rgb };
        const result = doPaste ? pasteBack(crop, s.M_c2o, s.original, preparePasteBack(s.M_c2o, s.original.width, s.original.height)) : crop;
        const panel = plan ? (plan.isVideo ? drv[i]?.panel : drv[0]?.panel) : undefined;
        await out.add(result);
        await concatOut.add(concatFrame(panel, s.crop256, crop));
        gifOut?.add(result);
        i++;
        const spf = (performance.now() - tLoop) / 1000 / i;
        post({ type: 'progress', progress: { phase: 'Animating', done: i, total: count, secondsPerFrame: spf, eta: spf * (count - i) } });
        await breathe();
        if (cancelled) throw new Cancelled();
      }
      const v = await out.finish();
      const c = await concatOut.finish();
      const name = editing ? `${stem(source.name)}--${lipRatio === null ? 'silent' : `lip-${lipRatio}`}` : `${stem(source.name)}--${stem(driving.name)}`;
      post({
        type: 'animated',
        result: { blob: v.blob, name: `${name}.${v.ext}`, mime: v.mime },
        concat: { blob: c.blob, name: `${name}_concat.${c.ext}`, mime: c.mime },
        gif: gifOut ? { blob: gifOut.finish(), name: `${name}.gif`, mime: 'image/gif' } : undefined,
        image: false,
        frames: i,
        seconds: (performance.now() - t0) / 1000,
        faces: 1,
        note: v.note,
        audio: v.audio,
      });
    } catch (e) {
      await out.cancel();
      await concatOut.cancel();
      throw e;
    } finally {
      plan?.video?.close();
    }
  } finally {
    video.close();
  }
}

// ------------------------------------------------------------------ image editing

let editState: { img: RgbImage; crop: CropResult; info: SourceInfo; mask: PasteBackMask } | undefined;

async function editSource(source: NamedFile, crop: boolean, scale: number, faceIndex: number): Promise<void> {
  const m = model();
  if (kindOf(source.name, source.blob.type) !== 'image') throw new InputError(`${source.name} is not an image; image editing takes a jpg, png or webp`);
  const img = resizeToLimit(await decodeImage(source.blob, source.name), 1280, 2);
  const faces = await sourceFaces(img, source.name, { crop, scale, vxRatio: 0, vyRatio: -0.125, allFaces: false, faceIndex, pasteBack: true });
  if (editState) m.disposeSource(editState.info);
  const f = faces[0];
  editState = { img, crop: f.crop, info: f.info, mask: f.mask! };
  const eye = f.info.eyeRatio ? (f.info.eyeRatio[0] + f.info.eyeRatio[1]) / 2 : 0.3;
  post({ type: 'edit-ready', eyeRatio: eye, lipRatio: f.info.lipRatio ?? 0, sourceEyeRatio: f.info.eyeRatio ? Array.from(f.info.eyeRatio) : undefined, sourceLipRatio: f.info.lipRatio, crop: imageData(f.crop.imgCrop256) });
}

async function edit(e: EditParams, seq: number): Promise<void> {
  if (!editState) throw new InputError('pick a source image for editing first');
  const t0 = performance.now();
  const out = await model().retarget(editState.info, toRetargetEdit(e, editState.info));
  const crop: RgbImage = { width: out.width, height: out.height, data: out.rgb };
  const pasted = pasteBack(crop, editState.crop.M_c2o, editState.img, editState.mask);
  post({ type: 'edit-result', seq, crop: imageData(crop), pasted: imageData(pasted), pastedPng: await encodePng(pasted), seconds: (performance.now() - t0) / 1000 });
}

// ------------------------------------------------------------------ webcam live

let live: { faces: SourceFace[]; img: RgbImage; p: AnimateParams; first?: Awaited<ReturnType<LivePortrait['extractMotion']>>[number]; prev?: Point2[] } | undefined;

async function liveStart(source: NamedFile, p: AnimateParams): Promise<void> {
  const img = resizeToLimit(await decodeImage(source.blob, `source ${source.name}`), 1280, 2);
  const doPaste = p.pasteBack && p.crop && p.stitching;
  const faces = await sourceFaces(img, source.name, { ...p, allFaces: false, pasteBack: doPaste });
  liveStop();
  live = { faces, img, p: { ...p, pasteBack: doPaste } };
  post({ type: 'log', line: 'live: source ready' });
}

/** One webcam picture as a driving frame: the face cropped as a driving video's (this frame's box), else the centre square. */
async function livePanel(frame: ImageBitmap, p: AnimateParams): Promise<{ panel: RgbImage; ratios: { eyeRatio?: number[]; lipRatio?: number } }> {
  const canvas = new OffscreenCanvas(frame.width, frame.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(frame, 0, 0);
  const rgba = ctx.getImageData(0, 0, frame.width, frame.height).data;
  const img: RgbImage = { width: frame.width, height: frame.height, data: new Uint8Array(frame.width * frame.height * 3) };
  for (let i = 0, j = 0; j < rgba.length; i += 3, j += 4) (img.data[i] = rgba[j]), (img.data[i + 1] = rgba[j + 1]), (img.data[i + 2] = rgba[j + 2]);
  const crop = p.cropDriving !== false;
  const face = crop || p.eyeRetargeting || p.lipRetargeting ? await (await faceDetector()).track(img, live!.prev) : undefined;
  live!.prev = face?.landmarks;
  if (crop && face) {
    const c = cropImageByBbox(img, drivingBbox([face.landmarks], { scale: p.drivingScale, vxRatio: p.drivingVx, vyRatio: p.drivingVy }), face.landmarks);
    return { panel: c.imgCrop256, ratios: ratiosOf(c.lmkCrop) };
  }
  const side = Math.min(img.width, img.height);
  const sq = cropImageByBbox(img, [(img.width - side) / 2, (img.height - side) / 2, (img.width + side) / 2, (img.height + side) / 2]);
  return { panel: sq.imgCrop256, ratios: ratiosOf(face?.landmarks) };
}

async function liveFrame(frame: ImageBitmap): Promise<void> {
  if (!live) return frame.close();
  const t0 = performance.now();
  let driving: Awaited<ReturnType<typeof livePanel>>;
  try {
    driving = await livePanel(frame, live.p);
  } finally {
    frame.close();
  }
  const m = model();
  const motion = (await m.extractMotion(driving.panel, driving.ratios))[0];
  if (!live) return;
  live.first ??= motion;
  const f = live.faces[0];
  const x_d = await m.drivingKeypoints(f.info, motion, live.first, animationOptions(live.p), { drivingIsVideo: true });
  try {
    const o = await m.renderImage(f.info.f_s, f.info.x_s, x_d);
    let result: RgbImage = { width: o.width, height: o.height, data: o.rgb };
    if (live.p.pasteBack) result = pasteBack(result, f.crop.M_c2o, live.img, f.mask!);
    post({ type: 'live-frame', image: imageData(result), seconds: (performance.now() - t0) / 1000 });
  } finally {
    x_d.dispose();
  }
}

function liveStop(): void {
  if (live && lp) for (const f of live.faces) lp.disposeSource(f.info);
  live = undefined;
}

// ------------------------------------------------------------------ probe (tests: F, M and S outputs on this backend)

async function probe(image: NamedFile): Promise<void> {
  const m = model();
  const img = await decodeImage(image.blob, image.name);
  const outputs: Record<string, number[]> = {};
  // Asynchronous reads only: webgpu's synchronous read is not reliable in a worker.
  const named: Record<string, tf.Tensor> = tf.tidy(() => {
    const x = prepareImage(img, 'probe image');
    const out: Record<string, tf.Tensor> = { F: m.F.apply(x) };
    const mo = m.M.apply(x);
    for (const [k, v] of Object.entries(mo)) out[`M.${k}`] = v as tf.Tensor;
    const x_s = mo.kp.reshape([1, 21, 3]) as tf.Tensor3D;
    const x_d = tf.add(x_s, tf.mul(tf.sin(tf.range(0, 63).reshape([1, 21, 3])), 0.05)) as tf.Tensor3D;
    out['S.stitching'] = m.S.stitching(x_s, x_d);
    out['S.eye'] = m.S.retargetEye(x_s, tf.tensor2d([[0.3, 0.32, 0.1]]));
    out['S.lip'] = m.S.retargetLip(x_s, tf.tensor2d([[0.2, 0.5]]));
    return out;
  });
  try {
    for (const [k, t] of Object.entries(named)) outputs[k] = Array.from(await t.data());
  } finally {
    tf.dispose(Object.values(named));
  }
  post({ type: 'probe-result', outputs, backend: tf.getBackend() });
}

// ------------------------------------------------------------------ messages

function describe(e: unknown): string {
  if (e instanceof LivePortraitError) return e.message;
  const msg = e instanceof Error ? e.message : String(e);
  return msg || 'unknown error';
}

const queue: ToEngine[] = [];
let running = false;

async function handle(msg: ToEngine): Promise<void> {
  try {
    switch (msg.type) {
      case 'init': {
        base = msg.base;
        wasmThreads = msg.threads;
        const want = msg.backend === 'auto' ? await chooseAuto() : msg.backend;
        try {
          await init(want);
        } catch (e) {
          if (msg.backend !== 'auto' || want === 'wasm') throw e;
          post({ type: 'log', line: `webgpu failed (${describe(e)}); using wasm` });
          await init('wasm');
        }
        // networks live on the backend they were built on: the page reloads the weights
        if (lp) {
          void lp.dispose();
          lp = undefined;
          editState = undefined;
        }
        break;
      }
      case 'weights-synthetic': {
        const t0 = performance.now();
        replaceModel(LivePortrait.synthetic(msg.seed, { lipArray: new Float32Array(63) }));
        post({ type: 'weights-ready', label: `SYNTHETIC weights, seed ${msg.seed} (meaningless output)`, seconds: (performance.now() - t0) / 1000 });
        break;
      }
      case 'weights-files':
        await loadFiles(msg.files);
        break;
      case 'weights-hf':
        await loadHf(msg.set, msg.endpoint);
        break;
      case 'animate':
        cancelled = false;
        await animate(msg.source, msg.driving, msg.params);
        break;
      case 'video-edit':
        cancelled = false;
        await animateVideoSource(msg.source, msg.source, { ...DEFAULT_EDIT_VIDEO, scale: msg.scale, maxFrames: msg.maxFrames, smoothObservationVariance: msg.smoothObservationVariance }, performance.now(), msg.lipRatio);
        break;
      case 'edit-source':
        await editSource(msg.source, msg.crop, msg.scale, msg.faceIndex);
        break;
      case 'edit':
        await edit(msg.params, msg.seq);
        break;
      case 'live-start':
        await liveStart(msg.source, msg.params);
        break;
      case 'live-frame':
        await liveFrame(msg.frame);
        break;
      case 'live-stop':
        liveStop();
        break;
      case 'probe':
        await probe(msg.image);
        break;
      default:
        break;
    }
  } catch (e) {
    if (e instanceof Cancelled) post({ type: 'cancelled' });
    else {
      console.error(e);
      post({ type: 'error', message: describe(e), during: msg.type });
    }
  }
}

const DEFAULT_EDIT_VIDEO: AnimateParams = {
  relativeMotion: true,
  animationRegion: 'all',
  drivingMultiplier: 1,
  drivingOption: 'expression-friendly',
  stitching: true,
  eyeRetargeting: false,
  lipRetargeting: false,
  normalizeLip: false,
  smoothObservationVariance: 3e-6,
  crop: true,
  scale: 2.3,
  vxRatio: 0,
  vyRatio: -0.125,
  drivingScale: 2.2,
  drivingVx: 0,
  drivingVy: -0.1,
  pasteBack: true,
  allFaces: false,
  faceIndex: 0,
};

self.onmessage = (ev: MessageEvent<ToEngine>) => {
  const msg = ev.data;
  if (msg.type === 'cancel') {
    cancelled = true;
    return;
  }
  if (msg.type === 'memory') {
    // answered at once, also between the frames of a run: tfjs's count, and the wasm heap's size
    const mem = tf.memory();
    const heap = (tf.getBackend() === 'wasm' ? (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer.byteLength : undefined) ?? undefined;
    post({ type: 'memory', numTensors: mem.numTensors, numBytes: mem.numBytes, wasmHeapBytes: heap });
    return;
  }
  if (msg.type === 'live-frame' && queue.some((q) => q.type === 'live-frame')) {
    // live: keep only the newest webcam frame waiting
    const i = queue.findIndex((q) => q.type === 'live-frame');
    (queue[i] as { frame: ImageBitmap }).frame.close();
    queue.splice(i, 1);
  }
  queue.push(msg);
  void pump();
};

async function pump(): Promise<void> {
  if (running) return;
  running = true;
  try {
    while (queue.length) await handle(queue.shift()!);
  } finally {
    running = false;
  }
}
