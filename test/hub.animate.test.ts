// The "done when": a HuggingFace cache laid out as the Python tools
// leave it (blobs/<sha256>, snapshots/<commit>/… relative symlinks,
// refs/main), holding the five official-format checkpoints at their real
// shapes, is used by `liveportrait animate` with no --weights, no network
// (HF_HUB_OFFLINE=1, HF_ENDPOINT a closed port) and no copy. The checkpoints
// hold the synthetic weights of seed 1, and read back from the cache they
// are those bit for bit. (One frame: a frame of G costs about a minute on
// wasm here, so the run is not repeated with --weights synthetic.)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { officialPath } from '../src/models/checkpoints.js';
import { MODULES, syntheticModuleWeights } from '../src/models/registry.js';
import { COMMIT, closedPort } from './helpers/hub_server.js';
import { MEDIA_DIR, describeParity } from './helpers/parity.js';
import { officialFormatPth } from './helpers/pth_writer.js';
import { resolveWeightsSource } from '../src/node/hub.js';
import { loadModuleWeights } from '../src/node/weights.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = ['--import', pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href, join(ROOT, 'src', 'cli', 'main.ts')];

function run(args: string[], cwd: string, env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = spawn(process.execPath, [...CLI, ...args], { cwd, env: { ...process.env, LIVEPORTRAIT_DEBUG: '', LIVEPORTRAIT_WEIGHTS: '', ...env }, timeout: 300_000 });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => ok({ status, stdout, stderr }));
  });
}

/** Every file under `dir` (links as links) with its size: what a run must leave unchanged. */
function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => `${f} ${lstatSync(join(dir, f)).isSymbolicLink() ? 'link' : lstatSync(join(dir, f)).size}`)
    .sort();
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lp-hubanim-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describeParity('animate from a Python-made HuggingFace cache', () => {
  it('no --weights, no network, no copy: the cache is read in place, the synthetic weights bit for bit', async () => {
    // The five checkpoints as torch.save writes them, in the cache's layout.
    const cache = join(tmp, 'hf', 'hub');
    const repo = join(cache, 'models--KwaiVGI--LivePortrait');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(repo, 'refs'));
    writeFileSync(join(repo, 'refs', 'main'), COMMIT);
    for (const m of MODULES) {
      const bytes = officialFormatPth(m, 1);
      const blob = join(repo, 'blobs', createHash('sha256').update(bytes).digest('hex'));
      writeFileSync(blob, bytes);
      const link = join(repo, 'snapshots', COMMIT, officialPath(m));
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(relative(dirname(link), blob), link);
    }
    const before = listing(join(tmp, 'hf'));
    const cwd = join(tmp, 'work');
    mkdirSync(cwd);
    const env = { HF_HOME: join(tmp, 'hf'), HF_HUB_CACHE: '', HF_HUB_OFFLINE: '1', HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` };
    const args = ['animate', '-s', join(MEDIA_DIR, 's0.jpg'), '-d', join(MEDIA_DIR, 'laugh.pkl'), '--max-frames', '1', '--workers', '0', '--no-concat', '-o', 'out'];

    const r = await run(args, cwd, env);
    const snapshot = join(repo, 'snapshots', COMMIT);
    expect(r.stderr, r.stderr).toContain(`liveportrait: weights: human set from the HuggingFace cache (KwaiVGI/LivePortrait@${COMMIT.slice(0, 12)}, read in place) ${snapshot}: F,M,W,G,S .pth\n`);
    expect(r.stderr.match(/liveportrait: weights:/g)).toHaveLength(1);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(join(cwd, 'out')).some((f) => f.endsWith('.mp4'))).toBe(true);
    expect(listing(join(tmp, 'hf'))).toEqual(before); // nothing added, nothing copied
    expect(readdirSync(cwd)).toEqual(['out']); // no ./weights made

    // What the run read: the synthetic weights, bit for bit, through the snapshot's links.
    const src = resolveWeightsSource({ cwd, env: { HF_HOME: join(tmp, 'hf') } });
    expect(src).toMatchObject({ kind: 'hf-cache', dir: snapshot });
    const want = syntheticModuleWeights('spade_generator', 1);
    const got = loadModuleWeights(src.dir, 'spade_generator');
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [k, t] of want) expect(Buffer.from(got.get(k)!.data.buffer, got.get(k)!.data.byteOffset, got.get(k)!.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k).toBe(true);
  });
});
