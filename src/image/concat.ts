/**
 * The side-by-side comparison frame of the reference's concat_frames:
 * [driving | source | result] (or [source | result] without driving), each
 * panel resized (INTER_LINEAR, as cv2.resize's default) to the result's size.
 */
import { createImage, resizeImage, type RgbImage } from './image.js';

/** Join same-height RGB images left to right. */
export function hstackImages(images: RgbImage[]): RgbImage {
  if (images.length === 0) throw new Error('hstackImages: no images');
  const height = images[0].height;
  for (const [i, img] of images.entries()) {
    if (img.height !== height) throw new Error(`hstackImages: image ${i} has height ${img.height}, expected ${height}`);
  }
  const width = images.reduce((s, img) => s + img.width, 0);
  const out = new Uint8Array(width * height * 3);
  let x0 = 0;
  for (const img of images) {
    const row = img.width * 3;
    for (let y = 0; y < height; y++) out.set(img.data.subarray(y * row, (y + 1) * row), (y * width + x0) * 3);
    x0 += img.width;
  }
  return createImage(width, height, out);
}

function fitTo(img: RgbImage, width: number, height: number): RgbImage {
  return img.width === width && img.height === height ? img : resizeImage(img, width, height, 'linear');
}

/** One comparison frame: driving (optional) | source | result, at the result's size each. */
export function concatFrame(driving: RgbImage | undefined, source: RgbImage, result: RgbImage): RgbImage {
  const { width: w, height: h } = result;
  const panels = [fitTo(source, w, h), result];
  if (driving) panels.unshift(fitTo(driving, w, h));
  return hstackImages(panels);
}

/** Panels scaled to one height (aspect kept, even widths) and joined left to right: a group photo's comparison. */
export function panelRow(panels: RgbImage[], height: number): RgbImage {
  const fit = panels.map((p) => {
    const w = Math.max(2, Math.round((p.width * height) / p.height / 2) * 2);
    return p.width === w && p.height === height ? p : resizeImage(p, w, height, 'linear');
  });
  return hstackImages(fit);
}

/**
 * All comparison frames, lazily. `sources` of length 1 is reused for every
 * frame (an image source), otherwise indexed per frame (a video source);
 * `drivings`, when given, is indexed per frame.
 */
export function* concatFrames(
  drivings: RgbImage[] | undefined,
  sources: RgbImage[],
  results: RgbImage[],
): Generator<RgbImage, void, undefined> {
  if (results.length === 0) return;
  if (sources.length === 0) throw new Error('concatFrames: no source images');
  const { width: w, height: h } = results[0];
  const single = sources.length === 1 ? fitTo(sources[0], w, h) : undefined;
  for (let i = 0; i < results.length; i++) {
    const src = single ?? sources[i];
    if (!src) throw new Error(`concatFrames: no source frame ${i} (${sources.length} given)`);
    if (drivings && !drivings[i]) throw new Error(`concatFrames: no driving frame ${i} (${drivings.length} given)`);
    const result = fitTo(results[i], w, h);
    yield concatFrame(drivings?.[i], src, result);
  }
}
