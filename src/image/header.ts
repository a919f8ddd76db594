/**
 * Picture dimensions from a file's header, read before anything is decoded,
 * so a few megabytes that declare 30000x30000 pixels (3.6 GB of RGBA once
 * decoded) are refused in one line instead of exhausting memory. Formats:
 * PNG, JPEG, GIF, BMP, WebP, TIFF. Bytes only (no Node), so the page can use
 * it too.
 */
import { InputError } from '../errors.js';
import { maxPixels } from '../limits.js';

export interface ImageHeader {
  format: 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp' | 'tiff';
  width: number;
  height: number;
}

/** Width and height from a JPEG's start-of-frame marker (undefined if none is found). */
export function jpegSize(b: Uint8Array): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const m = b[i + 1];
    if (m === 0xff) {
      i++;
      continue;
    }
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2;
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
    if (m === 0xda || len < 2) return undefined;
    i += 2 + len;
  }
  return undefined;
}

function tiffSize(b: Uint8Array): { width: number; height: number } | undefined {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = b[0] === 0x49;
  if (b.length < 8) return undefined;
  const ifd = dv.getUint32(4, le);
  if (ifd + 2 > b.length) return undefined;
  const n = dv.getUint16(ifd, le);
  let width: number | undefined;
  let height: number | undefined;
  for (let k = 0; k < n && ifd + 2 + k * 12 + 12 <= b.length; k++) {
    const e = ifd + 2 + k * 12;
    const tag = dv.getUint16(e, le);
    const type = dv.getUint16(e + 2, le);
    const v = type === 3 ? dv.getUint16(e + 8, le) : dv.getUint32(e + 8, le);
    if (tag === 256) width = v;
    if (tag === 257) height = v;
  }
  return width !== undefined && height !== undefined ? { width, height } : undefined;
}

/** The format and declared dimensions of an image file, or undefined where the header does not say. */
export function readImageHeader(b: Uint8Array): ImageHeader | undefined {
  const ascii = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 24 && b[0] === 0x89 && ascii(1, 3) === 'PNG' && ascii(12, 4) === 'IHDR') return { format: 'png', width: dv.getUint32(16), height: dv.getUint32(20) };
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    const s = jpegSize(b);
    return s && { format: 'jpeg', ...s };
  }
  if (b.length >= 10 && ascii(0, 3) === 'GIF') return { format: 'gif', width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
  if (b.length >= 26 && ascii(0, 2) === 'BM') {
    const hdr = dv.getUint32(14, true);
    if (hdr === 12) return { format: 'bmp', width: dv.getUint16(18, true), height: dv.getUint16(20, true) };
    return { format: 'bmp', width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)) };
  }
  if (b.length >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    const chunk = ascii(12, 4);
    if (chunk === 'VP8X') return { format: 'webp', width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    if (chunk === 'VP8L') {
      const bits = dv.getUint32(21, true);
      return { format: 'webp', width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
    }
    if (chunk === 'VP8 ') return { format: 'webp', width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
    return undefined;
  }
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') {
    const s = tiffSize(b);
    return s && { format: 'tiff', ...s };
  }
  return undefined;
}

/**
 * Refuse, in one line naming `file`, a picture that declares more pixels
 * than the cap (default 100 megapixels; LIVEPORTRAIT_MAX_PIXELS raises it)
 * or no pixels at all.
 */
export function checkImageSize(file: string, width: number, height: number, cap = maxPixels()): void {
  if (!(width > 0 && height > 0)) throw new InputError(`Cannot read image "${file}": it declares ${width}x${height} pixels; the file is corrupt`);
  if (width * height > cap)
    throw new InputError(`Cannot read image "${file}": it declares ${width}x${height} pixels (${(width * height / 1e6).toFixed(0)} MP), over the ${(cap / 1e6).toFixed(0)} MP cap; shrink it first, or raise LIVEPORTRAIT_MAX_PIXELS`);
}

/**
 * Walk a GIF's blocks and return why it is unsafe to decode (a frame that
 * lies outside the picture, a truncated or unknown block), or undefined.
 * jimp's GIF decoder loops without end on a frame placed outside the
 * logical screen, so such files are refused before it sees them.
 */
export function gifProblem(b: Uint8Array): string | undefined {
  if (b.length < 13) return 'truncated header';
  const sw = b[6] | (b[7] << 8);
  const sh = b[8] | (b[9] << 8);
  let i = 13;
  if (b[10] & 0x80) i += 3 * 2 ** ((b[10] & 7) + 1);
  const skipSubBlocks = (): boolean => {
    while (i < b.length) {
      const n = b[i++];
      if (n === 0) return true;
      i += n;
    }
    return false;
  };
  let frames = 0;
  while (i < b.length) {
    const t = b[i++];
    if (t === 0x3b) return frames ? undefined : 'no frame';
    if (t === 0x21) {
      i++;
      if (!skipSubBlocks()) return 'truncated extension block';
    } else if (t === 0x2c) {
      if (i + 9 > b.length) return 'truncated frame';
      const left = b[i] | (b[i + 1] << 8);
      const top = b[i + 2] | (b[i + 3] << 8);
      const w = b[i + 4] | (b[i + 5] << 8);
      const h = b[i + 6] | (b[i + 7] << 8);
      const packed = b[i + 8];
      if (w === 0 || h === 0 || left + w > sw || top + h > sh) return `frame ${frames} (${w}x${h} at ${left},${top}) lies outside the ${sw}x${sh} picture`;
      i += 9;
      if (packed & 0x80) i += 3 * 2 ** ((packed & 7) + 1);
      i++; // LZW minimum code size
      if (!skipSubBlocks()) return 'truncated frame data';
      frames++;
    } else return `unknown block 0x${t.toString(16)} at byte ${i - 1}`;
  }
  return frames ? undefined : 'no frame';
}
