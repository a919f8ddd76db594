/**
 * LivePortrait.retargetVideo, the reference's video retargeting (its gradio
 * app's third panel), on synthetic weights: the driving keypoints it renders
 * with equal the reference's formulas computed here with tfjs ops, for the
 * silent lips (prepare_video_lip_silence) and for a target lip ratio
 * (prepare_retargeting_video; one frame, so the Kalman smoothing returns the
 * observation). About a minute on wasm: F, M, W and G run for real.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LivePortrait, type AnimatedFrame } from '../src/pipeline/live_portrait.js';
import { combinedLipRatio } from '../src/motion/transfer.js';
import type { RgbImage } from '../src/image/image.js';
import { maxDiff } from './helpers/tensors.js';

function pattern(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = (x * 3 + y) & 255;
      data[i + 1] = (128 + 100 * Math.sin(x / 17) * Math.cos(y / 23)) & 255;
      data[i + 2] = (x ^ y) & 255;
    }
  return { width: w, height: h, data };
}

async function all(it: AsyncGenerator<AnimatedFrame>): Promise<AnimatedFrame[]> {
  const out: AnimatedFrame[] = [];
  for await (const f of it) out.push(f);
  return out;
}

describe('LivePortrait.retargetVideo', () => {
  it('silent lips: x_d = stitching(x_s, s(x_c R + δ) + t), δ the lip array but the eye keypoints; a lip ratio: x_d = stitching(x_s, x_s + R_lip(x_s, [c_s, c_d]))', { timeout: 600_000 }, async () => {
    const lipArray = Float32Array.from({ length: 63 }, (_, k) => 0.02 * Math.sin(k + 1));
    const lp = LivePortrait.synthetic(1, { lipArray });
    try {
      const frame = { image: pattern(256, 256), lipRatio: 0.2 };
      const [m] = await lp.extractMotion(frame.image);
      const x_s = tf.tensor3d(Float32Array.from(m.x_s!), [1, 21, 3]);

      const silent = await all(lp.retargetVideo([frame], { lipRatio: null }));
      expect(silent.map((f) => [f.index, f.width, f.height])).toEqual([[0, 512, 512]]);
      const delta = Float32Array.from(lipArray);
      for (const k of [11, 13, 15, 16, 18]) for (let c = 0; c < 3; c++) delta[k * 3 + c] = m.exp[k * 3 + c];
      const wantSilent = tf.tidy(() => {
        const x = tf.add(tf.mul(tf.add(tf.matMul(tf.tensor3d(Float32Array.from(m.kp!), [1, 21, 3]), tf.tensor3d(Float32Array.from(m.R), [1, 3, 3])), tf.tensor3d(delta, [1, 21, 3])), m.scale), tf.tensor3d(Float32Array.from(m.t), [1, 1, 3]));
        return lp.S.stitching(x_s, x as tf.Tensor3D);
      });
      const dSilent = maxDiff(silent[0].x_d, await wantSilent.data());
      expect(dSilent).toBeLessThan(1e-5);

      const lips = await all(lp.retargetVideo([frame], { lipRatio: 0.5 }));
      const wantLips = tf.tidy(() => lp.S.stitching(x_s, tf.add(x_s, lp.S.retargetLip(x_s, combinedLipRatio(0.2, 0.5))) as tf.Tensor3D));
      const dLips = maxDiff(lips[0].x_d, await wantLips.data());
      expect(dLips).toBeLessThan(1e-5);
      // the two edits differ, and differ from the frame's own keypoints
      expect(maxDiff(silent[0].x_d, lips[0].x_d)).toBeGreaterThan(1e-4);
      console.log(`retargetVideo: silent x_d max |diff| ${dSilent.toExponential(2)}, lip 0.5 x_d max |diff| ${dLips.toExponential(2)}`);
      tf.dispose([x_s, wantSilent, wantLips]);
      // a frame without its lip ratio cannot be retargeted (it can be silenced)
      await expect(all(lp.retargetVideo([{ image: frame.image }], { lipRatio: 0.5 }))).rejects.toThrow(/lip-open ratio/);
    } finally {
      await lp.dispose();
    }
  });
});
