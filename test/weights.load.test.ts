import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DownloadProgress, SHA256SUMS, downloadWeights, readSha256Sums, verifyWeights } from '../src/node/download.js';
import { officialPath } from '../src/models/checkpoints.js';
import { WeightsError, convertWeights, findModuleFile, loadModuleWeights, loadWeights } from '../src/node/weights.js';
import { type HostTensor, type StateDict, numel } from '../src/formats/host_tensor.js';
import { describeParity, fixtureStateDict } from './helpers/parity.js';
import { PARITY_DIR } from './helpers/paths.js';
import { sameBits } from './helpers/tensors.js';
import { errorOf } from './helpers/errors.js';
import { type HubServer, startHubServer } from './helpers/hub_server.js';
import { readSafetensors, writeSafetensors } from '../src/node/files.js';
import { MODULES, SIGNATURE_KEYS, type ModuleName } from '../src/models/registry.js';

const FIXTURE_MODULES = ['appearance_feature_extractor', 'stitching_retargeting_module'] as const;
const ckpt = (m: string): string => join(PARITY_DIR, 'checkpoints', `${m}.pth`);

function expectRule(sd: StateDict, module: string, prefix = ''): void {
  const want = fixtureStateDict(module);
  const bad = [...want].filter(([k, t]) => !sameBits(sd.get(prefix + k), t)).map(([k]) => k);
  expect(bad, `${module}: tensors differing from the rule`).toEqual([]);
}

/** A stand-in safetensors file with just a module's signature keys (zeros). */
function writeStub(dir: string, module: ModuleName): void {
  const t = new Map<string, HostTensor>();
  for (const [k, shape] of Object.entries(SIGNATURE_KEYS[module])) t.set(k, { dtype: 'F32', shape, data: new Float32Array(numel(shape)) });
  writeSafetensors(join(dir, `${module}.safetensors`), t);
}

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'lp-weights-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('finding module files', () => {
  it('prefers safetensors, then flat .pth, then the official nested layout; animal set folders', () => {
    const d = join(root, 'find');
    mkdirSync(join(d, 'liveportrait_animals', 'base_models_v1.1'), { recursive: true });
    mkdirSync(join(d, 'liveportrait', 'base_models'), { recursive: true });
    writeFileSync(join(d, 'liveportrait', 'base_models', 'warping_module.pth'), '');
    writeFileSync(join(d, 'liveportrait_animals', 'base_models_v1.1', 'warping_module.pth'), '');
    expect(findModuleFile(d, 'warping_module')).toEqual({ path: join(d, 'liveportrait/base_models/warping_module.pth'), format: 'pth' });
    expect(findModuleFile(d, 'warping_module', { set: 'animal' })).toEqual({ path: join(d, 'liveportrait_animals/base_models_v1.1/warping_module.pth'), format: 'pth' });
    writeFileSync(join(d, 'warping_module.pth'), '');
    expect(findModuleFile(d, 'warping_module')?.path).toBe(join(d, 'warping_module.pth'));
    writeFileSync(join(d, 'warping_module.safetensors'), '');
    expect(findModuleFile(d, 'warping_module')).toEqual({ path: join(d, 'warping_module.safetensors'), format: 'safetensors' });
    expect(findModuleFile(d, 'spade_generator')).toBeUndefined();
  });

  it('official paths of both sets', () => {
    expect(officialPath('motion_extractor')).toBe('liveportrait/base_models/motion_extractor.pth');
    expect(officialPath('motion_extractor', 'animal')).toBe('liveportrait_animals/base_models_v1.1/motion_extractor.pth');
    expect(officialPath('stitching_retargeting_module', 'animal')).toBe('liveportrait/retargeting_models/stitching_retargeting_module.pth');
  });

  it('a missing module names itself, the directory and how to get it', () => {
    const d = join(root, 'empty');
    mkdirSync(d);
    const e = errorOf(() => loadModuleWeights(d, 'spade_generator'));
    expect(e).toBeInstanceOf(WeightsError);
    expect(e.message).toMatch(/^spade_generator weights not found in .*empty: looked for spade_generator\.safetensors, spade_generator\.pth, liveportrait\/base_models\/spade_generator\.pth/);
    expect(e.message).toContain('liveportrait weights download');
    expect(e.message).toContain(join(d, 'liveportrait/base_models/spade_generator.pth'));
    expect(e.message).toContain('weights/README.md');
    expect(errorOf(() => loadWeights(d)).message).toMatch(/^5 modules missing \(appearance_feature_extractor, motion_extractor/);
  });

  it('a corrupt file is named', () => {
    const d = join(root, 'corrupt');
    mkdirSync(d);
    writeFileSync(join(d, 'warping_module.safetensors'), 'garbage!garbage!');
    const e = errorOf(() => loadModuleWeights(d, 'warping_module'));
    expect(e.message).toMatch(/^corrupt weights file: .*warping_module\.safetensors: truncated: header says/);
    writeFileSync(join(d, 'motion_extractor.pth'), 'garbage');
    expect(errorOf(() => loadModuleWeights(d, 'motion_extractor')).message).toMatch(/^corrupt weights file: .*motion_extractor\.pth: not a PyTorch checkpoint: not a zip/);
  });
});

