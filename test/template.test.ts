import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { Driving } from '../src/pipeline/driving.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';
import { type MotionTemplate, TemplateError, parseAnyTemplate } from '../src/formats/template.js';
import { MEDIA_DIR } from './helpers/paths.js';
import { loadTemplate, saveTemplate, writeSafetensors } from '../src/node/files.js';

const dir = mkdtempSync(join(tmpdir(), 'lp-template-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sampleTemplate(n: number, withRatios: boolean): MotionTemplate {
  const frames = Array.from({ length: n }, (_, i) => ({
    R: Float32Array.from({ length: 9 }, (_, k) => (k % 4 === 0 ? 1 : 0.01 * i)),
    exp: Float32Array.from({ length: 63 }, (_, k) => 0.001 * (k - 31) * (i + 1)),
    t: Float32Array.of(0.01 * i, -0.02, 0.003),
    scale: 1.1 + 0.01 * i,
    kp: Float32Array.from({ length: 63 }, (_, k) => Math.sin(k + i)),
    x_s: Float32Array.from({ length: 63 }, (_, k) => Math.cos(k - i)),
    ...(withRatios ? { eyeRatio: Float32Array.of(0.3 + 0.01 * i, 0.31), lipRatio: 0.05 * i } : {}),
  }));
  return { fps: 30, frames };
}

describe('motion templates', () => {
  it('our safetensors format round-trips, with and without ratios', () => {
    for (const withRatios of [true, false]) {
      const tpl = sampleTemplate(4, withRatios);
      const p = join(dir, `t${withRatios}.safetensors`);
      saveTemplate(p, tpl);
      const back = loadTemplate(p);
      expect(back.fps).toBe(30);
      expect(back.frames.length).toBe(4);
      for (let i = 0; i < 4; i++) {
        const a = tpl.frames[i];
        const b = back.frames[i];
        expect([...b.R]).toEqual([...a.R]);
        expect([...b.exp]).toEqual([...a.exp]);
        expect([...b.t]).toEqual([...a.t]);
        expect(b.scale).toBe(Math.fround(a.scale));
        expect([...b.kp!]).toEqual([...a.kp!]);
        expect([...b.x_s!]).toEqual([...a.x_s!]);
        if (withRatios) {
          expect([...b.eyeRatio!]).toEqual([...a.eyeRatio!]);
          expect(b.lipRatio).toBe(Math.fround(a.lipRatio!));
        } else expect(b.eyeRatio).toBeUndefined();
      }
    }
  });

  it('rejects files of other formats with one clear line', () => {
    const cases: [string, Uint8Array][] = [
      ['json', new TextEncoder().encode('{"n_frames": 3}')],
      ['png', Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0)],
      ['empty', new Uint8Array(0)],
    ];
    const other = join(dir, 'weights.safetensors');
    writeSafetensors(other, { w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } }, { format: 'pt' });
    cases.push(['other safetensors', readFileSync(other)]);
    // A pickle, but not of a template (a list of ints).
    cases.push(['other pickle', Uint8Array.of(0x80, 0x04, 0x5d, 0x94, 0x28, 0x4b, 0x01, 0x4b, 0x02, 0x65, 0x2e)]);
    for (const [name, bytes] of cases) {
      let err: unknown;
      try {
        parseAnyTemplate(bytes, name);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(TemplateError);
      const msg = (err as Error).message;
      expect(msg.split('\n').length, msg).toBe(1);
      expect(msg).toMatch(/not (a|a LivePortrait) motion template/);
    }
    expect(() => loadTemplate(join(dir, 'missing.pkl'))).toThrow(/cannot read motion template \(ENOENT\)/);
    expect(() => saveTemplate(join(dir, 'x.safetensors'), { fps: 25, frames: [] })).toThrow(/empty motion template/);
  });

  const laugh = join(MEDIA_DIR, 'laugh.pkl');
  it.skipIf(!existsSync(laugh))('reads the reference .pkl (laugh.pkl): rotations orthonormal, 54 frames at 25 fps', () => {
    const tpl = loadTemplate(laugh);
    expect(tpl.fps).toBe(25);
    expect(tpl.frames.length).toBe(54);
    for (const f of tpl.frames) {
      // R Rᵀ = I
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          const d = f.R[3 * i] * f.R[3 * j] + f.R[3 * i + 1] * f.R[3 * j + 1] + f.R[3 * i + 2] * f.R[3 * j + 2];
          expect(Math.abs(d - (i === j ? 1 : 0))).toBeLessThan(1e-4);
        }
      expect(f.exp.length).toBe(63);
      expect(f.scale).toBeGreaterThan(0.5);
      expect(f.t[2]).toBe(0);
    }
    // Our format holds it too.
    const p = join(dir, 'laugh.safetensors');
    saveTemplate(p, tpl);
    expect([...loadTemplate(p).frames[53].exp]).toEqual([...tpl.frames[53].exp]);
  });

  it.skipIf(!existsSync(laugh))('a reference .pkl drives an animation (synthetic weights, 2 frames; tensor count flat)', async () => {
    const tpl = loadTemplate(laugh);
    const lp = LivePortrait.synthetic(1);
    const img = tf.tidy(() => tf.cast(tf.mul(tf.randomUniform([256, 256, 3], 0, 1, 'float32', 7), 255), 'int32'));
    // W and G are built on first use, here: they belong to the model, not to its frames.
    expect([lp.W, lp.G].every((n) => typeof n.apply === 'function')).toBe(true);
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const frames: Uint8Array[] = [];
    for await (const f of lp.animate(img, Driving.template({ fps: tpl.fps, frames: tpl.frames.slice(0, 2) }), { stitching: true })) {
      expect([f.width, f.height, f.rgb.length]).toEqual([512, 512, 512 * 512 * 3]);
      expect(f.x_d.length).toBe(63);
      frames.push(f.rgb);
      counts.push(tf.memory().numTensors);
    }
    expect(frames.length).toBe(2);
    expect(counts[1]).toBe(counts[0]);
    expect(tf.memory().numTensors).toBe(before);
    img.dispose();
    lp.dispose();
  });
});
