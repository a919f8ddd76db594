/**
 * Memory of source-video mode over a long source video: RSS and tensor
 * count as the frames go by, with the networks replaced by cheap stand-ins
 * (F and M give their first outputs again, W + G a flat image), so that
 * what is measured is the app's own memory: decoding, face tracking,
 * cropping, motion, smoothing, paste-back and encoding.
 *
 *   npx tsx scripts/soak-source-video.ts [--seconds 120] [--source VIDEO] [--driving IMAGE] [--every 100]
 *
 * The source video is the given one looped to --seconds with ffmpeg (default
 * ../shared/media/s13.mp4); the driving is one image (default
 * ../shared/media/d12.jpg), so every source frame is animated.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.js';
import { animate } from '../src/node/app/animate.js';
import { ffmpegPath } from '../src/node/ffmpeg.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const media = process.env.LP_MEDIA_DIR ?? resolve(import.meta.dirname, '..', '..', 'shared', 'media');
const seconds = Number(arg('seconds', '120'));
const every = Number(arg('every', '100'));
const source = arg('source', join(media, 's13.mp4'));
const driving = arg('driving', join(media, 'd12.jpg'));

await initBackend({ log: false });
const dir = mkdtempSync(join(tmpdir(), 'lp-soak-'));
try {
  const looped = join(dir, 'source.mp4');
  const ff = spawnSync(ffmpegPath(), ['-v', 'error', '-stream_loop', '-1', '-i', source, '-t', String(seconds), '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-y', looped]);
  if (ff.status !== 0) throw new Error(`ffmpeg could not loop ${source}: ${ff.stderr}`);

  const lp = LivePortrait.synthetic(1, { lipArray: new Float32Array(63) });
  const m = Object.create(lp) as LivePortrait;
  let f0: tf.Tensor5D | undefined;
  let k0: Record<string, tf.Tensor> | undefined;
  // F and M: their first outputs again (same shapes, no network time); W + G: a flat image.
  Object.defineProperty(m, 'F', { value: { apply: (x: tf.Tensor4D) => (f0 ??= tf.keep(lp.F.apply(x))).clone(), dispose() {} } });
  const firstMotion = (x: tf.Tensor4D) =>
    (k0 ??= Object.fromEntries(Object.entries(lp.M.apply(x) as unknown as Record<string, unknown>).filter(([, v]) => v instanceof tf.Tensor).map(([k, v]) => [k, tf.keep(v as tf.Tensor)])));
  Object.defineProperty(m, 'M', {
    value: { apply: (x: tf.Tensor4D) => Object.fromEntries(Object.entries(firstMotion(x)).map(([k, v]) => [k, v.clone()])), dispose() {} },
  });
  m.warpDecode = (_f, _xs, x_d) => tf.tidy(() => tf.add(tf.zeros([1, 512, 512, 3]), tf.sigmoid(tf.mean(x_d))) as tf.Tensor4D);

  const samples: string[] = [];
  let last = -1;
  const t0 = Date.now();
  const progress = {
    isTTY: true,
    columns: 200,
    write(s: string) {
      const hit = /^\r\x1b\[KAnimating.* (\d+)\/(\d+) frames/.exec(s);
      if (!hit) return;
      const k = Number(hit[1]);
      if (k > 0 && k !== last && (k === 1 || k === 10 || k % every === 0 || k === Number(hit[2]))) {
        last = k;
        const line = `frame ${k}/${hit[2]}: RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, ${tf.memory().numTensors} tensors, ${((Date.now() - t0) / 1000).toFixed(0)} s`;
        samples.push(line);
        console.log(line);
      }
    },
  };
  const r = await animate({ model: m, workers: 0, source: looped, driving, outputDir: join(dir, 'out'), progress, concat: false });
  console.log(`${r.frames} frames of a ${seconds} s source video in ${r.seconds.toFixed(0)} s; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
