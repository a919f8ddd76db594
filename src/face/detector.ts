/**
 * Face detection and dense landmarks for real photos and video frames.
 *
 * Models: MediaPipe BlazeFace (back/full-range, 256² input, 896 anchors) and
 * FaceMesh (192² input, 468 points), tfjs graph models shipped inside the npm
 * package `@vladmandic/human` (its models/ folder: src/node/face_models.ts
 * loads them from disk, a page from its static files), run on the active
 * backend.
 *
 * The reference (LivePortrait) detects with InsightFace RetinaFace, crops from
 * InsightFace's 106 points and measures eye/lip ratios on its own 203-point
 * model; here FaceMesh's 468 points stand in for both (see crop.ts and
 * ratios.ts for the index mapping).
 */
import * as tf from '@tensorflow/tfjs';
import { extentAlong, type CropOptions, DRIVING_CROP, averageBbox, bboxFromLandmarks } from './crop.js';
import { applyAffine, type Affine, type Point2, warpAffineFloat } from '../image/affine.js';
import { type RgbImage, boxDownscale } from '../image/image.js';

export interface Face {
  /** Axis-aligned box of the landmarks [x0, y0, x1, y1], image pixels. */
  box: [number, number, number, number];
  /** Detector score (0..1). */
  score: number;
  /** FaceMesh confidence (0..1) of the final landmark pass. */
  meshScore: number;
  /** 468 FaceMesh points [x, y], image pixel coordinates (pixel centres at integers). */
  landmarks: Point2[];
}

export interface DetectOptions {
  /** BlazeFace score threshold (default 0.5). */
  minScore?: number;
  /** FaceMesh confidence below which a detection is dropped (default 0.5). */
  minMeshScore?: number;
  /** NMS IoU threshold (default 0.3). */
  iou?: number;
  /** Most faces kept, largest first (default: all). */
  maxFaces?: number;
}

/** A rotated square region: centre, side, and unit axes (ux: right, uy: down). */
export interface Roi {
  center: Point2;
  size: number;
  ux: Point2;
}

const DET_SIZE = 256;
const MESH_SIZE = 192;
/** MediaPipe's ROI enlargement around a face for the landmark model. */
const ROI_SCALE = 1.5;

/** The two graph models: BlazeFace (detector) and FaceMesh (mesh). */
export interface FaceModels {
  detector: tf.GraphModel;
  mesh: tf.GraphModel;
}

/** Where the two models come from: a model.json URL or a tfjs IOHandler each. */
export interface FaceModelSources {
  detector: string | tf.io.IOHandler;
  mesh: string | tf.io.IOHandler;
}

// ---------------------------------------------------------------- detector

/** BlazeFace anchors for a 256² input: stride 16 with 2 anchors, stride 32 with 6. */
function blazeAnchors(): Point2[] {
  const anchors: Point2[] = [];
  for (const [stride, n] of [
    [16, 2],
    [32, 6],
  ]) {
    const cells = Math.ceil(DET_SIZE / stride);
    for (let gy = 0; gy < cells; gy++)
      for (let gx = 0; gx < cells; gx++)
        for (let k = 0; k < n; k++) anchors.push([stride * (gx + 0.5), stride * (gy + 0.5)]);
  }
  return anchors;
}
const ANCHORS = blazeAnchors();

interface Detection {
  box: [number, number, number, number];
  score: number;
  /** 6 points: eye, eye, nose, mouth, ear, ear (image pixels). */
  keypoints: Point2[];
}

function iou(a: number[], b: number[]): number {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return ua > 0 ? inter / ua : 0;
}

