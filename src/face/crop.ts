/**
 * The reference's face crop (src/utils/crop.py) on FaceMesh landmarks, with
 * the affine warps of src/image/affine.ts.
 */
import { type Affine, type Point2, invertAffine, transformPoints, warpImage } from '../image/affine.js';
import { type RgbImage, boxDownscale, resizeImage } from '../image/image.js';
import { InputError } from '../errors.js';

// ------------------------------------------------------------ the crop

/*
 * Landmark mapping (reference → FaceMesh 468).
 *
 * The reference computes the crop from InsightFace's 106 points (source) or
 * its own 203 points (driving video): (1) two points fix the roll, the eye
 * centre (mean of the two eye centres, each the mean of 4 points around the
 * eye) and the lip centre (mean of the two mouth corners); (2) the square's
 * side is the larger extent of all points in that rotated frame, i.e. jaw
 * contour (ear to ear, down to the chin) by eyebrows to chin. FaceMesh's
 * points reach up to the forehead, so the extent uses only the equivalent
 * subset: the lower face silhouette from ear to ear, both eyebrows, the eyes,
 * nose and lips.
 */

/** Eye in image-left position (subject's right): outer corner, inner corner, upper lid, lower lid. */
export const FM_EYE_L = [33, 133, 159, 145] as const;
/** Eye in image-right position (subject's left): inner corner, outer corner, upper lid, lower lid. */
export const FM_EYE_R = [362, 263, 386, 374] as const;
/** Mouth corners. */
export const FM_MOUTH_CORNERS = [61, 291] as const;
/** Silhouette from the image-left ear round the chin to the image-right ear. */
export const FM_JAW = [
  127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356,
] as const;
export const FM_BROWS = [
  70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276,
] as const;
/** Points standing in for the reference's 106 (extent and centre of the crop). */
export const FM_CROP_POINTS: readonly number[] = [
  ...FM_JAW,
  ...FM_BROWS,
  ...FM_EYE_L,
  ...FM_EYE_R,
  1, // nose tip
  ...FM_MOUTH_CORNERS,
  13,
  14,
];

export interface CropOptions {
  /** Output side (default 512). */
  dsize?: number;
  /** Square side / face extent (default 2.3; the driving video uses 2.2). */
  scale?: number;
  /** Shift along the face's x axis, × side (default 0). */
  vxRatio?: number;
  /** Shift along the face's y axis, × side; negative moves the crop up (default -0.125; driving -0.1). */
  vyRatio?: number;
  /** Rotate so the eye→lip axis is vertical (default true). */
  doRot?: boolean;
}

/** The reference's CropConfig for source images and videos. */
export const SOURCE_CROP: Required<CropOptions> = { dsize: 512, scale: 2.3, vxRatio: 0, vyRatio: -0.125, doRot: true };
/** The reference's crop_driving_video settings (axis-aligned, one box for the whole video). */
export const DRIVING_CROP: Required<CropOptions> = { dsize: 512, scale: 2.2, vxRatio: 0, vyRatio: -0.1, doRot: false };

const mean = (pts: Point2[]): Point2 => {
  let x = 0;
  let y = 0;
  for (const p of pts) {
    x += p[0];
    y += p[1];
  }
  return [x / pts.length, y / pts.length];
};

/** The reference's parse_pt2 (use_lip): [eye centre, lip centre] from FaceMesh points. */
export function parsePt2(lmk: Point2[]): [Point2, Point2] {
  const eyeL = mean(FM_EYE_L.map((i) => lmk[i]));
  const eyeR = mean(FM_EYE_R.map((i) => lmk[i]));
  const eye: Point2 = [(eyeL[0] + eyeR[0]) / 2, (eyeL[1] + eyeR[1]) / 2];
  const lip = mean(FM_MOUTH_CORNERS.map((i) => lmk[i]));
  return [eye, lip];
}

export interface FaceRect {
  /** Crop centre, image pixels. */
  center: Point2;
  /** Square side (scaled). */
  size: number;
  /** Roll in radians: the crop's x axis is (cos, sin). */
  angle: number;
  /** Unit axes of the face frame. */
  ux: Point2;
  uy: Point2;
}

/** Extent of points along the axes ux, uy (coordinates relative to `origin`). */
export function extentAlong(pts: readonly Point2[], ux: Point2, uy: Point2, origin: Point2 = [0, 0]): { minU: number; maxU: number; minV: number; maxV: number } {
  let minU = Infinity;
  let maxU = -Infinity;
  let minV = Infinity;
  let maxV = -Infinity;
  for (const p of pts) {
    const dx = p[0] - origin[0];
    const dy = p[1] - origin[1];
    const u = dx * ux[0] + dy * ux[1];
    const v = dx * uy[0] + dy * uy[1];
    minU = Math.min(minU, u);
    maxU = Math.max(maxU, u);
    minV = Math.min(minV, v);
    maxV = Math.max(maxV, v);
  }
  return { minU, maxU, minV, maxV };
}

