// The command line of issue 24: `template --driving-smooth` saves smoothed
// motion, `animate --reference-frame auto` prints the frame it chose, and
// the flags' usage errors (one line, exit 2, before any work).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTemplate } from '../src/node/files.js';
import { readImage, writeImage } from '../src/node/image_files.js';
import { faceDrivingList, parseReferenceFrame } from '../src/node/app/face_drivings.js';
import { MEDIA_DIR } from './helpers/paths.js';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'liveportrait.js');
const S0 = join(MEDIA_DIR, 's0.jpg');
const D0 = join(MEDIA_DIR, 'd0.mp4');
const LAUGH = join(MEDIA_DIR, 'laugh.pkl');
const HAVE = existsSync(D0) && existsSync(LAUGH);
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lp-drivings-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, LIVEPORTRAIT_DEBUG: '' }, timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function expectUsage(args: string[], needle: RegExp): void {
  const r = cli([...args, '--weights', 'synthetic', ...(args[0] === 'animate' ? ['-o', join(tmp, 'never')] : [])]);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('liveportrait: backend'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(needle);
  expect(existsSync(join(tmp, 'never'))).toBe(false);
}
/** Run the CLI until `until` appears in its output, then end it (SIGTERM): the output so far. */
async function firstLines(args: string[], until: RegExp): Promise<string> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp, env: { ...process.env, LIVEPORTRAIT_DEBUG: '' } });
  let text = '';
  await new Promise<void>((res, rej) => {
    const look = (d: Buffer) => {
      text += d.toString();
      if (until.test(text)) res();
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => rej(new Error(`exited ${code} before ${until}:\n${text}`)));
  });
  child.kill('SIGTERM');
  await new Promise((r) => child.on('close', r));
  return text;
}
function jitter(s: number[][]): number {
  let sum = 0;
  let n = 0;
  for (let t = 1; t + 1 < s.length; t++) for (let k = 0; k < s[t].length; k++) (sum += Math.abs(s[t + 1][k] - 2 * s[t][k] + s[t - 1][k])), n++;
  return sum / n;
}

describe('flags', () => {
  it('face drivings and the reference frame parsed; one-line usage errors naming the flag', () => {
    expect(faceDrivingList(['a.mp4', 'b.mp4'], undefined)).toEqual(['a.mp4', 'b.mp4']);
    expect(faceDrivingList('a.mp4', undefined)).toBeUndefined();
    expect(faceDrivingList(undefined, '0:a.mp4,2:b.pkl')).toEqual(['a.mp4', undefined, 'b.pkl']);
    expect(() => faceDrivingList(undefined, 'a.mp4')).toThrow(/^--face-drivings takes FACE:FILE pairs/);
    expect(parseReferenceFrame('auto')).toBe('auto');
    expect(parseReferenceFrame('12')).toBe(12);
    expect(() => parseReferenceFrame('-1')).toThrow("--reference-frame must be a frame index (0 or more) or auto, got '-1'");
    expectUsage(['animate', '-s', S0, '-d', D0, '-d', LAUGH], /^liveportrait: error: several drivings drive the faces of a group photo, left to right: add --all-faces$/);
    expectUsage(['animate', '-s', S0, '-d', D0, '--reference-frame', 'first'], /--reference-frame must be a frame index/);
    expectUsage(['animate', '-s', S0, '-d', D0, '--driving-smooth', '-1'], /--driving-smooth must be 0 \(off\) or a positive variance/);
    expectUsage(['animate', '-s', S0, '--all-faces', '--face-drivings', '0:a.mp4,0:b.mp4'], /--face-drivings gives face 0 twice/);
    expectUsage(['animate', '-s', S0], /Missing required argument: driving/);
    expectUsage(['template', '-d', D0, '-o', join(tmp, 'x.lpmotion.safetensors'), '--driving-smooth', '-2'], /--driving-smooth must be 0 \(off\)/);
  });
});

describe.skipIf(!HAVE)('runs (synthetic weights)', () => {
  it('template --driving-smooth 1e-4 saves the motion smoothed: same frames, expression jitter under half the raw template\'s, rotations orthonormal', () => {
    const raw = join(tmp, 'raw.lpmotion.safetensors');
    const smooth = join(tmp, 'smooth.lpmotion.safetensors');
    for (const [out, extra] of [[raw, []], [smooth, ['--driving-smooth', '1e-4']]] as const) {
      const r = cli(['template', '-d', D0, '-o', out, '--max-frames', '8', '--weights', 'synthetic', ...extra]);
      expect(r.code, r.stderr).toBe(0);
    }
    const a = loadTemplate(raw).frames;
    const b = loadTemplate(smooth).frames;
    expect(b.length).toBe(a.length);
    expect(a.length).toBe(8);
    expect(jitter(b.map((f) => Array.from(f.exp)))).toBeLessThan(0.5 * jitter(a.map((f) => Array.from(f.exp))));
    for (const f of b) {
      const R = f.R;
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(R[i * 3] * R[j * 3] + R[i * 3 + 1] * R[j * 3 + 1] + R[i * 3 + 2] * R[j * 3 + 2]).toBeCloseTo(i === j ? 1 : 0, 5);
    }
  });

  it('animate --all-faces -d A -d B on a two-face photo: both faces found, the drivings given left to right (printed before rendering)', async () => {
    const group = join(tmp, 'group.png');
    const a = await readImage(join(MEDIA_DIR, 'd12.jpg'));
    const side = { width: a.width * 2, height: a.height, data: new Uint8Array(a.width * 2 * a.height * 3) };
    for (let y = 0; y < a.height; y++) for (const x0 of [0, a.width]) side.data.set(a.data.subarray(y * a.width * 3, (y + 1) * a.width * 3), (y * side.width + x0) * 3);
    await writeImage(group, side);
    const text = await firstLines(['animate', '-s', group, '--all-faces', '-d', LAUGH, '-d', D0, '--weights', 'synthetic', '--workers', '0', '--max-frames', '1', '-o', join(tmp, 'group-out')], /faces? found[^\n]*\n/);
    expect(text).toMatch(/group\.png: 2 faces found, animating all/);
    expect(text).toContain(`drivings by face, left to right: 0: ${LAUGH}, 1: ${D0}`);
  });

  it('animate --reference-frame auto prints the frame it chose', async () => {
    const out = join(tmp, 'auto');
    const text = await firstLines(['animate', '-s', S0, '-d', LAUGH, '--reference-frame', 'auto', '--driving-smooth', '1e-5', '--weights', 'synthetic', '--workers', '0', '--max-frames', '2', '-o', out], /reference frame: (\d+) of the driving \(auto: the most neutral of 2 frames[^\n]*/);
    expect(text).toMatch(/reference frame: [01] of the driving \(auto/);
  });
});
