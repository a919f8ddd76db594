/**
 * Video through an ffmpeg binary: probing (parsed `ffmpeg -i` output),
 * streamed decoding to RGB frames (rawvideo rgb24 over a pipe, one frame in
 * memory at a time) and streamed encoding (mp4 h264 yuv420p or gif) with the
 * audio of another file muxed in, written atomically.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { lastLine, parseProbeOutput, runFfmpeg, spawnFfmpeg, type MediaInfo, type Rational } from './ffmpeg.js';
import { createImage, resizeImage, type ResizeMode, type RgbImage } from '../image/image.js';
import { openAtomicOutput, tempPathFor } from './output.js';
import type { VideoFrames } from '../pipeline/driving.js';
import { InputError } from '../errors.js';
import { maxFrames, maxPixels } from '../limits.js';

export type { MediaInfo as VideoInfo, Rational } from './ffmpeg.js';

/** Extensions treated as videos (the reference's is_video list, plus mkv/m4v). */
export const VIDEO_EXTENSIONS = ['.mp4', '.mov', '.avi', '.webm', '.mkv', '.m4v'];

/** True when the path has a video extension (case-insensitive). */
export function isVideoPath(path: string): boolean {
  return VIDEO_EXTENSIONS.includes(extname(path).toLowerCase());
}

function checkInputFile(path: string, what: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`Cannot read ${what} "${path}": ${code === 'ENOENT' ? 'file not found' : code ?? (e as Error).message}`);
  }
  if (!isFile) throw new Error(`Cannot read ${what} "${path}": not a file`);
}

// ---------------------------------------------------------------- probing ---

export interface ProbeOptions {
  /**
   * Count the video frames (default true): a stream copy to the null muxer,
   * no decoding, a few ms for short clips.
   */
  countFrames?: boolean;
  /** Accept single still images (ffmpeg's image2 / *_pipe demuxers); default false. */
  allowImages?: boolean;
}

/**
 * Frame size, fps (number and rational), frame count, duration and whether
 * there is an audio stream. Errors are one line naming the file.
 */
export async function probeVideo(path: string, opts: ProbeOptions = {}): Promise<MediaInfo> {
  checkInputFile(path, 'video');
  const count = opts.countFrames ?? true;
  const args = count ? ['-i', path, '-map', '0:v:0', '-c', 'copy', '-f', 'null', '-'] : ['-i', path];
  const { stderr } = await runFfmpeg(args);
  return videoInfoFromProbe(path, stderr, opts.allowImages ?? false);
}

/** The probe result from ffmpeg's stderr, or one line naming the file: not a video, a still image, or over a cap. */
export function videoInfoFromProbe(path: string, stderr: string, allowImages = false): MediaInfo {
  let info: MediaInfo | undefined;
  try {
    info = parseProbeOutput(stderr);
  } catch (e) {
    throw new InputError(`Cannot read video "${path}": ${(e as Error).message}`);
  }
  if (!info) {
    // ffmpeg prefixes the path to its message; the error names the file already.
    const why = lastLine(stderr).replace(`${path}: `, '');
    throw new InputError(`Cannot read video "${path}": not a video (${why})`);
  }
  if (!allowImages && (info.format === 'image2' || info.format.endsWith('_pipe'))) {
    throw new InputError(`Cannot read video "${path}": a still image, not a video`);
  }
  checkVideoLimits(path, info);
  return info;
}

/**
 * Refuse, in one line, a video whose frames declare more pixels than the
 * pixel cap (100 MP: a 16K frame is 133 MP; LIVEPORTRAIT_MAX_PIXELS) or that
 * holds (counted, or duration x fps) more frames than the frame cap
 * (100,000; LIVEPORTRAIT_MAX_FRAMES): checked before any frame is decoded.
 */
export function checkVideoLimits(path: string, info: MediaInfo): void {
  const px = info.width * info.height;
  if (!(px > 0)) throw new InputError(`Cannot read video "${path}": it declares ${info.width}x${info.height} frames; the file is corrupt`);
  if (px > maxPixels())
    throw new InputError(`Cannot read video "${path}": its frames declare ${info.width}x${info.height} pixels, over the ${(maxPixels() / 1e6).toFixed(0)} MP cap; shrink it first (ffmpeg -vf scale=-2:1080), or raise LIVEPORTRAIT_MAX_PIXELS`);
  const frames = info.frameCount ?? (info.duration !== undefined && Number.isFinite(info.fps) ? Math.round(info.duration * info.fps) : undefined);
  if (frames !== undefined && frames > maxFrames())
    throw new InputError(`Cannot read video "${path}": it holds ${info.frameCount !== undefined ? '' : 'about '}${frames} frames, over the ${maxFrames()}-frame cap; cut it first (ffmpeg -t), or raise LIVEPORTRAIT_MAX_FRAMES`);
}

