/**
 * The app's inputs as the library takes them: files opened (a photo read, a
 * video or template opened) with one-line errors naming the file, the
 * library's typed errors worded with the command line's flags, and the
 * library's progress shown as the command's bars.
 */
import { FaceIndexError, LipArrayMissingError, NoFaceError } from '../../errors.js';
import type { RgbImage } from '../../image/image.js';
import { Driving, type ProgressInfo } from '../../pipeline/driving.js';
import { loadTemplate } from '../files.js';
import { readImage } from '../image_files.js';
import { type VideoFile, openVideo } from '../video.js';
import { CliError, userMessage, withFile } from './errors.js';
import { type InputKind, NO_FACE_FIX, NO_FACE_FIX_ANIMAL } from './inputs.js';
import { Progress, type ProgressStream } from './progress.js';

export async function readSourceImage(path: string): Promise<RgbImage> {
  try {
    return await readImage(path);
  } catch (e) {
    throw withFile(e, path);
  }
}

export async function openVideoFile(path: string): Promise<VideoFile> {
  try {
    return await openVideo(path);
  } catch (e) {
    throw withFile(e, path, 'give a readable video (mp4, mov, webm, ...)');
  }
}

/** The driving file as the library's Driving (and the video, for its audio). */
export async function openDriving(path: string, kind: InputKind, opts: { crop?: boolean; log?: (line: string) => void }): Promise<{ driving: Driving; video?: VideoFile }> {
  if (kind === 'template') {
    if (opts.crop) opts.log?.('note: --crop-driving is ignored for a motion template');
    try {
      return { driving: Driving.template(loadTemplate(path), { name: path }) };
    } catch (e) {
      throw withFile(e, path, 'give a template written by `liveportrait template` or the reference (.pkl)');
    }
  }
  if (kind === 'image') return { driving: Driving.image(await readSourceImage(path), { crop: opts.crop, name: path }) };
  const video = await openVideoFile(path);
  if (!video.frameCount) throw new CliError(`driving video ${path} has no frames; give another video`);
  return { driving: Driving.video(video, { crop: opts.crop, name: path }), video };
}

/** The flags that need the driving face's ratios, for messages. */
function ratioFlags(r: { eyeRetargeting?: boolean; lipRetargeting?: boolean }): string {
  return [r.eyeRetargeting && '--eye-retargeting', r.lipRetargeting && '--lip-retargeting'].filter(Boolean).join(' and ');
}

/** A library error in the command line's words (its flags as the fix); anything else as one line. */
export function cliMessage(e: unknown, r: { animal?: boolean; eyeRetargeting?: boolean; lipRetargeting?: boolean; weightsDir?: string }): CliError {
  if (e instanceof CliError) return e;
  let msg = userMessage(e);
  if (e instanceof NoFaceError) {
    if (e.input === 'source') msg = `${e.message}; ${r.animal ? NO_FACE_FIX_ANIMAL : NO_FACE_FIX}`;
    else if (e.forRatios) {
      const flags = ratioFlags(r);
      const what = e.kind === 'video' ? "video's first frame" : e.kind;
      msg = `no face found in the driving ${what} ${e.file}, but ${flags || 'eye and lip ratios'} need${flags.includes(' and ') ? '' : 's'} the driving face; use a ${e.kind} with a clearly visible face${flags ? ` or drop ${flags}` : ''}`;
    } else if (e.kind === 'video') msg = `${e.message}; use a video with a clearly visible face, or a square face-cropped video without --crop-driving`;
    else msg = `${e.message}; use an image with a clearly visible face, or a square face crop without --crop-driving`;
  } else if (e instanceof FaceIndexError) msg = `--face-index ${e.index} is out of range: ${e.found} face(s) found in ${e.file} (largest first, from 0)`;
  else if (e instanceof LipArrayMissingError)
    msg += `; put the reference's src/utils/resources/lip_array.pkl (github.com/KwaiVGI/LivePortrait) in ${r.weightsDir ?? 'the weights directory'} or pass --lip-array FILE, or use --no-relative`;
  return new CliError(msg, { cause: e });
}

/** The library's progress events as one bar per phase, each finished when the next begins. */
export function progressBars(stream: ProgressStream | false): { onProgress: (p: ProgressInfo) => void; finish: () => void } {
  let bar: Progress | undefined;
  let phase: string | undefined;
  const finish = () => {
    bar?.finish();
    bar = undefined;
  };
  return {
    onProgress: (p) => {
      if (!stream) return;
      if (p.phase !== phase) {
        finish();
        phase = p.phase;
        bar = new Progress(p.phase, p.total, { stream });
      }
      if (p.total !== undefined) bar!.setTotal(p.total);
      if (p.done > bar!.count) bar!.tick(p.done - bar!.count);
    },
    finish,
  };
}
