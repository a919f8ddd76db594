// The command line as a user meets it: --help text, and every bad input
// answered by one line naming the file and the fix, exit code 1 (2 for
// usage), no stack trace and no output file. Runs the real bin script.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_DIR } from './helpers/paths.js';
import { cli as run, type CliRun } from './helpers/cli.js';
import { flatImage } from './helpers/images.js';
import { writeImage } from '../src/node/image_files.js';

const S0 = join(MEDIA_DIR, 's0.jpg');
const D0 = join(MEDIA_DIR, 'd0.mp4');

let tmp: string;
let out: string;

const cli = (args: string[], env: Record<string, string> = {}) => run(args, { cwd: tmp, env });

/** A failed run: one `liveportrait: error:` line, no stack, the given exit code, nothing written. */
function expectOneLineError(r: CliRun, code: number, ...needles: (string | RegExp)[]) {
  expect(r.code).toBe(code);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('liveportrait: backend'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^liveportrait: error: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  for (const n of needles) expect(lines[0]).toMatch(n);
  expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lp-cli-'));
  out = join(tmp, 'out');
  writeFileSync(join(tmp, 'notes.txt'), 'not a picture');
  writeFileSync(join(tmp, 'broken.jpg'), 'not a jpeg either');
  writeFileSync(join(tmp, 'bad.pkl'), 'junk');
  await writeImage(join(tmp, 'blank.png'), flatImage(96, 96));
  mkdirSync(join(tmp, 'badw'));
  for (const m of ['appearance_feature_extractor', 'motion_extractor', 'warping_module', 'spade_generator', 'stitching_retargeting_module'])
    writeFileSync(join(tmp, 'badw', `${m}.safetensors`), 'garbage');
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('liveportrait --help', () => {
  it('describes the commands, the environment and the exit codes', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    for (const s of ['animate', 'retarget', 'template', 'weights', 'bench', 'LIVEPORTRAIT_BACKEND', 'LIVEPORTRAIT_DEBUG', 'Exit status', 'Examples:']) expect(r.stdout).toContain(s);
  });

  it('animate --help explains every flag with its default', () => {
    const r = cli(['animate', '--help']);
    expect(r.code).toBe(0);
    const flags = [
      '--source', '--driving', '--output-dir', '--max-frames', '--stitching', '--relative', '--region', '--multiplier', '--driving-option',
      '--eye-retargeting', '--lip-retargeting', '--normalize-lip', '--crop-driving', '--paste-back', '--face-index', '--all-faces',
      '--crf', '--gif', '--concat', '--backend', '--weights', '--seed', '--workers',
    ];
    for (const f of flags) expect(r.stdout).toContain(f);
    for (const d of ['[default: "animations"]', '[default: 18]', '[default: "expression-friendly"]', '[default: -0.125]', '[default: 2.3]']) expect(r.stdout).toContain(d);
    expect(r.stdout).toContain('<source>--<driving>_concat.mp4');
    expect(r.stdout).toContain('Examples:');
  });

  it('batch and worker --help explain every flag with its default', () => {
    const b = cli(['batch', '--help']);
    expect(b.code).toBe(0);
    for (const f of ['--output-dir', '--overwrite', '--queue', '--status', '--attempts', '--follow', '--weights', '--workers']) expect(b.stdout).toContain(f);
    for (const d of ['[default: "animations"]', '[default: none, render here]', '[default: 3]', '[default: true]']) expect(b.stdout).toContain(d);
    expect(b.stdout).toMatch(/JSONL[\s\S]*CSV[\s\S]*skipped[\s\S]*Examples:/);
    const w = cli(['worker', '--help']);
    expect(w.code).toBe(0);
    for (const f of ['--queue', '--concurrency', '--lock-duration', '--stalled-interval', '--weights', '--backend', '--workers', '--seed']) expect(w.stdout).toContain(f);
    for (const d of ['[default: 1]', '[default: 30000]', '[required]']) expect(w.stdout).toContain(d);
    expect(cli(['--help']).stdout).toMatch(/batch[\s\S]*worker/);
  });

  it('retarget, template and weights have their own help', () => {
    expect(cli(['retarget', '--help']).stdout).toMatch(/--eye-ratio[\s\S]*--lip-ratio[\s\S]*--pitch[\s\S]*--yaw[\s\S]*--roll/);
    expect(cli(['template', '--help']).stdout).toContain('.lpmotion.safetensors');
    expect(cli(['weights', '--help']).stdout).toMatch(/download[\s\S]*verify[\s\S]*convert/);
  });
});

describe('bad usage: exit code 2', () => {
  it('no command, unknown flag, missing argument, bad choice', () => {
    expectOneLineError(cli([]), 2, /name a command/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', D0, '--bogus']), 2, /bogus/);
    expectOneLineError(cli(['animate', '-s', S0]), 2, /driving/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', D0, '--region', 'nose']), 2, /region/);
  });
});

describe('bad input: one line naming the file and the fix, exit code 1, no output', () => {
  const base = () => ['-o', out, '--weights', 'synthetic', '--seed', '1', '-q'];

  it('missing source and driving files', () => {
    expectOneLineError(cli(['animate', '-s', 'nope.jpg', '-d', D0, ...base()]), 1, /nope\.jpg/, /not found/, /-s\/--source/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', 'gone.mp4', ...base()]), 1, /gone\.mp4/, /not found/);
  });

  it('unsupported formats', () => {
    expectOneLineError(cli(['animate', '-s', 'notes.txt', '-d', D0, ...base()]), 1, /notes\.txt/, /unsupported format/, /give an image/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', 'notes.txt', ...base()]), 1, /notes\.txt/, /motion template/);
    expectOneLineError(cli(['animate', '-s', 'broken.jpg', '-d', D0, ...base()]), 1, /broken\.jpg/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', 'bad.pkl', ...base()]), 1, /bad\.pkl/, /not a motion template/);
  });

  it('no face in the source, face index out of range', () => {
    expectOneLineError(cli(['animate', '-s', 'blank.png', '-d', D0, ...base()]), 1, /no face found/, /blank\.png/, /--no-crop/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', D0, '--face-index', '4', ...base()]), 1, /--face-index 4/, /1 face/);
  });

  it('weights missing or corrupt', () => {
    const b = ['-o', out, '-q'];
    expectOneLineError(cli(['animate', '-s', S0, '-d', D0, '--weights', 'nowhere', ...b]), 1, /nowhere/, /liveportrait weights download --dir/);
    expectOneLineError(cli(['animate', '-s', S0, '-d', D0, '--weights', 'badw', ...b]), 1, /badw\/appearance_feature_extractor\.safetensors/, /corrupt/);
    // verify lists one line per bad module, then the error line
    const v = cli(['weights', 'verify', '--dir', 'badw', '-q']);
    expect(v.code).toBe(1);
    expect(v.stderr).not.toMatch(/\n\s+at /);
    expect(v.stderr).toMatch(/PROBLEM {2}spade_generator: .*badw\/spade_generator\.safetensors/);
    expect(v.stderr.trim().split('\n').at(-1)).toMatch(/^liveportrait: error: weights in .*badw are incomplete or corrupt.*liveportrait weights download --dir/);
  });

  it('bad output names for retarget and template', () => {
    expectOneLineError(cli(['retarget', '-s', S0, '-o', join(out, 'x.gif'), '--weights', 'synthetic']), 2, /x\.gif/, /\.jpg, \.png or \.bmp/);
    expectOneLineError(cli(['template', '-d', D0, '-o', join(out, 't.pkl'), '--weights', 'synthetic']), 2, /\.pkl/, /lpmotion\.safetensors/);
  });

  it('a stack trace only with LIVEPORTRAIT_DEBUG=1', () => {
    const r = cli(['animate', '-s', 'nope.jpg', '-d', D0, ...base()], { LIVEPORTRAIT_DEBUG: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('progress output', () => {
  it('a terminal gets a redrawn bar; a pipe gets a line at most every interval, and one at the end', async () => {
    const { Progress, summaryLine, formatDuration } = await import('../src/node/app/progress.js');
    let t = 0;
    const now = () => t;
    const tty: string[] = [];
    const p = new Progress('Animating', 4, { stream: { write: (s: string) => tty.push(s), isTTY: true, columns: 200 }, now });
    t = 2000;
    p.tick();
    p.finish();
    expect(tty.every((s) => s.startsWith('\r\x1b[K') || s === '\n')).toBe(true);
    expect(tty.at(-2)).toMatch(/Animating \[#{6}-{18}\] 1\/4 frames, first after 0:02, 0:02 elapsed, ETA 0:06/);

    t = 0;
    const pipe: string[] = [];
    const q = new Progress('Animating', 100, { stream: { write: (s: string) => pipe.push(s) }, now, interval: 10 });
    for (let i = 0; i < 100; i++) {
      t += 1000; // 1 s a frame
      q.tick();
    }
    q.finish();
    expect(pipe.length).toBe(11); // the first tick, one per 10 s, the end
    expect(pipe.at(-1)).toBe('Animating 100/100 frames, 1.00 fps, 1:40 elapsed\n');

    // The rate leaves the start-up out: a first frame after 30 s, then one every 2 s.
    t = 0;
    const lines: string[] = [];
    const r = new Progress('Animating', 10, { stream: { write: (s: string) => lines.push(s) }, now, interval: 0 });
    expect(r.text()).toBe('Animating 0/10 frames, starting, 0:00 elapsed, ETA --:--');
    t = 30_000;
    r.tick();
    for (let i = 0; i < 4; i++) {
      t += 2000;
      r.tick();
    }
    expect(lines.at(-1)).toBe('Animating 5/10 frames, 0.500 fps, 0:38 elapsed, ETA 0:10\n');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(summaryLine(2, 4, ['a.mp4', 'b.mp4'])).toBe('liveportrait: 2 frames in 4.0 s (0.500 fps) → a.mp4, b.mp4');
  });
});