/** True when the file has an audio stream (false for missing or unreadable files). */
export async function hasAudioStream(path: string): Promise<boolean> {
  try {
    return (await probeVideo(path, { countFrames: false, allowImages: true })).hasAudio;
  } catch {
    return false;
  }
}

// --------------------------------------------------------------- decoding ---

export interface ReadVideoOptions {
  /** Stop after this many frames (ffmpeg stops decoding too). */
  maxFrames?: number;
  /** Resize every frame (in JS, OpenCV semantics) to this size. */
  resize?: { width: number; height: number; mode?: ResizeMode };
  /** Probe result if already known (skips one ffmpeg call). */
  info?: MediaInfo;
}

/**
 * Decode a video as an async iterator of RGB frames, streamed through a pipe:
 * only the frame being assembled is held (plus the pipe's buffer). Breaking
 * out of the loop stops ffmpeg.
 */
export async function* readVideoFrames(path: string, opts: ReadVideoOptions = {}): AsyncGenerator<RgbImage, void, undefined> {
  const info = opts.info ?? (await probeVideo(path, { countFrames: false }));
  const { width, height } = info;
  const frameBytes = width * height * 3;
  const max = opts.maxFrames;
  if (max !== undefined && max <= 0) return;

  const args = ['-v', 'error', '-i', path, '-map', '0:v:0', '-vsync', '0'];
  if (max !== undefined) args.push('-frames:v', String(max));
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const { child, stderr } = spawnFfmpeg(args, { stdin: false, stdout: true });
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));

  let frame = new Uint8Array(frameBytes);
  let filled = 0;
  let emitted = 0;
  let finished = false;
  try {
    for await (const chunk of child.stdout! as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(frameBytes - filled, chunk.length - off);
        frame.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === frameBytes) {
          const img = createImage(width, height, frame);
          frame = new Uint8Array(frameBytes);
          filled = 0;
          emitted++;
          yield opts.resize ? resizeImage(img, opts.resize.width, opts.resize.height, opts.resize.mode ?? 'area') : img;
          if (max !== undefined && emitted >= max) {
            finished = true;
            return;
          }
        }
      }
    }
    finished = true;
    const code = await exited;
    if (spawnError) throw new Error(`Cannot read video "${path}": ${spawnError.message}`);
    if (code !== 0) throw new Error(`Cannot read video "${path}": ffmpeg failed (exit ${code}): ${lastLine(stderr())}`);
    if (filled !== 0) throw new Error(`Cannot read video "${path}": truncated last frame (${filled} of ${frameBytes} bytes)`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    } else if (!finished) {
      await exited;
    }
  }
}

/** Collect frames into an array (small clips only; prefer readVideoFrames). */
export async function readVideo(path: string, opts: ReadVideoOptions = {}): Promise<RgbImage[]> {
  const frames: RgbImage[] = [];
  for await (const f of readVideoFrames(path, opts)) frames.push(f);
  return frames;
}

// --------------------------------------------------------------- encoding ---

export interface VideoWriterOptions {
  width: number;
  height: number;
  /** Frames per second, number or rational (default 25, the reference's output_fps). */
  fps?: number | Rational;
  /** x264 constant rate factor (default 18, as the reference's images2video). */
  crf?: number;
  /** Video codec for mp4 (default 'libx264'). */
  codec?: string;
  /** x264 preset (ffmpeg's default 'medium' when not given). */
  preset?: string;
  /**
   * Mux the audio of this file in when it has any (mp4 only): the reference's
   * add_audio_to_video, video copied, audio re-encoded to AAC, `-shortest`.
   */
  audioFrom?: { path: string } | string;
  /** 'mp4' or 'gif'; default from the extension (.gif → gif, else mp4). */
  format?: 'mp4' | 'gif';
}

export interface VideoWriter {
  /** The final output path (absolute). */
  readonly path: string;
  readonly width: number;
  readonly height: number;
  /** Frames accepted so far. */
  readonly framesWritten: number;
  /** After close(): whether audio was muxed in. */
  readonly audioAdded: boolean;
  /** Bytes queued for ffmpeg's stdin not yet taken by the pipe (backpressure bound). */
  readonly bufferedBytes: number;
  /** Queue one frame (same size as the writer); resolves when the pipe can take more. */
  write(frame: RgbImage): Promise<void>;
  /** Finish encoding, mux audio if asked, rename into place. */
  close(): Promise<void>;
  /** Stop ffmpeg and remove the temporary file; nothing is left behind. */
  abort(): Promise<void>;
}