/** The reference's parse_rect_from_landmark on FaceMesh points (square, scaled, shifted). */
export function parseRectFromLandmarks(lmk: Point2[], opts: CropOptions = {}): FaceRect {
  const scale = opts.scale ?? SOURCE_CROP.scale;
  const vx = opts.vxRatio ?? SOURCE_CROP.vxRatio;
  const vy = opts.vyRatio ?? SOURCE_CROP.vyRatio;
  const [eye, lip] = parsePt2(lmk);
  let uy: Point2 = [lip[0] - eye[0], lip[1] - eye[1]];
  const l = Math.hypot(uy[0], uy[1]);
  uy = l <= 1e-3 ? [0, 1] : [uy[0] / l, uy[1] / l];
  const ux: Point2 = [uy[1], -uy[0]];
  let angle = Math.acos(Math.max(-1, Math.min(1, ux[0])));
  if (ux[1] < 0) angle = -angle;
  const pts = FM_CROP_POINTS.map((i) => lmk[i]);
  const c0 = mean(pts);
  const { minU, maxU, minV, maxV } = extentAlong(pts, ux, uy, c0);
  const cu = (minU + maxU) / 2;
  const cv = (minV + maxV) / 2;
  const size = Math.max(maxU - minU, maxV - minV) * scale;
  const center: Point2 = [
    c0[0] + ux[0] * cu + uy[0] * cv + ux[0] * vx * size + uy[0] * vy * size,
    c0[1] + ux[1] * cu + uy[1] * cv + ux[1] * vx * size + uy[1] * vy * size,
  ];
  return { center, size, angle, ux, uy };
}

/** Original → crop similarity for a rect (rotated if doRot, like _estimate_similar_transform_from_pts). */
export function cropTransform(rect: FaceRect, dsize: number, doRot: boolean): { M_o2c: Affine; M_c2o: Affine } {
  const s = dsize / rect.size;
  const t = dsize / 2;
  const [cx, cy] = rect.center;
  const c = doRot ? Math.cos(rect.angle) : 1;
  const sn = doRot ? Math.sin(rect.angle) : 0;
  const M_o2c: Affine = [s * c, s * sn, t - s * (c * cx + sn * cy), -s * sn, s * c, t - s * (-sn * cx + c * cy)];
  return { M_o2c, M_c2o: invertAffine(M_o2c) };
}

export interface CropResult {
  /** dsize² crop (512). */
  imgCrop: RgbImage;
  /** 256² version for the networks (2×2 means, the reference's INTER_AREA). */
  imgCrop256: RgbImage;
  /** Original → crop. */
  M_o2c: Affine;
  /** Crop → original (paste-back). */
  M_c2o: Affine;
  /** Landmarks in crop pixels (dsize). */
  lmkCrop: Point2[];
  /** Landmarks in 256² crop pixels. */
  lmkCrop256: Point2[];
}

function finishCrop(img: RgbImage, lmk: Point2[] | undefined, M_o2c: Affine, M_c2o: Affine, dsize: number): CropResult {
  const imgCrop = warpImage(img, M_o2c, dsize, dsize);
  const lmkCrop = lmk ? transformPoints(lmk, M_o2c) : [];
  const k = 256 / dsize;
  return {
    imgCrop,
    imgCrop256: dsize === 512 ? boxDownscale(imgCrop, 2) : warpImage(imgCrop, [k, 0, 0.5 * k - 0.5, 0, k, 0.5 * k - 0.5], 256, 256),
    M_o2c,
    M_c2o,
    lmkCrop,
    lmkCrop256: lmkCrop.map((p) => [p[0] * k, p[1] * k] as Point2),
  };
}

/** The reference's crop_image: rotation-aligned square crop from landmarks (source images and videos). */
export function cropImage(img: RgbImage, lmk: Point2[], opts: CropOptions = {}): CropResult {
  const o = { ...SOURCE_CROP, ...opts };
  const rect = parseRectFromLandmarks(lmk, o);
  const { M_o2c, M_c2o } = cropTransform(rect, o.dsize, o.doRot);
  return finishCrop(img, lmk, M_o2c, M_c2o, o.dsize);
}

/** Axis-aligned box [left, top, right, bottom] of a face rect (the reference's parse_bbox_from_landmark 'bbox'). */
export function bboxFromLandmarks(lmk: Point2[], opts: CropOptions = {}): [number, number, number, number] {
  const r = parseRectFromLandmarks(lmk, { ...DRIVING_CROP, ...opts });
  const h = r.size / 2;
  return [r.center[0] - h, r.center[1] - h, r.center[0] + h, r.center[1] + h];
}

