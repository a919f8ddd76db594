// Docs that run: every TypeScript block of the README and every file in
// examples/, as a user would run them (npx tsx, imports by the package's
// name), with the one documented switch LIVEPORTRAIT_WEIGHTS=synthetic, on
// a photo and a 2-frame video copied from the shared media under the names
// the README uses. A documented call that breaks fails here.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPath } from '../src/node/ffmpeg.js';
import { readImage } from '../src/node/image_files.js';
import { loadFaceDetector } from '../src/node/face_models.js';
import { probeVideo, readVideo } from '../src/node/video.js';
import { MEDIA_DIR, PARITY_DIR, ROOT } from './helpers/paths.js';

// Scripts must sit inside the package for `import 'liveportrait-tfjs'` to resolve to it.
const RUN_DIR = join(ROOT, 'tmp', 'docs');
let work: string;

/** The ```ts blocks of a markdown text, with the heading each stands under. */
export function tsBlocks(md: string): { heading: string; code: string }[] {
  const out: { heading: string; code: string }[] = [];
  let heading = '';
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (/^#{1,6} /.test(lines[i])) heading = lines[i].replace(/^#+ /, '');
    if (/^\s*```(ts|typescript)\s*$/.test(lines[i])) {
      const body: string[] = [];
      for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      out.push({ heading, code: body.join('\n') });
    }
  }
  return out;
}

function run(script: string, args: string[] = []) {
  const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsx'), [script, ...args], {
    cwd: work,
    env: { ...process.env, LIVEPORTRAIT_WEIGHTS: 'synthetic', LP_PARITY_DIR: PARITY_DIR },
    encoding: 'utf8',
    timeout: 900_000,
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** Mean absolute difference of two same-size images over a window. */
function meanDiff(a: { data: Uint8Array; width: number }, b: { data: Uint8Array }, x0: number, y0: number, w: number, h: number): number {
  let s = 0;
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) for (let c = 0; c < 3; c++) s += Math.abs(a.data[(y * a.width + x) * 3 + c] - b.data[(y * a.width + x) * 3 + c]);
  return s / (w * h * 3);
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'lp-docs-'));
  mkdirSync(RUN_DIR, { recursive: true });
  copyFileSync(join(MEDIA_DIR, 's0.jpg'), join(work, 'photo.jpg'));
  // A 2-frame driving video with a second of sound (longer than the video, as a real clip's: the result is cut to the shorter, as the reference's).
  const v2 = join(work, 'v2.mp4');
  const cut = spawnSync(ffmpegPath(), ['-v', 'error', '-y', '-i', join(MEDIA_DIR, 'd0.mp4'), '-frames:v', '2', '-an', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', v2]);
  expect(cut.status, cut.stderr?.toString()).toBe(0);
  const ff = spawnSync(ffmpegPath(), ['-v', 'error', '-y', '-i', v2, '-f', 'lavfi', '-i', 'sine=f=440:d=1', '-map', '0:v', '-map', '1:a', '-c:v', 'copy', '-c:a', 'aac', join(work, 'driving.mp4')]);
  expect(ff.status, ff.stderr?.toString()).toBe(0);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the README', () => {
  const blocks = tsBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  it('has TypeScript blocks, the first under "As a library" animating photo.jpg into animated.mp4', () => {
    const lib = blocks.filter((b) => b.heading === 'As a library');
    expect(lib.length).toBeGreaterThan(0);
    expect(lib[0].code).toContain("'photo.jpg'");
    expect(lib[0].code).toContain("'driving.mp4'");
    expect(lib[0].code).toContain("'animated.mp4'");
  });

  it('the library example writes animated.mp4: the whole photo, the face animated and pasted back', async () => {
    const first = blocks.find((b) => b.heading === 'As a library')!;
    const script = join(RUN_DIR, 'readme-library.ts');
    writeFileSync(script, first.code);
    const r = run(script);
    expect(r.status, r.out).toBe(0);
    const out = join(work, 'animated.mp4');
    const info = await probeVideo(out);
    const photo = await readImage(join(work, 'photo.jpg'));
    expect([info.width, info.height, info.frameCount, info.hasAudio]).toEqual([photo.width, photo.height, 2, true]);
    // Pasted back: the corners are the photo's (up to the encoder), the face is not.
    const [frame] = await readVideo(out, { maxFrames: 1 });
    expect(meanDiff(frame, photo, 0, 0, 60, 60)).toBeLessThan(6);
    expect(meanDiff(frame, photo, photo.width - 60, photo.height - 60, 60, 60)).toBeLessThan(6);
    const [face] = await (await loadFaceDetector()).detect(photo, { maxFaces: 1 });
    const [x0, y0, x1, y1] = face.box.map(Math.round);
    const side = Math.round(Math.min(x1 - x0, y1 - y0) / 2);
    expect(meanDiff(frame, photo, Math.round((x0 + x1 - side) / 2), Math.round((y0 + y1 - side) / 2), side, side)).toBeGreaterThan(20);
  });

  it('every other TypeScript block runs', () => {
    const rest = blocks.slice(1);
    for (const [i, b] of rest.entries()) {
      const script = join(RUN_DIR, `readme-${i + 1}.ts`);
      writeFileSync(script, b.code);
      const r = run(script);
      expect(r.status, `README block under "${b.heading}":\n${r.out}`).toBe(0);
    }
  });

  it("a user's own error prints the user's error, not the wasm backend's glue", () => {
    const script = join(RUN_DIR, 'own-error.ts');
    writeFileSync(script, "import { initBackend } from 'liveportrait-tfjs';\nawait initBackend();\nthrow new Error('my own mistake');\n");
    const r = run(script);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('Error: my own mistake');
    expect(r.out).not.toContain('WasmBackendModule');
    expect(r.out.length).toBeLessThan(2000);
  });
});

describe('examples/', () => {
  // How each example is run here; a new example must be added (the first test fails otherwise).
  const CASES: Record<string, { args: () => string[]; check: () => Promise<void> }> = {
    'animate.ts': {
      args: () => ['photo.jpg', 'driving.mp4', 'ex-animated.mp4', '1'],
      check: async () => {
        const info = await probeVideo(join(work, 'ex-animated.mp4'));
        expect([info.width, info.height, info.frameCount]).toEqual([600, 704, 1]);
      },
    },
    'expression_edit.ts': {
      args: () => ['photo.jpg', 'edited.jpg'],
      check: async () => {
        const img = await readImage(join(work, 'edited.jpg'));
        expect([img.width, img.height]).toEqual([600, 704]);
      },
    },
    'mix_modules.ts': {
      args: () => ['photo.jpg', join(MEDIA_DIR, 'laugh.pkl'), 'mixed.jpg'],
      check: async () => {
        const img = await readImage(join(work, 'mixed.jpg'));
        expect([img.width, img.height]).toEqual([600, 704]);
      },
    },
    'tap_layer.ts': {
      args: () => [PARITY_DIR],
      check: async () => undefined,
    },
  };

  it('every example is run by this test', () => {
    const files = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.ts'));
    expect(files.sort()).toEqual(Object.keys(CASES).sort());
  });

  for (const [file, c] of Object.entries(CASES)) {
    it.skipIf(file === 'tap_layer.ts' && !existsSync(join(PARITY_DIR, 'warping_module.safetensors')))(`${file} runs`, async () => {
      const r = run(join(ROOT, 'examples', file), c.args());
      expect(r.status, `${basename(file)}:\n${r.out}`).toBe(0);
      await c.check();
      if (file === 'tap_layer.ts') expect(r.out).toMatch(/W\.dense_motion_network\.compress \[1,4,16,64,64\]: max \|ours - PyTorch\| = \d/);
    });
  }
});