function fpsArg(fps: number | Rational): string {
  if (typeof fps === 'number') {
    if (!(fps > 0) || !Number.isFinite(fps)) throw new Error(`bad fps ${fps}`);
    return String(fps);
  }
  if (!(fps.num > 0 && fps.den > 0)) throw new Error(`bad fps ${fps.num}/${fps.den}`);
  return `${fps.num}/${fps.den}`;
}

/**
 * Open a streaming video writer. Frames go to ffmpeg's stdin as rgb24; the
 * file is encoded under a temporary name and renamed on close(); any error
 * (or abort()) removes it.
 */
export function openVideoWriter(path: string, opts: VideoWriterOptions): VideoWriter {
  const { width, height } = opts;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`Cannot write video "${path}": bad frame size ${width}x${height}`);
  }
  const format = opts.format ?? (extname(path).toLowerCase() === '.gif' ? 'gif' : 'mp4');
  const audioPath = typeof opts.audioFrom === 'string' ? opts.audioFrom : opts.audioFrom?.path;
  if (audioPath !== undefined && !existsSync(audioPath)) {
    throw new Error(`Cannot write video "${path}": audio source "${audioPath}" not found`);
  }
  const out = openAtomicOutput(path);
  const frameBytes = width * height * 3;

  const args = ['-v', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', fpsArg(opts.fps ?? 25), '-i', 'pipe:0'];
  if (format === 'gif') {
    args.push('-filter_complex', '[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse', '-f', 'gif');
  } else {
    // yuv420p needs even sizes: scale up to the next even size (imageio's macro_block_size=2).
    if (width % 2 || height % 2) args.push('-vf', `scale=${width + (width % 2)}:${height + (height % 2)}`);
    args.push('-c:v', opts.codec ?? 'libx264', '-pix_fmt', 'yuv420p', '-crf', String(opts.crf ?? 18));
    if (opts.preset) args.push('-preset', opts.preset);
    args.push('-an', '-f', 'mp4');
  }
  args.push('-y', out.tempPath);

  const { child, stderr } = spawnFfmpeg(args, { stdin: true, stdout: false });
  let exitCode: number | null | undefined;
  let failure: Error | undefined;
  const exited = new Promise<number | null>((res) =>
    child.on('close', (code) => {
      exitCode = code;
      res(code);
    }),
  );
  const fail = (why: string) => new Error(`Cannot write video "${out.path}": ${why}`);
  child.on('error', (e) => (failure ??= fail(e.message)));
  const stdin = child.stdin!;
  stdin.on('error', () => {
    /* EPIPE when ffmpeg dies: reported from its exit status */
  });

  let framesWritten = 0;
  let audioAdded = false;
  let state: 'open' | 'closing' | 'done' = 'open';

  const ffmpegError = async (): Promise<Error> => {
    const code = await exited;
    return failure ?? fail(`ffmpeg failed (exit ${code}): ${lastLine(stderr())}`);
  };

  const abort = async () => {
    if (state === 'done') return;
    state = 'done';
    if (exitCode === undefined) {
      stdin.destroy();
      child.kill('SIGKILL');
      await exited;
    }
    out.abort();
  };

  return {
    path: out.path,
    width,
    height,
    get framesWritten() {
      return framesWritten;
    },
    get audioAdded() {
      return audioAdded;
    },
    get bufferedBytes() {
      return stdin.writableLength;
    },
    async write(frame: RgbImage) {
      if (state !== 'open') throw fail('writer is closed');
      if (frame.width !== width || frame.height !== height || frame.data.length !== frameBytes) {
        await abort();
        throw fail(`frame ${framesWritten} is ${frame.width}x${frame.height}, expected ${width}x${height}`);
      }
      if (exitCode !== undefined || failure) {
        const e = await ffmpegError();
        await abort();
        throw e;
      }
      // Copy: the caller may reuse its buffer before the pipe flushes.
      const ok = stdin.write(Buffer.from(frame.data));
      framesWritten++;
      if (!ok) {
        // Backpressure: wait until the pipe drains or ffmpeg goes away.
        const gone = await new Promise<boolean>((res) => {
          const onDrain = () => (cleanup(), res(false));
          const onClose = () => (cleanup(), res(true));
          const cleanup = () => {
            stdin.off('drain', onDrain);
            child.off('close', onClose);
          };
          stdin.once('drain', onDrain);
          child.once('close', onClose);
        });
        if (gone) {
          const e = await ffmpegError();
          await abort();
          throw e;
        }
      }
    },
    async close() {
      if (state !== 'open') throw fail('writer is already closed');
      state = 'closing';
      try {
        if (framesWritten === 0) throw fail('no frames written');
        stdin.end();
        const code = await exited;
        if (code !== 0 || failure) throw failure ?? fail(`ffmpeg failed (exit ${code}): ${lastLine(stderr())}`);
        if (format === 'mp4' && audioPath !== undefined && (await hasAudioStream(audioPath))) {
          await muxAudio(out.tempPath, audioPath, out.path);
          audioAdded = true;
        }
        out.commit();
        state = 'done';
      } catch (e) {
        state = 'open';
        await abort();
        throw e;
      }
    },
    abort,
  };
}

