/** Input files of the app: what kind each is, with one-line errors, and output names. */
import { statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { isImagePath } from '../../image/image.js';
import { isVideoPath } from '../video.js';
import { CliError } from './errors.js';

export type InputKind = 'image' | 'video' | 'template';

/** File name without its extension(s): the reference's basename(). */
export function stem(path: string): string {
  const b = basename(path);
  if (b.toLowerCase().endsWith('.lpmotion.safetensors')) return b.slice(0, -'.lpmotion.safetensors'.length);
  const e = extname(b);
  return e ? b.slice(0, -e.length) : b;
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
