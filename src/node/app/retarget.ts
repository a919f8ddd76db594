/**
 * Edit one portrait (the reference's gradio retargeting panel, from the
 * command line): eye and lip opening, head pitch / yaw / roll, then the
 * edited face pasted back into the photo and written atomically.
 */
import { extname, resolve } from 'node:path';
import { resizeImage, resizeToLimit } from '../../image/image.js';
import { cropImage } from '../../face/crop.js';
import { loadFaceDetector } from '../face_models.js';
import type { RetargetEdit } from '../../motion/edits.js';
import { pasteBack, preparePasteBack } from '../../face/paste_back.js';
import { calcEyeCloseRatio, calcLipCloseRatio } from '../../face/ratios.js';
import { classifyInput, facesNote, prepareOutputFile, shrinkNote } from './inputs.js';
import { removeCreatedDirs } from '../output.js';
import { type ModelOptions, ensureBackend, loadModel } from './model.js';
import { CliError, UsageError, withFile } from './errors.js';
import { WRITE_IMAGE_FORMATS, readImage, writeImage } from '../image_files.js';
import { type RgbImage } from '../../image/image.js';

/**
 * A retarget run: the source and output files, the model options, and the
 * edits. Eye/lip ratios, pose, movement, smile, wink, eyebrow and stitching
 * are the library's RetargetEdit fields; the gradio panel's lip sliders and
 * gaze are named as the CLI flags (src/motion/edits.ts maps them).
 */
export interface RetargetRequest
  extends ModelOptions,
    Pick<RetargetEdit, 'eyeRatio' | 'lipRatio' | 'pitch' | 'yaw' | 'roll' | 'movX' | 'movY' | 'movZ' | 'smile' | 'wink' | 'eyebrow' | 'stitching'> {
  source: string;
  output: string;
  pouting?: number;
  pursing?: number;
  grin?: number;
  lipCloseOpen?: number;
  gazeX?: number;
  gazeY?: number;
  /** Source crop scale (default 2.3; the reference's panel uses 2.5). */
  scale?: number;
  pasteBack?: boolean;
  crop?: boolean;
  faceIndex?: number;
  sourceMaxDim?: number;
  /** Replace an existing output file (default false: stop before any work). */
  overwrite?: boolean;
  log?: (line: string) => void;
}

export interface RetargetResult {
  output: string;
  seconds: number;
  width: number;
  height: number;
}

/** Check the output name before any work: jpg, png or bmp. */
export function checkImageOutput(path: string): void {
  const ext = extname(path).toLowerCase().slice(1);
  if (!WRITE_IMAGE_FORMATS.includes(ext)) throw new UsageError(`output ${path}: unsupported image format '${ext || 'none'}'; name it .jpg, .png or .bmp`);
}

export async function retarget(req: RetargetRequest): Promise<RetargetResult> {
  const t0 = Date.now();
  const created = checkRetarget(req);
  try {
    return await retargetInto(req, t0);
  } catch (e) {
    removeCreatedDirs(created);
    throw e;
  }
}

/** What retarget() checks before any work: the source, the output name and folder (created; returned), the edits. */
export function checkRetarget(req: RetargetRequest): string[] {
  const kind = classifyInput(req.source, 'source');
  if (kind !== 'image') throw new CliError(`source ${req.source}: retarget edits one image; give a jpg, png, webp, bmp or tiff`);
  checkImageOutput(req.output);
  const numbers = { eyeRatio: req.eyeRatio, lipRatio: req.lipRatio, pitch: req.pitch, yaw: req.yaw, roll: req.roll, movX: req.movX, movY: req.movY, movZ: req.movZ, pouting: req.pouting, pursing: req.pursing, grin: req.grin, lipCloseOpen: req.lipCloseOpen, smile: req.smile, wink: req.wink, eyebrow: req.eyebrow, gazeX: req.gazeX, gazeY: req.gazeY, scale: req.scale };
  for (const [k, v] of Object.entries(numbers))
    if (v !== undefined && !Number.isFinite(v)) throw new UsageError(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be a number, got ${v}`);
  return prepareOutputFile(req.output, req.overwrite);
}

async function retargetInto(req: RetargetRequest, t0: number): Promise<RetargetResult> {
  let img: RgbImage;
  try {
    const raw = await readImage(req.source);
    img = resizeToLimit(raw, req.sourceMaxDim ?? 1280, 2);
    const note = shrinkNote(raw, img, req.sourceMaxDim ?? 1280);
    if (note) req.log?.(note);
  } catch (e) {
    throw withFile(e, req.source);
  }
  await ensureBackend(req, req.log);
  const doCrop = req.crop ?? true;
  const faces = await (await loadFaceDetector()).detect(img);
  if (doCrop && faces.length === 0)
    throw new CliError(`no face found in the source ${req.source}; use a photo where the face is clearly visible (frontal, not tiny), or pass --no-crop if the image is already a face crop`);
  const fi = req.faceIndex ?? 0;
  if (doCrop && fi >= faces.length) throw new CliError(`--face-index ${fi} is out of range: ${faces.length} face(s) found in ${req.source} (largest first, from 0)`);
  const face = faces[doCrop ? fi : 0];
  if (doCrop) req.log?.(facesNote(req.source, faces.length, fi).replace('--all-faces animates all, ', '').replace('animating', 'editing'));
  if ((req.eyeRatio !== undefined || req.lipRatio !== undefined) && !face)
    throw new CliError(`--eye-ratio / --lip-ratio need the face's landmarks but no face was found in ${req.source}; drop them or use a clearer photo`);
  const crop = doCrop ? cropImage(img, face.landmarks, req.scale !== undefined ? { scale: req.scale } : {}) : undefined;
  const input = crop ? crop.imgCrop256 : resizeImage(img, 256, 256, 'linear');
  const ratios = face ? { eyeRatio: calcEyeCloseRatio(face.landmarks)[0], lipRatio: calcLipCloseRatio(face.landmarks)[0][0] } : {};
  const lp = loadModel(req);
  const src = await lp.prepareSource(input, ratios);
  try {
    const edit: RetargetEdit = {
      eyeRatio: req.eyeRatio,
      lipRatio: req.lipRatio,
      pitch: req.pitch,
      yaw: req.yaw,
      roll: req.roll,
      movX: req.movX,
      movY: req.movY,
      movZ: req.movZ,
      smile: req.smile,
      wink: req.wink,
      eyebrow: req.eyebrow,
      eyeballX: req.gazeX,
      eyeballY: req.gazeY,
      lipVariation: [req.pouting, req.pursing, req.grin, req.lipCloseOpen],
      stitching: req.stitching,
    };
    // One edit, one render: W and G are freed as soon as each has run (lower peak memory).
    const out = await lp.retarget(src, edit, { release: true });
    let result: RgbImage = { width: out.width, height: out.height, data: out.rgb };
    if (crop && (req.pasteBack ?? true)) result = pasteBack(result, crop.M_c2o, img, preparePasteBack(crop.M_c2o, img.width, img.height));
    await writeImage(req.output, result);
    return { output: resolve(req.output), seconds: (Date.now() - t0) / 1000, width: result.width, height: result.height };
  } finally {
    lp.disposeSource(src);
  }
}