/**
 * Replace the video file `videoTemp` in place by one with the audio of
 * `audioPath` (video copied, audio AAC, shortest stream wins).
 */
async function muxAudio(videoTemp: string, audioPath: string, finalPath: string): Promise<void> {
  const muxed = tempPathFor(finalPath);
  try {
    const { code, stderr } = await runFfmpeg([
      '-v', 'error', '-i', videoTemp, '-i', audioPath,
      '-map', '0:v:0', '-map', '1:a:0', '-c:v', 'copy', '-c:a', 'aac', '-shortest', '-f', 'mp4', '-y', muxed,
    ]);
    if (code !== 0) {
      throw new Error(`Cannot write video "${finalPath}": adding audio from "${audioPath}" failed: ${lastLine(stderr)}`);
    }
    renameSync(muxed, videoTemp);
  } finally {
    rmSync(muxed, { force: true });
  }
}

/** A video file read frame by frame (again for each pass): the core's VideoFrames, with what ffmpeg found. */
export interface VideoFile extends VideoFrames {
  path: string;
  name: string;
  fps: Rational;
  frameCount?: number;
  hasAudio: boolean;
  info: MediaInfo;
}

/**
 * Open a video for the library (`Driving.video(await openVideo(path))`,
 * `lp.preparePortraitVideo(await openVideo(path))`): probed once, its frames
 * streamed from ffmpeg on each pass. Errors are one line naming the file.
 */
export async function openVideo(path: string): Promise<VideoFile> {
  const info = await probeVideo(path);
  return {
    path,
    name: path,
    width: info.width,
    height: info.height,
    fps: info.fpsRational,
    frameCount: info.frameCount,
    hasAudio: info.hasAudio,
    info,
    frames: (max?: number) => readVideoFrames(path, { maxFrames: max, info }),
  };
}

/**
 * Write frames as a video (convenience over openVideoWriter): RGB images,
 * or anything with an `image` (the library's PortraitFrame). Nothing is left
 * behind when the frames fail.
 */
export async function writeVideo(
  path: string,
  frames: Iterable<RgbImage | { image: RgbImage }> | AsyncIterable<RgbImage | { image: RgbImage }>,
  opts: Omit<VideoWriterOptions, 'width' | 'height'> & { width?: number; height?: number } = {},
): Promise<{ frames: number; audioAdded: boolean }> {
  let writer: VideoWriter | undefined;
  try {
    for await (const item of frames as AsyncIterable<RgbImage | { image: RgbImage }>) {
      const f = 'image' in item ? item.image : item;
      writer ??= openVideoWriter(path, { ...opts, width: opts.width ?? f.width, height: opts.height ?? f.height });
      await writer.write(f);
    }
    if (!writer) throw new Error(`Cannot write video "${path}": no frames`);
    await writer.close();
    return { frames: writer.framesWritten, audioAdded: writer.audioAdded };
  } catch (e) {
    await writer?.abort();
    throw e;
  }
}

/**
 * The reference's video2gif: a palette gif of a video at `fps`, scaled to
 * `size` pixels wide (lanczos), written atomically.
 */
export async function videoToGif(videoPath: string, gifPath: string, opts: { fps?: number; size?: number } = {}): Promise<void> {
  checkInputFile(videoPath, 'video');
  const fps = opts.fps ?? 30;
  const size = opts.size ?? 256;
  const out = openAtomicOutput(gifPath);
  try {
    const { code, stderr } = await runFfmpeg([
      '-v', 'error', '-i', videoPath,
      '-filter_complex', `[0:v]fps=${fps},scale=${size}:-1:flags=lanczos,split[a][b];[a]palettegen[p];[b][p]paletteuse`,
      '-f', 'gif', '-y', out.tempPath,
    ]);
    if (code !== 0) throw new Error(`Cannot write gif "${out.path}": ffmpeg failed: ${lastLine(stderr)}`);
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}