describeParity('loading and converting the reference checkpoints', () => {
  it('loads a mixed directory (official nested .pth + flat safetensors), stitching split in three', () => {
    const d = join(root, 'mixed');
    for (const m of FIXTURE_MODULES) {
      mkdirSync(dirname(join(d, officialPath(m))), { recursive: true });
      copyFileSync(ckpt(m), join(d, officialPath(m)));
    }
    for (const m of ['motion_extractor', 'warping_module', 'spade_generator'] as const) writeStub(d, m);
    const w = loadWeights(d);
    expect(Object.keys(w).sort()).toEqual([...MODULES].sort());
    expectRule(w.appearance_feature_extractor, 'appearance_feature_extractor');
    expect(Object.keys(w.stitching_retargeting_module)).toEqual(['stitching', 'lip', 'eye']);
    expectRule(w.stitching_retargeting_module.stitching, 'stitching_retargeting_module/retarget_shoulder');
    expectRule(w.stitching_retargeting_module.lip, 'stitching_retargeting_module/retarget_mouth');
    expectRule(w.stitching_retargeting_module.eye, 'stitching_retargeting_module/retarget_eye');
    expect(w.stitching_retargeting_module.eye.has('mlp.10.weight')).toBe(true);
    for (const k of Object.keys(SIGNATURE_KEYS.motion_extractor)) expect(w.motion_extractor.has(k)).toBe(true);
    expect(w.motion_extractor.has('detector.fc_exp.weight')).toBe(true);
  });

  it('refuses a checkpoint of another module', () => {
    const d = join(root, 'wrong');
    mkdirSync(d);
    copyFileSync(ckpt('appearance_feature_extractor'), join(d, 'motion_extractor.pth'));
    expect(errorOf(() => loadModuleWeights(d, 'motion_extractor')).message).toMatch(/motion_extractor\.pth: not a motion_extractor checkpoint \(no 'detector\.downsample_layers\.0\.0\.weight'\)/);
  });

  it('converts to safetensors with official keys, bit for bit', () => {
    const src = join(root, 'mixed');
    const out = join(root, 'converted');
    const events: string[] = [];
    const res = convertWeights(src, out, { modules: FIXTURE_MODULES, onProgress: (p) => events.push(`${p.phase}:${p.module}`) });
    expect(res.map((r) => r.module)).toEqual([...FIXTURE_MODULES]);
    expect(events).toEqual(['start:appearance_feature_extractor', 'done:appearance_feature_extractor', 'start:stitching_retargeting_module', 'done:stitching_retargeting_module']);
    expect(readdirSync(out).sort()).toEqual(['appearance_feature_extractor.safetensors', 'stitching_retargeting_module.safetensors']);
    const a = readSafetensors(join(out, 'appearance_feature_extractor.safetensors'));
    expectRule(a.tensors, 'appearance_feature_extractor');
    expect(a.metadata.source).toBe('liveportrait/base_models/appearance_feature_extractor.pth');
    const s = readSafetensors(join(out, 'stitching_retargeting_module.safetensors')).tensors;
    expect([...s.keys()][0]).toBe('retarget_shoulder.mlp.0.weight');
    expectRule(s, 'stitching_retargeting_module/retarget_shoulder', 'retarget_shoulder.');
    expectRule(s, 'stitching_retargeting_module/retarget_mouth', 'retarget_mouth.');
    expectRule(s, 'stitching_retargeting_module/retarget_eye', 'retarget_eye.');
    // The converted stitching file loads through the same split.
    for (const m of ['motion_extractor', 'warping_module', 'spade_generator'] as const) writeStub(out, m);
    expectRule(loadWeights(out).stitching_retargeting_module.lip, 'stitching_retargeting_module/retarget_mouth');
  });

  it('conversion fails before writing when an input is missing', () => {
    const out = join(root, 'convert-missing');
    const e = errorOf(() => convertWeights(join(root, 'mixed'), out));
    expect(e.message).toMatch(/^motion_extractor weights not found in .*mixed: looked for motion_extractor\.pth, liveportrait\/base_models\/motion_extractor\.pth/);
    expect(existsSync(out)).toBe(false);
  });

  it('the convert script exits non-zero with a clear message', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/convert/convert.ts', join(root, 'mixed'), join(root, 'cli-out')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^convert: motion_extractor weights not found/);
  });
});

