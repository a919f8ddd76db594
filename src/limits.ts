/**
 * Caps on what a file may ask this library to allocate (hostile inputs: see
 * the README's "Hostile inputs"). Each has a default that real inputs stay
 * far below and an environment variable for the rare user who needs more;
 * read here without node:process so the page can share them.
 */

function envNumber(name: string): number | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.[name] ? Number(env[name]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** Pixels a photo or video frame may declare: 100 megapixels (LIVEPORTRAIT_MAX_PIXELS; a 48 MP phone photo is well below). */
export const DEFAULT_MAX_PIXELS = 100e6;
export function maxPixels(): number {
  return envNumber('LIVEPORTRAIT_MAX_PIXELS') ?? DEFAULT_MAX_PIXELS;
}

/** Frames a video or motion template may declare: 100,000 (over an hour at 25 fps; LIVEPORTRAIT_MAX_FRAMES). */
export const DEFAULT_MAX_FRAMES = 100_000;
export function maxFrames(): number {
  return envNumber('LIVEPORTRAIT_MAX_FRAMES') ?? DEFAULT_MAX_FRAMES;
}

/** Bytes one deflated record of a .pth may inflate to: 512 MiB (LIVEPORTRAIT_MAX_INFLATE_MB, in MiB). */
export const DEFAULT_MAX_INFLATE_BYTES = 512 * 2 ** 20;
export function maxInflateBytes(): number {
  const mb = envNumber('LIVEPORTRAIT_MAX_INFLATE_MB');
  return mb !== undefined ? mb * 2 ** 20 : DEFAULT_MAX_INFLATE_BYTES;
}
