/** Input files of the app: what kind each is, with one-line errors, and output names. */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { isImagePath } from '../../image/image.js';
import { isVideoPath } from '../video.js';
import { OutputDirError, prepareOutputDir } from '../output.js';
import { CliError } from './errors.js';
import { loadTemplate } from '../files.js';

export type InputKind = 'image' | 'video' | 'template';

/** File name without its extension(s): the reference's basename(). */
export function stem(path: string): string {
  const b = basename(path);
  if (b.toLowerCase().endsWith('.lpmotion.safetensors')) return b.slice(0, -'.lpmotion.safetensors'.length);
  const e = extname(b);
  return e ? b.slice(0, -e.length) : b;
}

/**
 * What an output name keeps of a driving motion template's extension, so that
 * `talk.lpmotion.safetensors`, `talk.pkl` and `talk.mp4` give different
 * names: `_lpmotion`, `_pkl` (`photo--talk_lpmotion.mp4`); '' otherwise.
 */
export function drivingTag(path: string): string {
  const b = basename(path).toLowerCase();
  if (b.endsWith('.lpmotion.safetensors')) return '_lpmotion';
  const e = extname(b);
  return e === '.pkl' || e === '.safetensors' ? `_${e.slice(1)}` : '';
}

/** Stop before any work when an output would replace a file (without --overwrite). */
export function checkNotExisting(paths: string[]): void {
  const there = paths.filter((p) => existsSync(p));
  if (there.length === 0) return;
  const more = there.length > 1 ? ` (and ${there.length - 1} more output${there.length > 2 ? 's' : ''})` : '';
  throw new CliError(`output ${there[0]} exists${more}; pass --overwrite to replace it, or give another output`);
}

/**
 * An output file's folder, created and checked for writing before any work,
 * and the file itself unless `overwrite`. Returns the folders created (for
 * removeCreatedDirs when the run fails).
 */
export function prepareOutputFile(path: string, overwrite: boolean | undefined): string[] {
  if (!overwrite) checkNotExisting([path]);
  try {
    return prepareOutputDir(dirname(resolve(path)));
  } catch (e) {
    if (e instanceof OutputDirError) throw new CliError(`${e.message}; give -o a path you can write to`, { cause: e });
    throw e;
  }
}

/** The info line for a source shrunk to --source-max-dim (undefined when it was not). */
export function shrinkNote(raw: { width: number; height: number }, img: { width: number; height: number }, maxDim: number): string | undefined {
  if (Math.max(raw.width, raw.height) <= maxDim) return undefined;
  return `source ${raw.width}x${raw.height} shrunk to ${img.width}x${img.height} (--source-max-dim)`;
}

/** The info line on the faces found in a source picture and which are animated. */
export function facesNote(source: string, found: number, chosen: number | 'all'): string {
  if (found === 1) return `source ${source}: 1 face found`;
  if (chosen === 'all') return `source ${source}: ${found} faces found, animating all (--all-faces)`;
  if (chosen === 0) return `source ${source}: ${found} faces found, animating the largest; --all-faces animates all, --face-index picks one`;
  return `source ${source}: ${found} faces found, animating face ${chosen} (--face-index, largest first from 0)`;
}

/** True for motion template names (.pkl, .safetensors). */
export function isTemplatePath(path: string): boolean {
  const e = extname(path).toLowerCase();
  return e === '.pkl' || e === '.safetensors';
}

/** Check that `path` is a readable file of an accepted kind; one-line errors otherwise. */
export function classifyInput(path: string, role: 'source' | 'driving'): InputKind {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new CliError(`${role} file ${path} not found; check the path given to ${role === 'source' ? '-s/--source' : '-d/--driving'}`);
  }
  if (!isFile) throw new CliError(`${role} ${path} is not a file; give ${role === 'source' ? '-s/--source' : '-d/--driving'} an image or video file`);
  if (isImagePath(path)) return 'image';
  if (isVideoPath(path)) return 'video';
  if (role === 'driving' && isTemplatePath(path)) return 'template';
  const ext = extname(path) || '(no extension)';
  const accepted = role === 'source' ? 'an image (jpg, png, webp, bmp, tiff) or a video (mp4, mov, avi, webm, mkv)' : 'a video (mp4, mov, avi, webm, mkv), an image (jpg, png, ...) or a motion template (.pkl, .safetensors)';
  throw new CliError(`${role} ${path}: unsupported format ${ext}; give ${accepted}`);
}

export const NO_FACE_FIX =
  'place the crop yourself with --crop-box X,Y,SIZE[,ANGLE] (source pixels: top-left corner and side of a square over the face, roll in degrees), use a photo where the face is clearly visible (frontal, not tiny), or pass --no-crop if the image is already a face crop';
/** The same for --animal (the reference finds animal faces with a model this port does not have). */
export const NO_FACE_FIX_ANIMAL =
  'animal mode has no animal face detector: place the crop with --crop-box X,Y,SIZE[,ANGLE] (source pixels: top-left corner and side of a square over the face, roll in degrees), or pass --no-crop if the image is already a face crop';

/**
 * Whether the driving input animates a video (true) or gives one picture: a
 * video, or a template of more than one frame. Cheap (no model, no decoding);
 * a template that cannot be read counts as a video here, and the error comes
 * when it is opened.
 */
export function drivingIsVideo(kind: InputKind, path: string): boolean {
  if (kind !== 'template') return kind === 'video';
  try {
    return loadTemplate(path).frames.length > 1;
  } catch {
    return true;
  }
}