// ---- Download from a local stand-in for huggingface.co.

describeParity('downloading into a folder from a stand-in hub', () => {
  let hub: HubServer;
  let baseUrl: string;
  const bytesOf = (m: string): Buffer => readFileSync(ckpt(m));
  const sha = (m: string): string => createHash('sha256').update(bytesOf(m)).digest('hex');
  /** Downloads from the CDN (not the library's `bytes=0-0` probe after the resolve redirect). */
  const gets = (m: string) => hub.hits.filter((h) => h.path === `/cdn/${sha(m)}` && h.range !== 'bytes=0-0');

  beforeAll(async () => {
    hub = await startHubServer(new Map(FIXTURE_MODULES.map((m) => [officialPath(m), new Uint8Array(bytesOf(m))])));
    baseUrl = hub.url;
  });
  afterAll(() => hub.close());

  const aPath = officialPath('appearance_feature_extractor');

  it('downloads, resumes after a cut, verifies sha256, records it, converts, reports progress', async () => {
    const out = join(root, 'dl');
    hub.cuts.set(aPath, { after: 1_000_000, times: 1 });
    hub.hits.length = 0;
    const events: DownloadProgress[] = [];
    const res = await downloadWeights(out, { baseUrl, modules: FIXTURE_MODULES, onProgress: (p) => events.push({ ...p }) });
    // One cut, then a ranged request from where the part file stopped.
    const got = gets('appearance_feature_extractor');
    expect(got.length).toBe(2);
    expect(got[0].range).toBeUndefined();
    // Resumed from where the part file stopped: after some of the bytes sent
    // before the cut (fetch may drop chunks still queued when the body errors).
    const resumedAt = Number(got[1].range?.match(/^bytes=(\d+)-\d+$/)?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_000_000);
    expect(readFileSync(join(out, aPath)).equals(bytesOf('appearance_feature_extractor'))).toBe(true);
    expect(existsSync(join(out, `${aPath}.part`))).toBe(false);
    expect(res.files.map((f) => f.downloaded)).toEqual([true, true]);
    const sums = readSha256Sums(out);
    expect(sums[aPath]).toBe(sha('appearance_feature_extractor'));
    expect(Object.keys(sums).sort()).toEqual(['appearance_feature_extractor.safetensors', aPath, officialPath('stitching_retargeting_module'), 'stitching_retargeting_module.safetensors'].sort());
    // Progress: monotone within a download, complete at the end.
    const dl = events.filter((e) => e.file === aPath && e.phase === 'downloading');
    expect(dl.at(-1)!.received).toBe(bytesOf('appearance_feature_extractor').length);
    expect(dl.some((e) => e.received === resumedAt)).toBe(true);
    expect(dl.every((e) => e.total === bytesOf('appearance_feature_extractor').length)).toBe(true);
    expect(events.filter((e) => e.phase === 'verified').map((e) => e.module)).toEqual([...FIXTURE_MODULES]);
    expect(events.filter((e) => e.phase === 'converted').map((e) => e.module)).toEqual([...FIXTURE_MODULES]);
    expectRule(readSafetensors(join(out, 'appearance_feature_extractor.safetensors')).tensors, 'appearance_feature_extractor');

    // A second run downloads nothing.
    hub.hits.length = 0;
    const again: DownloadProgress[] = [];
    await downloadWeights(out, { baseUrl, modules: FIXTURE_MODULES, onProgress: (p) => again.push(p) });
    expect(hub.hits.filter((l) => l.path.includes('/resolve/') || l.path.startsWith('/cdn/'))).toEqual([]);
    expect(again.filter((e) => e.phase === 'skipped').length).toBe(2);

    const v = await verifyWeights(out, { modules: FIXTURE_MODULES });
    expect(v.ok).toBe(true);
    expect(v.modules.map((m) => m.sha256)).toEqual(['ok', 'ok']);
  });

  it('keeps the part file when cut without retries, and resumes on the next call', async () => {
    const out = join(root, 'dl-cut');
    hub.cuts.set(aPath, { after: 500_000, times: 1 });
    const e = await downloadWeights(out, { baseUrl, modules: ['appearance_feature_extractor'], retries: 0, convert: false }).catch((x: Error) => x);
    expect(e).toBeInstanceOf(WeightsError);
    expect((e as Error).message).toMatch(/was cut .* (\d+) bytes kept in .*appearance_feature_extractor\.pth\.part, run `liveportrait weights download --dir .*dl-cut` again to resume/);
    const kept = Number((e as Error).message.match(/ (\d+) bytes kept/)![1]);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(500_000);
    hub.hits.length = 0;
    await downloadWeights(out, { baseUrl, modules: ['appearance_feature_extractor'], retries: 0, convert: false });
    expect(gets('appearance_feature_extractor').map((l) => l.range)).toEqual([`bytes=${kept}-${bytesOf('appearance_feature_extractor').length - 1}`]);
    expect(readFileSync(join(out, aPath)).equals(bytesOf('appearance_feature_extractor'))).toBe(true);
  });

  it('detects a sha256 mismatch and deletes the bad download', async () => {
    const out = join(root, 'dl-sha');
    hub.corrupt.add(officialPath('stitching_retargeting_module'));
    try {
      const e = await downloadWeights(out, { baseUrl, modules: ['stitching_retargeting_module'] }).catch((x: Error) => x);
      expect((e as Error).message).toMatch(new RegExp(`stitching_retargeting_module\\.pth from .*: sha256 mismatch \\(expected ${sha('stitching_retargeting_module')}, got [0-9a-f]{64}\\)`));
      expect(existsSync(join(out, `${officialPath('stitching_retargeting_module')}.part`))).toBe(false);
      expect(existsSync(join(out, officialPath('stitching_retargeting_module')))).toBe(false);
      expect(existsSync(out)).toBe(false); // nothing left, not even the folder made for it
    } finally {
      hub.corrupt.clear();
    }
  });

  it('verifyWeights reports a changed file, a missing module and a wrong one', async () => {
    const out = join(root, 'dl');
    const st = join(out, 'stitching_retargeting_module.safetensors');
    const bytes = readFileSync(st);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(st, bytes);
    const v = await verifyWeights(out);
    expect(v.ok).toBe(false);
    const by = Object.fromEntries(v.modules.map((m) => [m.module, m]));
    expect(by.appearance_feature_extractor.ok).toBe(true);
    expect(by.stitching_retargeting_module.sha256).toBe('mismatch');
    expect(by.stitching_retargeting_module.problems[0]).toMatch(/sha256 differs from sha256sums\.json/);
    expect(by.motion_extractor.problems[0]).toMatch(/^not found \(motion_extractor\.safetensors or liveportrait\/base_models\/motion_extractor\.pth\)/);
    const spec = await verifyWeights(out, { modules: ['appearance_feature_extractor'], specs: { appearance_feature_extractor: [{ key: 'first.conv.weight', shape: [64, 3, 3, 3] }, { key: 'no.such.key', shape: [1] }] } });
    expect(spec.modules[0].problems).toEqual(["missing key 'no.such.key'"]);
    expect(SHA256SUMS).toBe('sha256sums.json');
  });

  it('offline: says which files to put where and how to convert', async () => {
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as { port: number }).port;
    await new Promise((ok) => closed.close(ok));
    const out = join(root, 'dl-offline');
    const e = await downloadWeights(out, { baseUrl: `http://127.0.0.1:${port}` }).catch((x: Error) => x);
    expect(e).toBeInstanceOf(WeightsError);
    const msg = (e as Error).message;
    expect(msg).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+ \(fetch failed: ECONNREFUSED\)/);
    for (const m of MODULES) expect(msg).toContain(join(out, officialPath(m)));
    expect(msg).toContain(`/KwaiVGI/LivePortrait/resolve/main/liveportrait/base_models/spade_generator.pth → ${join(out, 'liveportrait/base_models/spade_generator.pth')}`);
    expect(msg).toContain(`liveportrait weights convert --from ${out} --dir ${out}`);
    expect(existsSync(out)).toBe(false); // the folder made for the download is gone again
    expect(msg).not.toContain('\n');
  });
});
