/**
 * The library, step by step: a source photo animated by a driving video,
 * frames streamed from ffmpeg, through the networks, back into an mp4.
 *
 *   npx tsx examples/animate.ts SOURCE.jpg DRIVING.mp4 OUT.mp4 [WEIGHTS_DIR|synthetic] [MAX_FRAMES]
 *
 * With 'synthetic' (the default) the weights are the deterministic synthetic
 * ones: the output is meaningless but every step runs offline. The face crop
 * and paste-back of the `liveportrait animate` command are left out here:
 * the source is centre-cropped, and the driving video is taken as a face crop.
 */
import { LivePortrait, calcEyeCloseRatio, calcLipCloseRatio, initBackend, resizeSquare, type DrivingFrameInput, type RgbImage } from '../src/index.js';
import { loadFaceDetector, loadLivePortrait, openVideoWriter, probeVideo, readImage, readVideoFrames, startFrameWorkers } from '../src/node/index.js';

const [source, driving, output, weights = 'synthetic', maxFrames = '10'] = process.argv.slice(2);
if (!source || !driving || !output) {
  console.error('usage: npx tsx examples/animate.ts SOURCE.jpg DRIVING.mp4 OUT.mp4 [WEIGHTS_DIR|synthetic] [MAX_FRAMES]');
  process.exit(2);
}

function centreSquare(img: RgbImage): RgbImage {
  const s = Math.min(img.width, img.height);
  const x0 = (img.width - s) >> 1;
  const y0 = (img.height - s) >> 1;
  const data = new Uint8Array(s * s * 3);
  for (let y = 0; y < s; y++) data.set(img.data.subarray(((y + y0) * img.width + x0) * 3, ((y + y0) * img.width + x0 + s) * 3), y * s * 3);
  return { width: s, height: s, data };
}

await initBackend(); // prints the backend it picked
const lp = weights === 'synthetic' ? LivePortrait.synthetic(1) : loadLivePortrait(weights);
const workers = await startFrameWorkers(lp); // one frame worker per core on wasm/cpu

// F and M on the source (256×256), with its eye and lip openness from FaceMesh landmarks when a face is found.
const src256 = resizeSquare(centreSquare(await readImage(source)), 256);
const detector = await loadFaceDetector();
const face = (await detector.detect(src256))[0];
const sourceInfo = await lp.prepareSource(src256, face ? { eyeRatio: calcEyeCloseRatio(face.landmarks)[0], lipRatio: calcLipCloseRatio(face.landmarks)[0][0] } : undefined);

// Driving frames, streamed: never the whole video in memory.
const info = await probeVideo(driving);
async function* drivingFrames(): AsyncGenerator<DrivingFrameInput> {
  for await (const f of readVideoFrames(driving, { maxFrames: Number(maxFrames), resize: { width: 256, height: 256 }, info })) yield { image: f };
}

const writer = openVideoWriter(output, { width: 512, height: 512, fps: info.fpsRational, audioFrom: driving });
const t0 = performance.now();
try {
  for await (const frame of lp.animate(sourceInfo, drivingFrames(), { relativeMotion: true, stitching: true })) {
    await writer.write({ width: frame.width, height: frame.height, data: frame.rgb });
    console.log(`frame ${frame.index + 1}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  await writer.close();
} catch (e) {
  await writer.abort();
  throw e;
} finally {
  lp.disposeSource(sourceInfo);
  await lp.dispose();
  detector.dispose();
}
console.log(`wrote ${output} with ${workers} frame worker(s)`);
