// The GPU kit (scripts/gpu-kit): build.sh makes a folder under 60 MiB with
// the expected files, and the kit runs from a copy outside the checkout in
// a bare environment with no node on the PATH: run.sh rejects bad flags
// with one line, a dry run on the cpu backend (S only) ends with one JSON
// line, and a missing Vulkan driver gives the library's reason in that line
// (through the kit's own Vulkan loader). No GPU and no PyTorch needed; the
// kit is built without the reference's sources, so the JSON says why the
// side-by-side is missing.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

const LIMIT = 60 * 2 ** 20;
const FILES = [
  'run.sh',
  'kit.json',
  'bin/node.gz',
  'app/kit.mjs',
  'app/node_modules/webgpu/package.json',
  'app/node_modules/webgpu/index.js',
  'app/node_modules/webgpu/dist/linux-x64/dawn.node.gz',
  'lib/libvulkan.so.1',
  'python/bench_wg.py',
];
/** What run.sh may use: no node, no python3. */
const TOOLS = ['bash', 'gzip', 'mkdir', 'cp', 'mv', 'chmod', 'rm', 'mktemp', 'cat', 'uname', 'ls', 'grep', 'tr', 'timeout', 'tee', 'sed'];

let work: string;
let kit: string;
let build: { status: number | null; stderr: string };
let bareEnv: Record<string, string>;

const du = (dir: string): number => Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);

function runKit(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [join(kit, 'run.sh'), ...args], { cwd: work, env: { ...bareEnv, ...env }, encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'lp-gpu-kit-'));
  const built = join(work, 'built');
  const r = spawnSync('bash', [join(ROOT, 'scripts/gpu-kit/build.sh'), built], { encoding: 'utf8', env: { ...process.env, LP_REFERENCE: '' }, timeout: 120_000 });
  build = { status: r.status, stderr: r.stderr ?? '' };
  // The kit as it travels: a copy, away from the checkout.
  kit = join(work, 'kit');
  if (r.status === 0) cpSync(built, kit, { recursive: true });
  const bin = join(work, 'bin');
  mkdirSync(bin);
  for (const t of TOOLS) {
    const p = spawnSync('bash', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
    if (p) symlinkSync(p, join(bin, t));
  }
  bareEnv = { PATH: bin, HOME: work };
}, 150_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('scripts/gpu-kit', () => {
  it('build.sh makes a kit of at most 60 MiB with the expected files, and says its size', () => {
    expect(build.status, build.stderr).toBe(0);
    expect(build.stderr).toMatch(/kit .*: [\d.]+ MiB \(\d+ bytes, limit 60 MiB\)/);
    expect(build.stderr).toMatch(/WITHOUT the reference's sources/);
    for (const f of FILES) expect(existsSync(join(kit, f)), f).toBe(true);
    expect(existsSync(join(kit, 'reference'))).toBe(false);
    expect(statSync(join(kit, 'bin/node.gz')).size).toBeGreaterThan(10 * 2 ** 20);
    expect(du(kit)).toBeLessThanOrEqual(LIMIT);
    const manifest = JSON.parse(readFileSync(join(kit, 'kit.json'), 'utf8'));
    expect(manifest).toMatchObject({ kit: 'liveportrait-gpu-kit', referenceCommit: null });
    expect(manifest.versions.webgpu).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('the bare environment has no node', () => {
    const r = spawnSync('bash', ['-c', 'command -v node || echo none'], { env: bareEnv, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('none');
  });

  it('run.sh rejects bad flags with one line and status 2, before unpacking anything', () => {
    for (const args of [['--bogus'], ['--frames', 'x'], ['--frames'], ['--only', 'Q'], ['--backend', 'wasm'], ['--runs=0'], ['--timeout', '5']]) {
      const r = runKit(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^run\.sh: .*\(usage: bash run\.sh /);
    }
    expect(existsSync(join(kit, '.unpacked'))).toBe(false);
  });

  it('a dry run on the cpu backend ends with one JSON line: S timed, no reference in this kit', () => {
    const r = runKit(['--backend', 'cpu', '--only', 'S', '--frames', '0', '--runs', '1', '--warmup', '1']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(j).toMatchObject({ kit: 'liveportrait-gpu-kit', ok: true, error: null, backend: 'cpu', adapter: null, frame: null, reference: null, ratio: null });
    expect(j.networks.S.ms).toBeGreaterThan(0);
    expect(j.referenceReason).toMatch(/built without the reference/);
    expect(j.versions).toMatchObject({ node: expect.stringMatching(/^v\d+/), tfjs: expect.any(String), webgpu: expect.any(String) });
    expect(r.stderr).toMatch(/\[run\.sh\] unpacking Node and Dawn/);
  }, 90_000);

  it('without a Vulkan driver the JSON line carries the library\'s one-line reason (the kit\'s own loader)', () => {
    const r = runKit(['--only', 'S', '--frames', '0', '--carried-loader'], { VK_DRIVER_FILES: '/nonexistent/icd.json', VK_ICD_FILENAMES: '/nonexistent/icd.json' });
    expect(r.status).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(j.ok).toBe(false);
    expect(j.error).toMatch(/^webgpu: Backend 'webgpu' could not start: no Vulkan driver found/);
    expect(j.error).not.toContain('\n');
    expect(j.host.vulkanLoader).toMatch(/the kit's/);
    expect(j.networks).toEqual({});
    expect(r.stderr).toMatch(/using the unpacked Node and Dawn/);
  }, 90_000);
});
