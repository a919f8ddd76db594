/**
 * A photo animated by a driving video, pasted back into the whole photo:
 * what `liveportrait animate` does, from the library.
 *
 *   npx tsx examples/animate.ts PHOTO.jpg DRIVING.mp4 OUT.mp4 [MAX_FRAMES]
 *
 * Weights: ./weights, or LIVEPORTRAIT_WEIGHTS (a directory, or `synthetic`:
 * deterministic made-up weights, offline, moving noise instead of a face).
 */
import { Driving, initBackend } from 'liveportrait-tfjs';
import { loadLivePortrait, openVideo, readImage, startFrameWorkers, writeVideo } from 'liveportrait-tfjs/node';

const [photo, drivingPath, output, maxFrames] = process.argv.slice(2);
if (!photo || !drivingPath || !output) {
  console.error('usage: npx tsx examples/animate.ts PHOTO.jpg DRIVING.mp4 OUT.mp4 [MAX_FRAMES]');
  process.exit(2);
}

await initBackend();
const lp = await loadLivePortrait();
const workers = await startFrameWorkers(lp); // frames in parallel: one worker per core, as memory allows
const portrait = await lp.preparePortrait(await readImage(photo)); // the largest face, cropped as the reference does
const driving = Driving.video(await openVideo(drivingPath)); // tracked and cropped to its face
const t0 = performance.now();
try {
  const frames = lp.animatePortrait(portrait, driving, {
    maxFrames: maxFrames ? Number(maxFrames) : undefined,
    onProgress: (p) => p.phase === 'Animating' && p.done > 0 && console.log(`frame ${p.done}/${p.total ?? '?'}: ${((performance.now() - t0) / 1000).toFixed(1)} s`),
  });
  const { frames: n } = await writeVideo(output, frames, { fps: driving.fps, audioFrom: drivingPath });
  console.log(`wrote ${output}: ${n} frames of ${portrait.image.width}x${portrait.image.height}, ${workers} frame worker(s)`);
} finally {
  portrait.dispose();
  await lp.dispose();
}
