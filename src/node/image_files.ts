/**
 * Image files (Node): reading (jimp; webp, HEIC and large JPEGs through
 * ffmpeg: jimp here has no webp or HEIC codec, and its JavaScript JPEG
 * decoder takes ~10 s and ~1 GB for a 48-megapixel photo) and writing (jpg,
 * png, bmp), atomically.
 */
import { Jimp } from 'jimp';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { InputError } from '../errors.js';
import { checkImageSize, gifProblem, jpegSize, readImageHeader } from '../image/header.js';
import { type RgbImage, createImage } from '../image/image.js';
import { maxPixels } from '../limits.js';
import { ffmpegPath, lastLine, parseProbeOutput } from './ffmpeg.js';
import { withAtomicOutput } from './output.js';

/** Extensions readImage decodes. */
export const READ_IMAGE_FORMATS = ['jpg', 'jpeg', 'png', 'bmp', 'gif', 'tiff', 'webp', 'heic', 'heif'];

/** JPEGs above this many pixels are decoded by ffmpeg (native) rather than jimp (JavaScript). */
const FFMPEG_JPEG_PIXELS = 12e6;
/** One picture decodes in well under this; a damaged file that makes ffmpeg spin is stopped. */
const FFMPEG_TIMEOUT_MS = 120_000;
/** Extensions writeImage encodes. */
export const WRITE_IMAGE_FORMATS = ['jpg', 'jpeg', 'png', 'bmp'];

function sniff(b: Uint8Array): string | undefined {
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  if (b[0] === 0xff && b[1] === 0xd8) return 'jpeg';
  if (b[0] === 0x89 && ascii(1, 3) === 'PNG') return 'png';
  if (ascii(0, 2) === 'BM') return 'bmp';
  if (ascii(0, 3) === 'GIF') return 'gif';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'tiff';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') return 'webp';
  if (ascii(4, 4) === 'ftyp' && ['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1', 'heif'].includes(ascii(8, 4))) return 'heic';
  return undefined;
}

export { jpegSize };

/** Drop the alpha channel of RGBA data (jimp bitmaps). */
function rgbaToRgb(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    out[i * 3] = rgba[j];
    out[i * 3 + 1] = rgba[j + 1];
    out[i * 3 + 2] = rgba[j + 2];
  }
  return out;
}

function decodeWithFfmpeg(path: string, kind = 'image'): RgbImage {
  const probe = spawnSync(ffmpegPath(), ['-hide_banner', '-nostdin', '-i', path], { stdio: ['ignore', 'ignore', 'pipe'], timeout: FFMPEG_TIMEOUT_MS });
  const info = parseProbeOutput(probe.stderr?.toString('utf8') ?? '');
  if (!info && kind === 'heic')
    throw new InputError(`Cannot read image "${path}": the ffmpeg in use (${ffmpegPath()}) cannot decode HEIC; set LIVEPORTRAIT_FFMPEG to an ffmpeg that can (7.0 or newer), or convert the photo to JPEG`);
  if (!info) throw new InputError(`Cannot read image "${path}": ffmpeg cannot decode it`);
  checkImageSize(path, info.width, info.height);
  const r = spawnSync(
    ffmpegPath(),
    ['-hide_banner', '-nostdin', '-v', 'error', '-i', path, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'],
    { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30, timeout: FFMPEG_TIMEOUT_MS },
  );
  const n = info.width * info.height * 3;
  if (r.status !== 0 || !r.stdout || r.stdout.length < n) {
    throw new InputError(`Cannot read image "${path}": ffmpeg failed: ${lastLine(r.stderr?.toString('utf8') ?? '')}`);
  }
  return createImage(info.width, info.height, new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, n).slice());
}

