// Nothing lost, nothing hangs: output folders checked before any work,
// camera-sized photos, no silent surprises (shrunk sources, faces left out,
// faceless driving inputs, replaced outputs), interrupts acted on at any
// moment, a dying frame worker. Most cases fail before any model is loaded;
// the two that need the networks run one frame.
import { type ChildProcess, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hstackImages } from '../src/image/concat.js';
import { createImage, resizeImage } from '../src/image/image.js';
import { checkSignature, createNetwork, createStitching, syntheticModuleWeights, syntheticStitchingWeights } from '../src/models/registry.js';
import { animate } from '../src/node/app/animate.js';
import { CliError } from '../src/node/app/errors.js';
import { drivingTag } from '../src/node/app/inputs.js';
import { ffmpegPath } from '../src/node/ffmpeg.js';
import { readImage, writeImage } from '../src/node/image_files.js';
import { WarpDecodePool } from '../src/node/workers.js';
import { LivePortrait } from '../src/pipeline/live_portrait.js';
import { MEDIA_DIR, ROOT, filesIn as files } from './helpers/paths.js';
import { cliAsync, type CliRun, errorLines } from './helpers/cli.js';

const S0 = join(MEDIA_DIR, 's0.jpg');
const D0 = join(MEDIA_DIR, 'd0.mp4');
const D12 = join(MEDIA_DIR, 'd12.jpg');
const PKL = join(MEDIA_DIR, 'laugh.pkl');
const SYN = ['--weights', 'synthetic', '--seed', '1'];

let tmp: string;

/** Run the bin script in tmp (HOME too); killed (and reported as such) after `limitMs`. `user` runs it as that user (root only). */
const cli = (args: string[], opts: Parameters<typeof cliAsync>[1] & { limitMs?: number } = {}): Promise<CliRun> =>
  cliAsync(args, { ...opts, cwd: opts.cwd ?? tmp, timeoutMs: opts.limitMs, env: { HOME: tmp, ...opts.env } });

/** One `liveportrait: error:` line (info lines aside), the exit code, no stack. */
function oneError(r: CliRun, code: number, ...needles: RegExp[]): string {
  expect(r.signal, `killed after ${r.ms} ms; stderr: ${r.stderr}`).toBeNull();
  expect(r.code, r.stderr).toBe(code);
  const errors = errorLines(r.stderr);
  expect(errors, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  for (const n of needles) expect(errors[0]).toMatch(n);
  return errors[0];
}

const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** True while any process of process group `pgid` is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'lp-reliab-'));
  chmodSync(tmp, 0o755); // the unprivileged runs read it
  await writeImage(join(tmp, 'blank.png'), createImage(96, 96, new Uint8Array(96 * 96 * 3).fill(128)));
  const s0 = await readImage(S0);
  const s9 = await readImage(join(MEDIA_DIR, 's9.jpg'));
  const h = 1000;
  const a = resizeImage(s0, Math.round((s0.width * h) / s0.height / 2) * 2, h, 'area');
  const b = resizeImage(s9, Math.round((s9.width * h) / s9.height / 2) * 2, h, 'area');
  await writeImage(join(tmp, 'group.png'), hstackImages([a, b]));
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('1. output folders: created and checked before any model loads, never a spin', () => {
  const before = (r: CliRun) => expect(r.stderr, 'failed after the backend started').not.toMatch(/face|backend/);

  it('a path under /proc: one line, at once (it used to hang in mkdirSync recursive)', async () => {
    for (const o of ['/proc/lp_out', '/proc/lp_out/a/b']) {
      const r = await cli(['animate', '-s', S0, '-d', D0, '-o', o, ...SYN], { limitMs: 30_000 });
      oneError(r, 1, new RegExp(`output folder ${o} cannot be created`), /does not take new folders/);
      before(r);
    }
    // retarget and template, too
    oneError(await cli(['retarget', '-s', S0, '-o', '/proc/lp_out/x.jpg', ...SYN], { limitMs: 30_000 }), 1, /output folder \/proc\/lp_out cannot be created/);
  });

  it('a file in the way', async () => {
    writeFileSync(join(tmp, 'afile'), 'x');
    let r = await cli(['animate', '-s', S0, '-d', D0, '-o', join(tmp, 'afile'), ...SYN]);
    oneError(r, 1, /output folder .*afile is a file, not a folder/);
    before(r);
    r = await cli(['animate', '-s', S0, '-d', D0, '-o', join(tmp, 'afile', 'sub', 'dir'), ...SYN]);
    oneError(r, 1, /output folder .*afile\/sub\/dir cannot be created: .*afile is a file, not a folder/);
    before(r);
  });

  it('no permission (as the unprivileged user nobody, folder owned by root, mode 755)', async (ctx) => {
    if (!isRoot || !hasSetpriv) {
      console.log(`skipped: needs root and setpriv to run the CLI as nobody (root: ${isRoot}, setpriv: ${hasSetpriv})`);
      ctx.skip();
    }
    const ro = join(tmp, 'ro');
    mkdirSync(ro, { mode: 0o755 });
    chmodSync(ro, 0o755);
    let r = await cli(['animate', '-s', S0, '-d', D0, '-o', ro, ...SYN], { user: 'nobody' });
    oneError(r, 1, new RegExp(`output folder ${ro} is not writable: permission denied`));
    before(r);
    r = await cli(['animate', '-s', S0, '-d', D0, '-o', join(ro, 'new', 'sub'), ...SYN], { user: 'nobody' });
    const line = oneError(r, 1, new RegExp(`output folder ${ro}/new/sub cannot be created: permission denied \\(user nobody may not write in ${ro}\\)`));
    expect(line).not.toContain('EACCES');
    before(r);
    expect(files(ro)).toEqual([]);
  });
});