/** Run BlazeFace on the whole image (letterboxed to a square, top-left). */
async function runDetector(model: tf.GraphModel, img: RgbImage, minScore: number, iouThr: number): Promise<Detection[]> {
  // anti-alias large images, then letterbox into 256²
  const k = Math.max(1, Math.floor(Math.max(img.width, img.height) / (2 * DET_SIZE)));
  const small = boxDownscale(img, k);
  const side = Math.max(small.width, small.height);
  const s = side / DET_SIZE; // input pixel → small-image pixel
  const dst2src: Affine = [s, 0, 0.5 * s - 0.5, 0, s, 0.5 * s - 0.5];
  const pixels = warpAffineFloat(small.data, small.width, small.height, 3, dst2src, {
    x0: 0,
    y0: 0,
    width: DET_SIZE,
    height: DET_SIZE,
  });
  for (let i = 0; i < pixels.length; i++) pixels[i] = pixels[i] / 127.5 - 1;
  const [scores, regs] = tf.tidy(() => {
    const input = tf.tensor4d(pixels, [1, DET_SIZE, DET_SIZE, 3]);
    const outs = model.execute(input) as tf.Tensor[];
    // [1,512,1], [1,384,1], [1,512,16], [1,384,16] in any order: 512 rows first
    const bySize = [...outs].sort((a, b) => a.size - b.size);
    const sc = tf.concat([bySize[1], bySize[0]], 1).reshape([-1]);
    const rg = tf.concat([bySize[3], bySize[2]], 1).reshape([-1, 16]);
    return [tf.sigmoid(sc), rg];
  });
  const sc = await scores.data();
  const rg = await regs.data();
  tf.dispose([scores, regs]);
  const toImage = (v: number) => (v * s + 0.5 * s - 0.5) * k + (k - 1) / 2; // input px → image px (approx.)
  const cand: Detection[] = [];
  for (let i = 0; i < ANCHORS.length; i++) {
    if (sc[i] < minScore) continue;
    const [ax, ay] = ANCHORS[i];
    const r = rg.subarray(i * 16, i * 16 + 16);
    const cx = ax + r[0];
    const cy = ay + r[1];
    const box: [number, number, number, number] = [
      toImage(cx - r[2] / 2),
      toImage(cy - r[3] / 2),
      toImage(cx + r[2] / 2),
      toImage(cy + r[3] / 2),
    ];
    const keypoints: Point2[] = [];
    for (let j = 0; j < 6; j++) keypoints.push([toImage(ax + r[4 + 2 * j]), toImage(ay + r[5 + 2 * j])]);
    cand.push({ box, score: sc[i], keypoints });
  }
  cand.sort((a, b) => b.score - a.score);
  const kept: Detection[] = [];
  for (const c of cand) if (kept.every((d) => iou(d.box, c.box) < iouThr)) kept.push(c);
  return kept;
}

// ---------------------------------------------------------------- mesh

function normalize(v: Point2): Point2 {
  const l = Math.hypot(v[0], v[1]);
  return l > 1e-6 ? [v[0] / l, v[1] / l] : [1, 0];
}

/** ROI around a detection: upright axis from eye centre to mouth, side 1.5 × box. */
export function roiFromDetection(det: { box: number[]; keypoints: Point2[] }): Roi {
  const [e0, e1, , mouth] = det.keypoints;
  const eyes: Point2 = [(e0[0] + e1[0]) / 2, (e0[1] + e1[1]) / 2];
  const uy = normalize([mouth[0] - eyes[0], mouth[1] - eyes[1]]);
  const [x0, y0, x1, y1] = det.box;
  return {
    center: [(x0 + x1) / 2, (y0 + y1) / 2],
    size: Math.max(x1 - x0, y1 - y0) * ROI_SCALE,
    ux: [uy[1], -uy[0]],
  };
}

/** FaceMesh eye corners (image-left eye outer corner 33, image-right eye outer corner 263). */
const EYE_LINE: [number, number] = [33, 263];

/** ROI from a mesh (for refinement and video tracking): eye-line roll, landmark extent × 1.5. */
export function roiFromLandmarks(pts: Point2[]): Roi {
  const a = pts[EYE_LINE[0]];
  const b = pts[EYE_LINE[1]];
  const ux = normalize([b[0] - a[0], b[1] - a[1]]);
  const uy: Point2 = [-ux[1], ux[0]];
  const { minU, maxU, minV, maxV } = extentAlong(pts, ux, uy);
  const cu = (minU + maxU) / 2;
  const cv = (minV + maxV) / 2;
  return {
    center: [cu * ux[0] + cv * uy[0], cu * ux[1] + cv * uy[1]],
    size: Math.max(maxU - minU, maxV - minV) * ROI_SCALE,
    ux,
  };
}

/** Map from ROI input pixels (n × n) to image pixels. */
function roiToImage(roi: Roi, n: number): Affine {
  const k = roi.size / n;
  const [ux0, ux1] = roi.ux;
  const uy0 = -ux1;
  const uy1 = ux0;
  // continuous coords: p = c + R (q - n/2) k, pixel index = continuous - 0.5
  const h = n / 2 - 0.5;
  return [
    ux0 * k,
    uy0 * k,
    roi.center[0] - (ux0 * h + uy0 * h) * k,
    ux1 * k,
    uy1 * k,
    roi.center[1] - (ux1 * h + uy1 * h) * k,
  ];
}

