/**
 * Edit one portrait (the reference's gradio retargeting panel, from the
 * command line): eye and lip opening, head pitch / yaw / roll, then the
 * edited face pasted back into the photo and written atomically.
 */
import { extname, resolve } from 'node:path';
import type { RetargetEdit } from '../../motion/edits.js';
import { limitedSize } from '../../image/image.js';
import { type Portrait, SOURCE_MAX_DIM } from '../../pipeline/portrait.js';
import { classifyInput, facesNote, prepareOutputFile, shrinkNote } from './inputs.js';
import { removeCreatedDirs } from '../output.js';
import { type ModelOptions, ensureBackend, loadModel } from './model.js';
import { CliError, UsageError } from './errors.js';
import { cliMessage, readSourceImage } from './open.js';
import { WRITE_IMAGE_FORMATS, writeImage } from '../image_files.js';

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
  const original = await readSourceImage(req.source);
  await ensureBackend(req, req.log);
  const doCrop = req.crop ?? true;
  const maxDim = req.sourceMaxDim ?? SOURCE_MAX_DIM;
  const lp = await loadModel(req);
  let portrait: Portrait;
  const note = shrinkNote(original, limitedSize(original.width, original.height, maxDim), maxDim);
  if (note) req.log?.(note);
  try {
    portrait = await lp.preparePortrait(original, { crop: doCrop, faceIndex: req.faceIndex, cropOptions: req.scale !== undefined ? { scale: req.scale } : undefined, maxDim, name: req.source, pasteBack: req.pasteBack ?? true });
  } catch (e) {
    throw cliMessage(e, {});
  }
  try {
    if (doCrop) req.log?.(facesNote(req.source, portrait.facesFound, req.faceIndex ?? 0).replace('--all-faces animates all, ', '').replace('animating', 'editing'));
    const info = portrait.faces[0].info;
    if ((req.eyeRatio !== undefined || req.lipRatio !== undefined) && (!info.eyeRatio || info.lipRatio === undefined))
      throw new CliError(`--eye-ratio / --lip-ratio need the face's landmarks but no face was found in ${req.source}; drop them or use a clearer photo`);
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
    const out = await lp.editPortrait(portrait, edit, { release: true });
    const result = doCrop && (req.pasteBack ?? true) ? out.image : out.crop;
    await writeImage(req.output, result);
    return { output: resolve(req.output), seconds: (Date.now() - t0) / 1000, width: result.width, height: result.height };
  } finally {
    portrait.dispose();
  }
}