describe('2. photos of any size a camera makes', () => {
  it('an 8000x6000 JPEG decodes (48 MP; jimp alone refused it), and the CLI says it was shrunk', async () => {
    const big = join(tmp, 'big.jpg');
    const g = spawnSync(ffmpegPath(), ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=8000x6000', '-frames:v', '1', big]);
    expect(g.status, g.stderr?.toString()).toBe(0);
    const img = await readImage(big);
    expect([img.width, img.height]).toEqual([8000, 6000]);
    expect(Math.abs(img.data[3 * (3000 * 8000 + 4000)] - 128)).toBeLessThan(8);
    // through the command: decoded, shrunk with a word, then refused for having no face (no model work)
    const r = await cli(['animate', '-s', big, '-d', D0, '-o', join(tmp, 'bigout'), ...SYN]);
    expect(r.stderr).toContain('liveportrait: source 8000x6000 shrunk to 1280x960 (--source-max-dim)');
    oneError(r, 1, /no face found in the source .*big\.jpg/);
    expect(r.stderr).not.toMatch(/corrupt|maxMemoryUsageInMB/);
    expect(existsSync(join(tmp, 'bigout'))).toBe(false); // the folder made for the run is gone again
  });

  it('only a real decoding error says corrupt', async () => {
    const jpg = readFileSync(S0);
    writeFileSync(join(tmp, 'cut.jpg'), jpg.subarray(0, 600));
    await expect(readImage(join(tmp, 'cut.jpg'))).rejects.toThrow(/cut\.jpg.*corrupt jpeg/);
  });
});

describe('3. outputs are never replaced without --overwrite; names keep the driving kind', () => {
  it('an existing output stops the run before any work, naming the file', async () => {
    const out = join(tmp, 'exists');
    mkdirSync(out);
    writeFileSync(join(out, 's0--d0.mp4'), 'earlier result');
    const r = await cli(['animate', '-s', S0, '-d', D0, '-o', out, ...SYN]);
    oneError(r, 1, /output .*exists\/s0--d0\.mp4 exists/, /--overwrite/);
    expect(r.stderr).not.toMatch(/backend|face/);
    expect(readFileSync(join(out, 's0--d0.mp4'), 'utf8')).toBe('earlier result');
    // retarget and template too
    writeFileSync(join(out, 'x.jpg'), 'earlier');
    oneError(await cli(['retarget', '-s', S0, '-o', join(out, 'x.jpg'), ...SYN]), 1, /x\.jpg exists/, /--overwrite/);
    writeFileSync(join(out, 't.lpmotion.safetensors'), 'earlier');
    oneError(await cli(['template', '-d', D0, '-o', join(out, 't.lpmotion.safetensors'), ...SYN]), 1, /t\.lpmotion\.safetensors exists/, /--overwrite/);
  });

  it('a template driving is named after its kind: photo--talk_lpmotion.mp4, photo--laugh_pkl.mp4', async () => {
    expect(drivingTag('talk.lpmotion.safetensors')).toBe('_lpmotion');
    expect(drivingTag('laugh.pkl')).toBe('_pkl');
    expect(drivingTag('talk.mp4')).toBe('');
    // The overwrite check names the output before any work, so the names show without rendering.
    const out = join(tmp, 'names');
    mkdirSync(out);
    writeFileSync(join(out, 's0--laugh_pkl.mp4'), 'x');
    oneError(await cli(['animate', '-s', S0, '-d', PKL, '-o', out, ...SYN]), 1, /s0--laugh_pkl\.mp4 exists/);
    writeFileSync(join(tmp, 'talk.lpmotion.safetensors'), 'not read before the name is chosen');
    writeFileSync(join(out, 's0--talk_lpmotion.mp4'), 'x');
    oneError(await cli(['animate', '-s', S0, '-d', join(tmp, 'talk.lpmotion.safetensors'), '-o', out, ...SYN]), 1, /s0--talk_lpmotion\.mp4 exists/);
  });
});

/** A model that stops at the first network call: everything before it (inputs, faces, notes) runs for real. */
function stopAtNetworks(): LivePortrait {
  return Object.assign(Object.create(LivePortrait.prototype), {
    prepareSource() {
      throw new Error('stand-in: stopped before the networks');
    },
    disposeSource() {},
  }) as LivePortrait;
}

describe('4. no silent shrinking, no silently left-out faces', () => {
  it('a 1414x1000 group photo: one line for the shrink, one for the faces left out', async () => {
    const lines: string[] = [];
    await expect(animate({ model: stopAtNetworks(), source: join(tmp, 'group.png'), driving: D12, outputDir: join(tmp, 'g'), log: (l) => lines.push(l) })).rejects.toThrow(/stand-in/);
    expect(lines).toContain('source 1414x1000 shrunk to 1280x904 (--source-max-dim)');
    expect(lines.some((l) => l.endsWith('2 faces found, animating the largest; --all-faces animates all, --face-index picks one')), lines.join('\n')).toBe(true);
    expect(files(join(tmp, 'g'))).toEqual([]);
  });
});

describe('5. a driving input without a face', () => {
  it('image: a warning; with eye or lip retargeting, an error', async () => {
    const lines: string[] = [];
    const blank = join(tmp, 'blank.png');
    await expect(animate({ model: stopAtNetworks(), source: S0, driving: blank, outputDir: join(tmp, 'f1'), log: (l) => lines.push(l) })).rejects.toThrow(/stand-in/);
    expect(lines.some((l) => /^warning: no face found in the driving image .*blank\.png/.test(l)), lines.join('\n')).toBe(true);
    const e = await animate({ model: stopAtNetworks(), source: S0, driving: blank, outputDir: join(tmp, 'f1'), eyeRetargeting: true }).catch((x: Error) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as Error).message).toMatch(/no face found in the driving image .*blank\.png, but --eye-retargeting needs the driving face/);
  });

  it('video: a warning', async () => {
    const vid = join(tmp, 'grey.mp4');
    const g = spawnSync(ffmpegPath(), ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=gray:s=128x128:d=0.12:r=25', '-pix_fmt', 'yuv420p', vid]);
    expect(g.status, g.stderr?.toString()).toBe(0);
    const lines: string[] = [];
    await expect(animate({ model: stopAtNetworks(), source: S0, driving: vid, outputDir: join(tmp, 'f2'), log: (l) => lines.push(l) })).rejects.toThrow(/stand-in/);
    expect(lines.some((l) => /^warning: no face found in the first frame of the driving video .*grey\.mp4/.test(l)), lines.join('\n')).toBe(true);
  });
});

describe('6. small things', () => {
  it('--version is this package\'s, also when installed as a dependency of another project', async () => {
    const host = join(tmp, 'host');
    const pkg = join(host, 'node_modules', 'liveportrait-tfjs');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(host, 'package.json'), '{"name":"host-app","version":"9.9.9"}');
    for (const f of ['bin', 'src', 'package.json']) symlinkSync(join(ROOT, f), join(pkg, f));
    for (const d of readdirSync(join(ROOT, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules', d), join(host, 'node_modules', d));
    const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    // --preserve-symlinks: the modules resolve as in a real install, yargs under host/node_modules
    const c = spawnSync(process.execPath, ['--preserve-symlinks', '--preserve-symlinks-main', join(pkg, 'bin', 'liveportrait.js'), '--version'], { cwd: host, encoding: 'utf8' });
    expect(c.stdout.trim()).toBe(ours);
  });

  it('a number option given a word says what was typed', async () => {
    oneError(await cli(['animate', '-s', S0, '-d', D0, '--max-frames', 'abc']), 2, /--max-frames must be a number, got 'abc'/);
    oneError(await cli(['retarget', '-s', S0, '-o', 'x.jpg', '--yaw=left']), 2, /--yaw must be a number, got 'left'/);
  });

  it('"not an appearance_feature_extractor checkpoint"', () => {
    expect(() => checkSignature(new Map(), 'appearance_feature_extractor', 'x.safetensors')).toThrow(/not an appearance_feature_extractor checkpoint/);
    expect(() => checkSignature(new Map(), 'motion_extractor', 'x.safetensors')).toThrow(/not a motion_extractor checkpoint/);
  });

  it('weights download offline: the command that works, and no empty folder left behind', async () => {
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as { port: number }).port;
    await new Promise((ok) => closed.close(ok));
    const dir = join(tmp, 'w', 'human');
    const r = await cli(['weights', 'download', '--dir', dir, '-q'], { env: { HF_ENDPOINT: `http://127.0.0.1:${port}` } });
    const line = oneError(r, 1, /cannot reach/);
    expect(line).toContain(`liveportrait weights convert --from ${dir} --dir ${dir}`);
    expect(line).not.toContain('scripts/convert');
    expect(existsSync(join(tmp, 'w'))).toBe(false);
  });

  it('weights/README.md shows only the package\'s own entry points, and what it imports exists', async () => {
    const md = readFileSync(join(ROOT, 'weights', 'README.md'), 'utf8');
    expect(md).not.toMatch(/scripts\/convert|from '\.\.?\/|src\//);
    expect(md).toContain('liveportrait weights convert --from');
    const node = await import('../src/node/index.js');
    for (const m of md.matchAll(/import \{([^}]+)\} from '(liveportrait-tfjs[^']*)'/g)) {
      expect(m[2]).toBe('liveportrait-tfjs/node');
      for (const name of m[1].split(',').map((s) => s.trim()).filter(Boolean)) expect(node, name).toHaveProperty(name);
    }
  });
});

describe('7. an interrupt is acted on at once, at any point of a run', () => {
  /** Start a one-frame run, wait until it is in the networks, send `sig`, and time the exit. */
  async function interrupt(sig: NodeJS.Signals, workers: string) {
    const out = join(tmp, `int-${sig}`, 'sub');
    let proc!: ChildProcess;
    const done = cli(['animate', '-s', S0, '-d', D0, '-o', out, ...SYN, '--workers', workers, '--max-frames', '1'], { limitMs: 120_000, onStart: (c) => (proc = c) });
    let err = '';
    proc.stderr!.on('data', (b) => (err += b));
    for (let i = 0; i < 600 && !/face(\(s\))? found/.test(err); i++) await sleep(100);
    expect(err).toMatch(/face(\(s\))? found/);
    await sleep(3000); // now deep in the networks (model load, F, M, W, G)
    const kids = childrenOf(proc.pid!); // the child that does the work
    const t = Date.now();
    proc.kill(sig);
    const r = await done;
    return { r, ms: Date.now() - t, out, kids };
  }

  it('SIGINT with everything on the main thread (--workers 0): exit 130 within seconds, nothing left', async () => {
    const { r, ms, out, kids } = await interrupt('SIGINT', '0');
    expect(ms, r.stderr).toBeLessThan(5000);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('liveportrait: interrupted (SIGINT); no output written');
    expect(existsSync(out)).toBe(false); // partial files and the folders the run made are gone
    expect(existsSync(join(out, '..'))).toBe(false);
    expect(kids).toHaveLength(1);
    expect(groupAlive(kids[0])).toBe(false); // no worker, no ffmpeg left
  });

  it('SIGTERM with a frame worker: exit 143', async () => {
    const { r, ms, kids } = await interrupt('SIGTERM', '1');
    expect(ms, r.stderr).toBeLessThan(5000);
    expect(r.code, r.stderr).toBe(143);
    expect(r.stderr).toContain('interrupted (SIGTERM)');
    expect(kids).toHaveLength(1);
    expect(groupAlive(kids[0])).toBe(false);
  });
});

describe('a frame worker that dies mid-run', () => {
  it('ends the run with one clear line: no output, no workers or ffmpeg left, no hang', async () => {
    // F, M and S here (W and G render in the worker only: stand-ins on this thread spare building them twice)
    const src = 'synthetic seed 1';
    const unused = { dispose() {} } as never;
    const lp = new LivePortrait(
      {
        F: createNetwork('appearance_feature_extractor', syntheticModuleWeights('appearance_feature_extractor', 1), src),
        M: createNetwork('motion_extractor', syntheticModuleWeights('motion_extractor', 1), src),
        W: unused,
        G: unused,
        S: createStitching(syntheticStitchingWeights(1), src),
      },
      { lipArray: new Float32Array(63) },
    );
    lp.workerWeights = { seed: 1 };
    const out = join(tmp, 'fault');
    let stop = false;
    let killedAt = 0;
    const killer = (async () => {
      while (!stop) {
        const pool = [...WarpDecodePool.open].find((p) => p.pending > 0);
        if (pool) {
          killedAt = Date.now();
          await pool.threads[0].terminate(); // as if it crashed or ran out of memory
          return;
        }
        await sleep(50);
      }
    })();
    try {
      const e = await animate({ model: lp, workers: 1, source: S0, driving: D0, outputDir: out, maxFrames: 2 }).catch((x: Error) => x);
      stop = true;
      await killer;
      expect(killedAt).toBeGreaterThan(0);
      expect(e).toBeInstanceOf(CliError);
      expect((e as Error).message).toMatch(/^frame worker 1 of 1 stopped unexpectedly \(exit code 1\); it may have run out of memory .*--workers 0$/);
      expect(Date.now() - killedAt).toBeLessThan(10_000);
      expect(files(out)).toEqual([]);
      expect(existsSync(out)).toBe(false);
      expect(WarpDecodePool.open.size).toBe(0);
      expect(lp.workers).toBe(0); // a later run starts new workers
      await sleep(500);
      const ffmpegs = childrenOf(process.pid).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'ffmpeg';
        } catch {
          return false;
        }
      });
      expect(ffmpegs).toEqual([]);
    } finally {
      stop = true;
      await lp.dispose();
    }
  });
});
