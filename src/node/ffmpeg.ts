/**
 * The ffmpeg binary and its output.
 *
 * Which binary: env LIVEPORTRAIT_FFMPEG, else an `ffmpeg` on PATH, else the
 * one bundled by the npm package `@ffmpeg-installer/ffmpeg` (a 2018 static
 * build, no ffprobe: media are probed by parsing `ffmpeg -i` output).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createRequire } from 'node:module';

export const FFMPEG_ENV = 'LIVEPORTRAIT_FFMPEG';

const require = createRequire(import.meta.url);
let cached: string | undefined;

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Path of the ffmpeg binary to use (resolved once). */
export function ffmpegPath(): string {
  if (cached) return cached;
  const env = process.env[FFMPEG_ENV];
  if (env) {
    if (!existsSync(env)) throw new Error(`${FFMPEG_ENV}="${env}": no such file`);
    return (cached = env);
  }
  const sys = onPath(process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg');
  if (sys) return (cached = sys);
  try {
    const p = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    if (p && existsSync(p)) return (cached = p);
  } catch {
    /* package missing */
  }
  throw new Error(
    `ffmpeg not found: set ${FFMPEG_ENV}, put ffmpeg on PATH or install @ffmpeg-installer/ffmpeg`,
  );
}

/** The last non-empty line of ffmpeg's stderr (progress lines use \r). */
export function lastLine(stderr: string): string {
  const lines = stderr.split(/[\r\n]+/).map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.length ? lines[lines.length - 1] : '(no output)';
}

export interface FfmpegResult {
  code: number | null;
  stderr: string;
}

/** Run ffmpeg to completion, collecting stderr (stdout ignored). */
export function runFfmpeg(args: string[]): Promise<FfmpegResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/**
 * Spawn ffmpeg with piped stdio; stderr is kept (last 64 KiB) for error
 * messages. Returns the child and a getter for its stderr so far.
 */
export function spawnFfmpeg(
  args: string[],
  stdio: { stdin: boolean; stdout: boolean },
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(ffmpegPath(), ['-hide_banner', '-nostdin', ...args], {
    stdio: [stdio.stdin ? 'pipe' : 'ignore', stdio.stdout ? 'pipe' : 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString('utf8');
    if (err.length > 65536) err = err.slice(-65536);
  });
  return { child, stderr: () => err };
}

// ---------------------------------------------------------------- probing ---

/** A frame rate as a fraction num/den (e.g. 30000/1001). */
export interface Rational {
  num: number;
  den: number;
}

export interface MediaInfo {
  /** Container format(s) as ffmpeg names them, e.g. 'mov,mp4,m4a,3gp,3g2,mj2' or 'image2'. */
  format: string;
  /** Displayed frame size (after rotation metadata, as ffmpeg decodes it). */
  width: number;
  height: number;
  /** Frame rate as a number and as a rational (from the fps, else tbr, figure). */
  fps: number;
  fpsRational: Rational;
  /** Duration in seconds (undefined when ffmpeg reports N/A). */
  duration?: number;
  /** Number of video frames when counted (packet count via stream copy). */
  frameCount?: number;
  hasAudio: boolean;
  /** Video codec name, e.g. 'h264', 'mjpeg'. */
  videoCodec: string;
  /** Rotation from the stream metadata in degrees (0, 90, 180, 270). */
  rotation: number;
}

const NTSC: Record<string, Rational> = {
  '23.98': { num: 24000, den: 1001 },
  '23.976': { num: 24000, den: 1001 },
  '29.97': { num: 30000, den: 1001 },
  '47.95': { num: 48000, den: 1001 },
  '59.94': { num: 60000, den: 1001 },
  '119.88': { num: 120000, den: 1001 },
};

/** ffmpeg's printed fps ('25', '29.97', '12.50', '30k') as a rational. */
export function parseFpsText(text: string): Rational {
  const t = text.trim();
  if (t.endsWith('k')) return { num: Math.round(parseFloat(t) * 1000), den: 1 };
  if (NTSC[t]) return NTSC[t];
  const v = parseFloat(t);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bad frame rate "${text}"`);
  // Smallest denominator up to 1000 that represents the printed value.
  for (let den = 1; den <= 1000; den++) {
    const num = Math.round(v * den);
    if (Math.abs(num / den - v) < 0.005) return { num, den };
  }
  return { num: Math.round(v * 1000), den: 1000 };
}

function parseDuration(text: string): number | undefined {
  const m = /Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
}

/**
 * Parse the stderr of `ffmpeg -i file [...]`. Returns undefined when there is
 * no video stream. The frame count is read from a final `frame=` progress line
 * when the command produced one.
 */
export function parseProbeOutput(stderr: string): MediaInfo | undefined {
  const lines = stderr.split(/\r?\n/);
  const inputIdx = lines.findIndex((l) => /^Input #0, /.test(l));
  if (inputIdx < 0) return undefined;
  const format = /^Input #0, (.*?), from /.exec(lines[inputIdx])?.[1] ?? '';
  // Only the input section (until "Output #0" / "Stream mapping").
  let end = lines.findIndex((l, i) => i > inputIdx && /^(Output #0|Stream mapping|At least one output)/.test(l));
  if (end < 0) end = lines.length;
  const section = lines.slice(inputIdx, end);

  let video: { line: number; text: string } | undefined;
  let hasAudio = false;
  section.forEach((l, i) => {
    if (/Stream #0:\d+.*: Video: /.test(l) && !video && !/attached pic/.test(l)) video = { line: i, text: l };
    if (/Stream #0:\d+.*: Audio: /.test(l)) hasAudio = true;
  });
  if (!video) return undefined;

  const v = video.text;
  const codec = /Video: ([^\s,]+)/.exec(v)?.[1] ?? '';
  const size = /, (\d{1,6})x(\d{1,6})[\s,]/.exec(v + ' ');
  if (!size) return undefined;
  let width = Number(size[1]);
  let height = Number(size[2]);
  const fpsText = /, ([\d.]+k?) fps/.exec(v)?.[1] ?? /, ([\d.]+k?) tbr/.exec(v)?.[1];
  const fpsRational = fpsText ? parseFpsText(fpsText) : { num: 25, den: 1 };

  // Rotation: "rotate : 90" metadata or "displaymatrix: rotation of -90.00 degrees".
  let rotation = 0;
  for (let i = video.line + 1; i < section.length; i++) {
    const l = section[i];
    if (/Stream #0:\d+/.test(l)) break;
    const r1 = /^\s*rotate\s*:\s*(-?\d+)/.exec(l);
    const r2 = /rotation of (-?[\d.]+) degrees/.exec(l);
    if (r1) rotation = Number(r1[1]);
    else if (r2) rotation = -Number(r2[1]);
  }
  rotation = ((Math.round(rotation / 90) * 90) % 360 + 360) % 360;
  if (rotation === 90 || rotation === 270) [width, height] = [height, width];

  const frames = [...stderr.matchAll(/frame=\s*(\d+)/g)];
  const frameCount = frames.length ? Number(frames[frames.length - 1][1]) : undefined;

  return {
    format,
    width,
    height,
    fps: fpsRational.num / fpsRational.den,
    fpsRational,
    duration: parseDuration(section.join('\n')),
    frameCount,
    hasAudio,
    videoCodec: codec,
    rotation,
  };
}
