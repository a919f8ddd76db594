// Weights through @huggingface/hub against a stand-in hub on 127.0.0.1: the
// HuggingFace cache filled as the Python tools fill it, resumed and verified
// downloads, one-line errors (404, 401, unreachable, offline), no request at
// all with HF_HUB_OFFLINE, and the default weights resolution (./weights,
// else the cache) the commands use.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WeightsError } from '../src/errors.js';
import { officialPath } from '../src/models/checkpoints.js';
import { MODULES, type ModuleName } from '../src/models/registry.js';
import { downloadWeights, readSha256Sums, verifyWeights } from '../src/node/download.js';
import { describeWeightsSource, findInHfCache, hubConfig, repoCacheDir, resolveWeightsSource } from '../src/node/hub.js';
import { type FetchProgress, fetchOfficialWeights } from '../src/node/hub_fetch.js';
import { loadModuleWeights } from '../src/node/weights.js';
import { COMMIT, type HubServer, closedPort, sha256Hex, startHubServer } from './helpers/hub_server.js';
import { signaturePth } from './helpers/pth_writer.js';

const ROOT = resolve(import.meta.dirname, '..');
// The CLI from the sources (bin/ prefers a dist/ build, which may be older than them).
const CLI = ['--import', pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href, join(ROOT, 'src', 'cli', 'main.ts')];
const HF_VARS = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'LIVEPORTRAIT_WEIGHTS'];
const saved = Object.fromEntries(HF_VARS.map((k) => [k, process.env[k]]));

let root: string;
let hub: HubServer;
const human = new Map<string, Uint8Array>();
let n = 0;

/** A fresh HF_HOME (an empty cache) and the stand-in hub as HF_ENDPOINT. */
function freshHome(extra: Record<string, string> = {}): string {
  const home = join(root, `home${n++}`);
  for (const k of HF_VARS) delete process.env[k];
  Object.assign(process.env, { HF_HOME: home, HF_ENDPOINT: hub.url, ...extra });
  return home;
}

const snapshotOf = (home: string): string => join(home, 'hub', 'models--KwaiVGI--LivePortrait', 'snapshots', COMMIT);
/** Downloads from the CDN (not the library's `bytes=0-0` probe after the resolve redirect). */
const cdnHits = () => hub.hits.filter((h) => h.path.startsWith('/cdn/') && h.range !== 'bytes=0-0');

function errorLine(e: unknown): string {
  expect(e).toBeInstanceOf(WeightsError);
  const msg = (e as Error).message;
  expect(msg).not.toContain('\n');
  return msg;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'lp-hub-'));
  // Small real-format checkpoints: each module's signature keys, distinct values per module.
  MODULES.forEach((m, i) => human.set(officialPath(m), signaturePth(m, i + 1)));
  hub = await startHubServer(human);
});
afterEach(() => {
  hub.token = undefined;
  hub.cuts.clear();
  hub.corrupt.clear();
});
afterAll(async () => {
  await hub.close();
  for (const k of HF_VARS) if (saved[k] === undefined) delete process.env[k];
  else process.env[k] = saved[k];
  rmSync(root, { recursive: true, force: true });
});