/** Mean of boxes (the reference smooths the driving crop with one averaged box for the whole video). */
export function averageBbox(boxes: number[][]): [number, number, number, number] {
  if (boxes.length === 0) throw new Error('averageBbox: no boxes');
  const m = [0, 0, 0, 0];
  for (const b of boxes) for (let i = 0; i < 4; i++) m[i] += b[i] / boxes.length;
  return m as [number, number, number, number];
}

/** The reference's crop_image_by_bbox without rotation: square box → dsize² crop. */
export function cropImageByBbox(img: RgbImage, bbox: number[], lmk?: Point2[], dsize = 512): CropResult {
  const [l, t, r, b] = bbox;
  const s = dsize / (r - l);
  const cx = (l + r) / 2;
  const cy = (t + b) / 2;
  const M_o2c: Affine = [s, 0, dsize / 2 - s * cx, 0, s, dsize / 2 - s * cy];
  return finishCrop(img, lmk, M_o2c, invertAffine(M_o2c), dsize);
}

// ------------------------------------------------------------ a crop placed by the user

/**
 * A square crop placed by hand, in source pixels: the top-left corner of the
 * upright square (x, y), its side (size), and optionally the face's roll in
 * degrees (angle: clockwise on screen; the square turns about its centre so
 * that a face tilted by that much comes out upright, like a detected crop's
 * rotation). For faces the detector misses: animals, drawings, statues,
 * profiles, small faces.
 */
export interface CropBox {
  x: number;
  y: number;
  size: number;
  /** Degrees, clockwise on screen (default 0). */
  angle?: number;
}

/**
 * `X,Y,SIZE[,ANGLE]` → CropBox (the CLI's --crop-box). Errors are one line
 * naming the option and the expected form.
 */
export function parseCropBox(text: string, what = '--crop-box'): CropBox {
  const parts = String(text).split(',').map((p) => p.trim());
  const nums = parts.map(Number);
  if ((parts.length !== 3 && parts.length !== 4) || parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n)))
    throw new InputError(`${what} must be X,Y,SIZE or X,Y,SIZE,ANGLE (numbers, source pixels: top-left corner and side of the square, roll in degrees), got '${text}'`);
  const box: CropBox = { x: nums[0], y: nums[1], size: nums[2] };
  if (parts.length === 4) box.angle = nums[3];
  checkCropBox(box, what);
  return box;
}

function checkCropBox(box: CropBox, what: string, width?: number, height?: number): void {
  const { x, y, size, angle = 0 } = box;
  if (![x, y, size, angle].every(Number.isFinite)) throw new InputError(`${what}: x, y, size and angle must be finite numbers, got ${JSON.stringify(box)}`);
  if (!(size >= 2)) throw new InputError(`${what}: the side must be at least 2 pixels, got ${size}`);
  if (width !== undefined && height !== undefined && (x >= width || y >= height || x + size <= 0 || y + size <= 0))
    throw new InputError(`${what} ${x},${y},${size} lies outside the ${width}x${height} source image; give the top-left corner and side of a square over the face, in source pixels`);
}

/** The crop rect (centre, side, roll) of a placed box. */
export function rectFromCropBox(box: CropBox): FaceRect {
  const a = ((box.angle ?? 0) * Math.PI) / 180;
  const ux: Point2 = [Math.cos(a), Math.sin(a)];
  const uy: Point2 = [-ux[1], ux[0]];
  return { center: [box.x + box.size / 2, box.y + box.size / 2], size: box.size, angle: a, ux, uy };
}

/**
 * The crop of a placed box: the same CropResult as a detected crop (dsize²
 * crop, its 256² version, M_o2c and M_c2o for paste-back), with no
 * landmarks. The box is in `img`'s pixels (scale it first if the image was
 * resized).
 */
/** The whole image taken as the face crop (no cropping: --no-crop), with its 256² version and identity transforms. */
export function wholeImageCrop(img: RgbImage): CropResult {
  return { imgCrop: img, imgCrop256: resizeImage(img, 256, 256, 'linear'), M_o2c: [1, 0, 0, 0, 1, 0], M_c2o: [1, 0, 0, 0, 1, 0], lmkCrop: [], lmkCrop256: [] };
}

export function cropImageByBox(img: RgbImage, box: CropBox, opts: { dsize?: number } = {}): CropResult {
  checkCropBox(box, 'crop box', img.width, img.height);
  const dsize = opts.dsize ?? SOURCE_CROP.dsize;
  const rect = rectFromCropBox(box);
  const { M_o2c, M_c2o } = cropTransform(rect, dsize, (box.angle ?? 0) !== 0);
  return finishCrop(img, undefined, M_o2c, M_c2o, dsize);
}

/** A box in an image's pixels → the same box in the image scaled by k (e.g. after resizeToLimit). */
export function scaleCropBox(box: CropBox, k: number): CropBox {
  return { ...box, x: box.x * k, y: box.y * k, size: box.size * k };
}