/** Run FaceMesh on one ROI: 468 points in image pixels and the face confidence. */
async function landmarksFromRoi(mesh: tf.GraphModel, img: RgbImage, roi: Roi): Promise<{ landmarks: Point2[]; score: number }> {
  const M = roiToImage(roi, MESH_SIZE);
  const pixels = warpAffineFloat(img.data, img.width, img.height, 3, M, {
    x0: 0,
    y0: 0,
    width: MESH_SIZE,
    height: MESH_SIZE,
  });
  for (let i = 0; i < pixels.length; i++) pixels[i] /= 255;
  const outs = tf.tidy(() => {
    const input = tf.tensor4d(pixels, [1, MESH_SIZE, MESH_SIZE, 3]);
    return mesh.execute(input) as tf.Tensor[];
  });
  const meshT = outs.find((t) => t.shape[t.shape.length - 1] === 1404);
  const confT = outs.find((t) => t.shape[t.shape.length - 1] === 1);
  if (!meshT || !confT) {
    tf.dispose(outs);
    throw new Error('FaceMesh model: unexpected outputs');
  }
  const raw = await meshT.data();
  let score = (await confT.data())[0];
  tf.dispose(outs);
  if (score < 0 || score > 1) score = 1 / (1 + Math.exp(-score));
  const landmarks: Point2[] = [];
  // outputs are continuous coords in the 192² input: to pixel index, -0.5
  for (let i = 0; i < 468; i++) landmarks.push(applyAffine(M, [raw[3 * i] - 0.5, raw[3 * i + 1] - 0.5]));
  return { landmarks, score };
}

function landmarkBox(pts: Point2[]): [number, number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const [x, y] of pts) {
    x0 = Math.min(x0, x);
    y0 = Math.min(y0, y);
    x1 = Math.max(x1, x);
    y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

const boxArea = (b: number[]) => (b[2] - b[0]) * (b[3] - b[1]);

/**
 * Faces and their 468 FaceMesh landmarks in RGB images, on the active tfjs
 * backend. Load once, use for every image and frame, dispose at the end.
 *
 * @example
 * const detector = await FaceDetector.load({ detector: 'models/blazeface.json', mesh: 'models/facemesh.json' });
 * const faces = await detector.detect(image);   // largest first
 * const crop = cropImage(image, faces[0].landmarks);
 * detector.dispose();
 */
export class FaceDetector {
  private constructor(private readonly models: FaceModels) {}

  /** Load both graph models (in Node, `loadFaceDetector()` of the node adapter finds them for you). */
  static async load(sources: FaceModelSources): Promise<FaceDetector> {
    const [detector, mesh] = await Promise.all([tf.loadGraphModel(sources.detector), tf.loadGraphModel(sources.mesh)]);
    return new FaceDetector({ detector, mesh });
  }

  /** From models already loaded (the detector owns them from now on). */
  static fromModels(models: FaceModels): FaceDetector {
    return new FaceDetector(models);
  }

  /**
   * Detect all faces: BlazeFace boxes, then FaceMesh twice per face (ROI from
   * the detection, then refined from the first mesh). Largest face first (the
   * reference's 'large-small' order).
   */
  async detect(img: RgbImage, opts: DetectOptions = {}): Promise<Face[]> {
    const { detector, mesh } = this.models;
    const dets = await runDetector(detector, img, opts.minScore ?? 0.5, opts.iou ?? 0.3);
    const faces: Face[] = [];
    for (const det of dets) {
      let r = await landmarksFromRoi(mesh, img, roiFromDetection(det));
      if (r.score < (opts.minMeshScore ?? 0.5)) continue;
      r = await landmarksFromRoi(mesh, img, roiFromLandmarks(r.landmarks));
      if (r.score < (opts.minMeshScore ?? 0.5)) continue;
      faces.push({ box: landmarkBox(r.landmarks), score: det.score, meshScore: r.score, landmarks: r.landmarks });
    }
    // a mesh refinement can land two detections on one face: drop duplicates
    faces.sort((a, b) => boxArea(b.box) - boxArea(a.box));
    const unique: Face[] = [];
    for (const f of faces) if (unique.every((u) => iou(u.box, f.box) < 0.5)) unique.push(f);
    return opts.maxFaces ? unique.slice(0, opts.maxFaces) : unique;
  }

  /**
   * Landmarks in a video frame tracked from the previous frame's landmarks (the
   * reference runs its landmark model from the last landmarks the same way);
   * falls back to detection when the track is lost. Returns undefined when no
   * face is found.
   */
  async track(img: RgbImage, previous: Point2[] | undefined, opts: DetectOptions = {}): Promise<Face | undefined> {
    if (previous) {
      const r = await landmarksFromRoi(this.models.mesh, img, roiFromLandmarks(previous));
      if (r.score >= (opts.minMeshScore ?? 0.5)) {
        return { box: landmarkBox(r.landmarks), score: r.score, meshScore: r.score, landmarks: r.landmarks };
      }
    }
    const faces = await this.detect(img, { ...opts, maxFaces: 1 });
    return faces[0];
  }

  dispose(): void {
    this.models.detector.dispose();
    this.models.mesh.dispose();
  }
}

/** The averaged driving box from per-frame landmarks. */
export function drivingBbox(lmks: Point2[][], opts: CropOptions = {}): [number, number, number, number] {
  return averageBbox(lmks.map((l) => bboxFromLandmarks(l, { ...DRIVING_CROP, ...opts })));
}