describe('the HuggingFace cache, filled through @huggingface/hub', () => {
  it('reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE and HF_TOKEN as the Python hub does', () => {
    const home = join(root, 'cfg');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, 'token'), 'hf_fromfile\n');
    expect(hubConfig({ HF_HOME: home })).toEqual({ endpoint: 'https://huggingface.co', cacheDir: join(home, 'hub'), offline: false, token: 'hf_fromfile' });
    expect(hubConfig({ HF_HOME: home, HF_HUB_CACHE: '/c', HF_ENDPOINT: 'http://mirror.local/', HF_HUB_OFFLINE: 'yes', HF_TOKEN: 'hf_env' })).toEqual({ endpoint: 'http://mirror.local', cacheDir: '/c', offline: true, token: 'hf_env' });
    expect(hubConfig({ XDG_CACHE_HOME: '/x', HF_HUB_OFFLINE: '0', HF_HUB_CACHE: '' }).cacheDir).toBe('/x/huggingface/hub');
    expect(hubConfig({ HF_HOME: home, HF_HUB_OFFLINE: '0' }).offline).toBe(false);
  });

  it('a full download into an empty cache: blobs by sha256, snapshot symlinks, refs/main; a second run fetches nothing', async () => {
    const home = freshHome();
    hub.hits.length = 0;
    const events: FetchProgress[] = [];
    const res = await fetchOfficialWeights({ onProgress: (p) => events.push({ ...p }) });
    const snap = snapshotOf(home);
    expect(res.root).toBe(snap);
    expect(res.commit).toBe(COMMIT);
    const repo = repoCacheDir(hubConfig());
    expect(repo).toBe(join(home, 'hub', 'models--KwaiVGI--LivePortrait'));
    expect(readFileSync(join(repo, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    for (const [file, bytes] of human) {
      const p = join(snap, file);
      expect(lstatSync(p).isSymbolicLink()).toBe(true);
      expect(resolve(dirname(p), readlinkSync(p))).toBe(join(repo, 'blobs', sha256Hex(bytes)));
      expect(readFileSync(p).equals(Buffer.from(bytes))).toBe(true);
    }
    expect(readdirSync(join(repo, 'blobs')).sort()).toEqual([...human.values()].map(sha256Hex).sort());
    expect(res.files.every((f) => f.downloaded)).toBe(true);
    // What the library asked: the revision, one listing per folder, resolve (302) then the CDN per file.
    expect(hub.hits.filter((h) => h.path.includes('/revision/'))).toHaveLength(1);
    expect(hub.hits.filter((h) => h.path.includes('/tree/')).map((h) => h.path)).toEqual([
      `/api/models/KwaiVGI/LivePortrait/tree/${COMMIT}/liveportrait/base_models`,
      `/api/models/KwaiVGI/LivePortrait/tree/${COMMIT}/liveportrait/retargeting_models`,
    ]);
    expect(hub.hits.filter((h) => h.path.includes('/resolve/'))).toHaveLength(5);
    expect(events.filter((e) => e.phase === 'verified').map((e) => e.module)).toEqual([...MODULES]);
    const last = events.filter((e) => e.phase === 'downloading' && e.module === 'spade_generator').at(-1)!;
    expect(last.received).toBe(last.total);
    // The loader reads the snapshot as a weights folder (official nested layout).
    expect(loadModuleWeights(snap, 'spade_generator').size).toBeGreaterThan(0);

    hub.hits.length = 0;
    const again = await fetchOfficialWeights();
    expect(again.files.every((f) => !f.downloaded)).toBe(true);
    expect(cdnHits()).toEqual([]);
    expect(hub.hits.filter((h) => h.path.includes('/resolve/'))).toEqual([]);
  });

  it('a cut connection is resumed with a Range request from where the .incomplete blob stopped', async () => {
    const home = freshHome();
    const file = officialPath('warping_module');
    const size = human.get(file)!.length;
    hub.cuts.set(file, { after: 40_000, times: 1 });
    hub.hits.length = 0;
    await fetchOfficialWeights({ modules: ['warping_module'] });
    const gets = cdnHits();
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeUndefined();
    const from = Number(gets[1].range?.match(/^bytes=(\d+)-(\d+)$/)?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(40_000);
    expect(gets[1].range).toBe(`bytes=${from}-${size - 1}`);
    expect(readFileSync(join(snapshotOf(home), file)).equals(Buffer.from(human.get(file)!))).toBe(true);
    expect(readdirSync(join(repoCacheDir(), 'blobs')).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
  });

  it('cut with no retries: one line, the bytes kept; the next run resumes them', async () => {
    const home = freshHome();
    const file = officialPath('motion_extractor');
    hub.cuts.set(file, { after: 30_000, times: 1 });
    const e = await fetchOfficialWeights({ modules: ['motion_extractor'], retries: 0 }).catch((x: unknown) => x);
    const msg = errorLine(e);
    expect(msg).toMatch(/^downloading KwaiVGI\/LivePortrait\/liveportrait\/base_models\/motion_extractor\.pth from http:\/\/127\.0\.0\.1:\d+ was cut \(.*\) 1 time\(s\); \d+ bytes kept in .*blobs\/[0-9a-f]{64}\.incomplete, run `liveportrait weights download` again to resume$/);
    const kept = Number(msg.match(/; (\d+) bytes kept/)![1]);
    expect(kept).toBeGreaterThan(0);
    hub.hits.length = 0;
    await fetchOfficialWeights({ modules: ['motion_extractor'], retries: 0 });
    expect(cdnHits().map((h) => h.range)).toEqual([`bytes=${kept}-${human.get(file)!.length - 1}`]);
    expect(readFileSync(join(snapshotOf(home), file)).equals(Buffer.from(human.get(file)!))).toBe(true);
  });

  it('a wrong hash is refused and nothing is left behind', async () => {
    const home = freshHome();
    hub.corrupt.add(officialPath('stitching_retargeting_module'));
    const e = await fetchOfficialWeights({ modules: ['stitching_retargeting_module'] }).catch((x: unknown) => x);
    expect(errorLine(e)).toMatch(/^liveportrait\/retargeting_models\/stitching_retargeting_module\.pth from http:\/\/127\.0\.0\.1:\d+: sha256 mismatch \(expected [0-9a-f]{64}, got [0-9a-f]{64}\); the download was corrupt and has been deleted, run `liveportrait weights download` again$/);
    expect(existsSync(join(home, 'hub'))).toBe(false); // no blob, no .incomplete, no snapshot, no ref, no empty folder
  });

  it('404 and 401: one line each, naming the server and what to do', async () => {
    freshHome();
    const other = await startHubServer(human, 'Someone/Else');
    try {
      process.env.HF_ENDPOINT = other.url;
      const e404 = await fetchOfficialWeights().catch((x: unknown) => x);
      expect(errorLine(e404)).toMatch(/^KwaiVGI\/LivePortrait \(revision main\) not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\); check HF_ENDPOINT/);
    } finally {
      await other.close();
    }
    process.env.HF_ENDPOINT = hub.url;
    hub.token = 'hf_secret';
    const e401 = await fetchOfficialWeights().catch((x: unknown) => x);
    expect(errorLine(e401)).toMatch(/refused KwaiVGI\/LivePortrait \(revision main\) \(HTTP 401, no token\); set HF_TOKEN to a valid token/);
    // HF_TOKEN: sent to the hub (not to the CDN), and the download goes through.
    process.env.HF_TOKEN = 'hf_secret';
    hub.hits.length = 0;
    const ok = await fetchOfficialWeights({ modules: ['appearance_feature_extractor'] });
    expect(ok.files).toHaveLength(1);
    expect(hub.hits.filter((h) => !h.path.startsWith('/cdn/')).every((h) => h.auth === 'Bearer hf_secret')).toBe(true);
  });

  it('an unreachable hub: one line', async () => {
    freshHome({ HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` });
    const e = await fetchOfficialWeights().catch((x: unknown) => x);
    expect(errorLine(e)).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+ \(fetch failed.*\) for KwaiVGI\/LivePortrait \(revision main\); check the connection or HF_ENDPOINT/);
  });

  it('HF_HUB_OFFLINE=1: a complete cache works with no request; an empty one names what is missing and how to get it', async () => {
    const home = freshHome();
    await fetchOfficialWeights();
    process.env.HF_HUB_OFFLINE = '1';
    hub.hits.length = 0;
    const res = await fetchOfficialWeights();
    expect(res.root).toBe(snapshotOf(home));
    expect(res.files).toHaveLength(5);
    expect(resolveWeightsSource({ cwd: root }).dir).toBe(snapshotOf(home));
    expect(hub.hits).toEqual([]);

    freshHome({ HF_HUB_OFFLINE: 'true' });
    const e = await fetchOfficialWeights().catch((x: unknown) => x);
    const msg = errorLine(e);
    expect(msg).toMatch(/^HF_HUB_OFFLINE is set and the HuggingFace cache .*models--KwaiVGI--LivePortrait lacks liveportrait\/base_models\/appearance_feature_extractor\.pth, .*stitching_retargeting_module\.pth; unset HF_HUB_OFFLINE and run `liveportrait weights download`/);
    expect(hub.hits).toEqual([]);
  });

  it('weights download --dir: a plain folder with sha256sums.json, as before, through the library', async () => {
    freshHome();
    const out = join(root, 'plain');
    const modules: ModuleName[] = ['appearance_feature_extractor', 'stitching_retargeting_module'];
    const res = await downloadWeights(out, { modules, convert: false });
    expect(res.files.map((f) => f.path)).toEqual(modules.map((m) => join(out, officialPath(m))));
    for (const m of modules) expect(readFileSync(join(out, officialPath(m))).equals(Buffer.from(human.get(officialPath(m))!))).toBe(true);
    expect(readSha256Sums(out)[officialPath('appearance_feature_extractor')]).toBe(sha256Hex(human.get(officialPath('appearance_feature_extractor'))!));
    expect((await verifyWeights(out, { modules })).ok).toBe(true);
    expect(existsSync(join(process.env.HF_HOME!, 'hub'))).toBe(false); // the cache is not touched
  });
});

/** A cache as `huggingface-cli download KwaiVGI/LivePortrait` leaves it: blobs/<sha256>, snapshots/<commit>/... relative symlinks, refs/main. */
function pythonCache(cacheDir: string, files: Map<string, Uint8Array>, commit = COMMIT): string {
  const repo = join(cacheDir, 'models--KwaiVGI--LivePortrait');
  mkdirSync(join(repo, 'blobs'), { recursive: true });
  mkdirSync(join(repo, 'refs'), { recursive: true });
  writeFileSync(join(repo, 'refs', 'main'), commit);
  for (const [file, bytes] of files) {
    const blob = join(repo, 'blobs', sha256Hex(bytes));
    writeFileSync(blob, bytes);
    const link = join(repo, 'snapshots', commit, file);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), blob), link);
  }
  return join(repo, 'snapshots', commit);
}

describe('which weights the commands use', () => {
  it('--weights and $LIVEPORTRAIT_WEIGHTS win; then ./weights when complete; then the cache; else one line', () => {
    freshHome({ HF_HUB_CACHE: join(root, 'pycache') });
    const snap = pythonCache(join(root, 'pycache'), human);
    const cwd = join(root, 'cwd');
    mkdirSync(join(cwd, 'weights', 'liveportrait', 'base_models'), { recursive: true });
    // ./weights holds only F: the complete cache is used.
    writeFileSync(join(cwd, 'weights', officialPath('appearance_feature_extractor')), human.get(officialPath('appearance_feature_extractor'))!);
    const fromCache = resolveWeightsSource({ cwd });
    expect(fromCache).toMatchObject({ kind: 'hf-cache', dir: snap, commit: COMMIT, missing: [] });
    expect(fromCache.files.motion_extractor!.path).toBe(join(snap, officialPath('motion_extractor')));
    expect(describeWeightsSource(fromCache)).toBe(`weights: human set from the HuggingFace cache (KwaiVGI/LivePortrait@${COMMIT.slice(0, 12)}, read in place) ${snap}: F,M,W,G,S .pth`);
    // Explicit choices win, even incomplete.
    expect(resolveWeightsSource({ cwd, weights: 'weights' })).toMatchObject({ kind: 'dir', origin: '--weights', dir: join(cwd, 'weights'), missing: ['motion_extractor', 'warping_module', 'spade_generator', 'stitching_retargeting_module'] });
    expect(resolveWeightsSource({ cwd, env: { ...process.env, LIVEPORTRAIT_WEIGHTS: '/x/w' } })).toMatchObject({ kind: 'dir', origin: 'LIVEPORTRAIT_WEIGHTS', dir: '/x/w' });
    // ./weights complete: it wins over the cache.
    for (const [file, bytes] of human) {
      mkdirSync(dirname(join(cwd, 'weights', file)), { recursive: true });
      writeFileSync(join(cwd, 'weights', file), bytes);
    }
    expect(resolveWeightsSource({ cwd })).toMatchObject({ kind: 'dir', origin: './weights', dir: join(cwd, 'weights') });
    // Neither: one line naming both places and the commands.
    process.env.HF_HUB_CACHE = join(root, 'nocache');
    const e = (() => {
      try {
        return resolveWeightsSource({ cwd: join(root, 'elsewhere') });
      } catch (x) {
        return x;
      }
    })();
    expect(errorLine(e)).toMatch(/^no human weights found: .*elsewhere\/weights does not exist, and the HuggingFace cache .*nocache\/models--KwaiVGI--LivePortrait has none; get them with `liveportrait weights download`/);
    // The animal set: its own folder, the human S.
    expect(findInHfCache('animal', hubConfig({ HF_HUB_CACHE: join(root, 'pycache') })).missing).toEqual(['appearance_feature_extractor', 'motion_extractor', 'warping_module', 'spade_generator']);
  });

  it('the CLI: weights where; weights download into the cache, with no second download', async () => {
    const home = freshHome();
    const cwd = join(root, 'clicwd');
    mkdirSync(cwd);
    // Asynchronous: the stand-in hub answers from this process.
    const cli = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
        const p = spawn(process.execPath, [...CLI, ...args], { cwd, env: { ...process.env, LIVEPORTRAIT_DEBUG: '' }, timeout: 120_000 });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('close', (status) => ok({ status, stdout, stderr }));
      });
    const none = await cli(['weights', 'where']);
    expect(none.status).toBe(1);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/^liveportrait: error: no human weights found/);

    hub.hits.length = 0;
    const dl = await cli(['weights', 'download', '-q']);
    expect(dl.stderr).toBe('');
    expect(dl.status).toBe(0);
    expect(dl.stdout).toContain(`5 file(s) in the HuggingFace cache ${snapshotOf(home)} (5 downloaded)`);
    expect(cdnHits()).toHaveLength(5);
    const where = await cli(['weights', 'where']);
    expect(where.status).toBe(0);
    const lines = where.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^weights: human set from the HuggingFace cache/);
    expect(lines[3]).toMatch(new RegExp(`^  W warping_module: ${snapshotOf(home)}/liveportrait/base_models/warping_module\\.pth -> .*/blobs/[0-9a-f]{64} \\(pth, \\d+\\.\\d MiB\\)$`));
    expect(lines.at(-1)).toContain(`HuggingFace cache: ${join(home, 'hub', 'models--KwaiVGI--LivePortrait')}; endpoint ${hub.url}`);
    hub.hits.length = 0;
    const again = await cli(['weights', 'download', '-q']);
    expect(again.stdout).toContain('(0 downloaded)');
    expect(cdnHits()).toEqual([]);
  });
});