/**
 * Read an image file as 8-bit RGB (alpha dropped). jpg, png, bmp, gif (first
 * frame), tiff via jimp; webp via ffmpeg. Errors are one line naming the file.
 */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new InputError(`Cannot read image "${path}": not a file`);
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`Cannot read image "${path}": file not found`);
    if (code) throw new InputError(`Cannot read image "${path}": ${code}`);
    throw e;
  }
  const kind = sniff(bytes);
  if (!kind) {
    throw new InputError(
      `Cannot read image "${path}": not an image or unsupported format (supported: ${READ_IMAGE_FORMATS.join(', ')})`,
    );
  }
  // Declared dimensions first: a few MB can declare gigabytes of pixels.
  const header = readImageHeader(bytes);
  if (header) checkImageSize(path, header.width, header.height);
  const gif = kind === 'gif' ? gifProblem(bytes) : undefined;
  if (gif) throw new InputError(`Cannot read image "${path}": corrupt gif (${gif})`);
  // GIF through ffmpeg too: jimp's GIF decoder never returns on some damaged files (found by test/fuzz.test.ts).
  if (kind === 'webp' || kind === 'heic' || kind === 'gif') return decodeWithFfmpeg(path, kind);
  if (kind === 'jpeg') {
    const size = header;
    if (size && size.width * size.height > FFMPEG_JPEG_PIXELS) {
      try {
        return decodeWithFfmpeg(path);
      } catch {
        /* no ffmpeg: jimp below, with limits that fit the picture */
      }
    }
  }
  let bitmap: { width: number; height: number; data: Buffer };
  try {
    // jpeg-js's own limits follow the pixel cap (its default 100 MP / 512 MB would refuse big camera photos).
    const fromBuffer = Jimp.fromBuffer as (b: Buffer, o: object) => Promise<{ bitmap: typeof bitmap }>;
    const mp = Math.ceil(maxPixels() / 1e6);
    bitmap = (await fromBuffer.call(Jimp, bytes, { 'image/jpeg': { maxMemoryUsageInMB: Math.max(512, mp * 16), maxResolutionInMP: mp } })).bitmap;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    if (/maxMemoryUsageInMB|maxResolutionInMP/.test(msg)) throw new InputError(`Cannot read image "${path}": too large to decode here (${msg}); shrink it first, or raise LIVEPORTRAIT_MAX_PIXELS`);
    throw new InputError(`Cannot read image "${path}": corrupt ${kind} (${msg})`);
  }
  const { width, height, data } = bitmap;
  checkImageSize(path, width, height);
  return createImage(width, height, rgbaToRgb(data, width, height));
}

/**
 * Write an RGB image; the format follows the extension (jpg/jpeg, png, bmp).
 * Written atomically (temporary name, then rename). `quality` is the JPEG
 * quality (default 95, as cv2.imwrite).
 */
export async function writeImage(path: string, image: RgbImage, opts: { quality?: number } = {}): Promise<void> {
  const ext = extname(path).toLowerCase().slice(1);
  const mime =
    ext === 'jpg' || ext === 'jpeg' ? 'image/jpeg' : ext === 'png' ? 'image/png' : ext === 'bmp' ? 'image/bmp' : undefined;
  if (!mime) {
    throw new Error(`Cannot write image "${path}": unsupported extension (supported: ${WRITE_IMAGE_FORMATS.join(', ')})`);
  }
  const { width, height, data } = createImage(image.width, image.height, image.data);
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, n = width * height; i < n; i++) {
    rgba[i * 4] = data[i * 3];
    rgba[i * 4 + 1] = data[i * 3 + 1];
    rgba[i * 4 + 2] = data[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  const j = Jimp.fromBitmap({ width, height, data: Buffer.from(rgba.buffer) });
  const buf =
    mime === 'image/jpeg'
      ? await j.getBuffer('image/jpeg', { quality: opts.quality ?? 95 })
      : mime === 'image/png'
        ? await j.getBuffer('image/png')
        : await j.getBuffer('image/bmp');
  await withAtomicOutput(path, (tmp) => writeFileSync(tmp, buf));
}

