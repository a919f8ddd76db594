// The parity kit's comparer (`liveportrait parity`, src/parity): on the
// shared fixtures everything passes; a tensor perturbed by 1e-2 fails by
// name; taps we do not expose are "not compared"; broken files give one line.
// The big networks (F, W, G) run once, in process, on a temp copy of the
// shared files with extra taps added; the CLI runs only the small modules.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostTensor, f32, toFloat32 } from '../src/formats/host_tensor.js';
import { readSafetensors, writeSafetensors } from '../src/node/files.js';
import { fixtureWeights, openFixtureDir } from '../src/node/parity.js';
import { FIXTURE_INPUTS, compareParity, parseSlice, parseTapName, type ParityReport, type ParityRow } from '../src/parity/index.js';
import { describeParity } from './helpers/parity.js';
import { PARITY_DIR } from './helpers/paths.js';
import { cli as run, errorLines } from './helpers/cli.js';


/** The outputs and taps of a shared fixture file. */
function outputsOf(stem: string): string[] {
  return [...readSafetensors(join(PARITY_DIR, `${stem}.safetensors`)).tensors.keys()].filter((k) => !FIXTURE_INPUTS[stem].includes(k));
}

const cli = (args: string[]) => run(['parity', ...args], { timeoutMs: 300_000 });

/** A fixture dir holding the manifest, explicit weights and the given files (copied or replaced). */
function makeFixture(root: string, name: string, files: Record<string, { tensors: Map<string, HostTensor>; metadata: Record<string, string> } | 'copy'>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  for (const f of ['weights_manifest.json', 'explicit_weights.safetensors']) copyFileSync(join(PARITY_DIR, f), join(dir, f));
  for (const [stem, content] of Object.entries(files)) {
    if (content === 'copy') copyFileSync(join(PARITY_DIR, `${stem}.safetensors`), join(dir, `${stem}.safetensors`));
    else writeSafetensors(join(dir, `${stem}.safetensors`), content.tensors, content.metadata);
  }
  return dir;
}

describe('tap names and slices', () => {
  it('splits path, call and items the way dump.py writes them', () => {
    expect(parseTapName('tap/dense_motion_network.hourglass')).toEqual({ path: 'dense_motion_network.hourglass', call: 0, multiCall: false, item: '' });
    expect(parseTapName('tap/up#1')).toEqual({ path: 'up', call: 1, multiCall: true, item: '' });
    expect(parseTapName('tap/dense_motion_network.hourglass.encoder#0/3')).toMatchObject({ call: 0, item: '/3' });
    expect(parseTapName('tap//out')).toMatchObject({ path: '', item: '/out' });
    expect(parseTapName('output')).toBeUndefined();
    expect(parseSlice('[:, :, ::4, ::4, ::4]')).toEqual([1, 1, 4, 4, 4]);
    expect(parseSlice(undefined)).toBeUndefined();
  });
});

describeParity('parity comparer in process: F, W, G and the pipeline keypoints on the shared fixtures (+ taps)', () => {
  let tmp: string;
  let report: ParityReport;
  const added = { hourglass: 'tap/dense_motion_network.hourglass', compress: 'tap/dense_motion_network.compress', gMid: 'tap/G_middle_0', unknown: 'tap/dense_motion_network.hourglass.decoder.norm' };
  const row = (module: string, tensor: string): ParityRow | undefined => report.rows.find((r) => r.module === module && r.tensor === tensor);

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'lp-parity-'));
    // The shared W and G files plus taps made from their fixed tensors
    // (hourglass_out_sub is the hourglass tap with a stride-4 slice, ...),
    // and a tap of a submodule our port folds away (BatchNorm into the conv).
    const w = readSafetensors(join(PARITY_DIR, 'warping_module.safetensors'));
    const g = readSafetensors(join(PARITY_DIR, 'spade_generator.safetensors'));
    const meta = (path: string, t: HostTensor, slice?: string) => JSON.stringify({ module: 'x', path, full_shape: t.shape, ...(slice ? { slice } : {}) });
    const hg = w.tensors.get('hourglass_out_sub')!;
    w.tensors.set(added.hourglass, hg);
    w.metadata[added.hourglass] = meta('dense_motion_network.hourglass', hg, '[:, :, ::4, ::4, ::4]');
    w.tensors.set(added.compress, w.tensors.get('compress_out')!);
    w.tensors.set(added.unknown, hg);
    w.metadata[added.unknown] = meta('dense_motion_network.hourglass.decoder.norm', hg);
    const mid = g.tensors.get('G_middle_0_out_sub')!;
    g.tensors.set(added.gMid, mid);
    g.metadata[added.gMid] = meta('G_middle_0', mid, '[:, :, ::2, ::2]');
    const dir = makeFixture(tmp, 'big', { appearance_feature_extractor: 'copy', warping_module: w, spade_generator: g, motion_extractor: 'copy', stitching_retargeting_module: 'copy', pipeline: 'copy' });
    const t0 = performance.now();
    report = await compareParity(openFixtureDir(dir), fixtureWeights(dir), { modules: ['F', 'W', 'G', 'pipeline'], renderFrames: false });
    console.log(`parity in process (${report.backend}): ${((performance.now() - t0) / 1000).toFixed(1)} s`, report.seconds);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('gives one row per output and tap of each file, every output of the shared fixture passing', () => {
    for (const stem of ['appearance_feature_extractor', 'warping_module', 'spade_generator']) {
      const names = outputsOf(stem);
      expect(names.length).toBeGreaterThan(0);
      for (const n of names) expect(row(stem, n), `${stem} ${n}`).toMatchObject({ status: 'pass' });
    }
    const extra = Object.values(added).length;
    const total = ['appearance_feature_extractor', 'warping_module', 'spade_generator', 'pipeline'].reduce((n, s) => n + outputsOf(s).length, 0) + extra;
    expect(report.rows).toHaveLength(total);
  });

  it('compares taps by submodule path, strided as their slice says', () => {
    for (const [m, t] of [['warping_module', added.hourglass], ['warping_module', added.compress], ['spade_generator', added.gMid]]) expect(row(m, t), t).toMatchObject({ status: 'pass' });
    // The stride-4 hourglass tap is the same comparison as hourglass_out_sub.
    expect(row('warping_module', added.hourglass)!.maxAbs).toBe(row('warping_module', 'hourglass_out_sub')!.maxAbs);
  });

  it('lists a tap our port does not expose as not compared, naming it', () => {
    const r = row('warping_module', added.unknown)!;
    expect(r.status).toBe('not compared');
    expect(r.note).toContain('dense_motion_network.hourglass.decoder.norm');
    expect(report.ok).toBe(true);
  });

  it('pipeline: x_d of every option set passes; frames are not compared unless asked, with the reason', () => {
    const names = outputsOf('pipeline');
    for (const n of names.filter((x) => x.endsWith('/x_d'))) expect(row('pipeline', n)).toMatchObject({ status: 'pass' });
    const frames = names.filter((x) => x.endsWith('/frames'));
    expect(frames.length).toBeGreaterThan(0);
    for (const n of frames) expect(row('pipeline', n)).toMatchObject({ status: 'not compared', note: expect.stringContaining('--modules pipeline') });
  });
});

describeParity('liveportrait parity (CLI) on the small modules', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'lp-parity-cli-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const SMALL = ['motion_extractor', 'stitching_retargeting_module', 'camera', 'ops'];

  it('passes on the shared fixtures, one JSON row per output', () => {
    const r = cli(['--fixtures', PARITY_DIR, '--modules', 'M,S,camera,ops', '--json', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as ParityReport;
    const expected = SMALL.flatMap((s) => outputsOf(s).map((t) => `${s} ${t}`));
    expect(report.rows.map((x) => `${x.module} ${x.tensor}`).sort()).toEqual(expected.sort());
    expect(report.rows.every((x) => x.status === 'pass')).toBe(true);
    expect(report.ok).toBe(true);
  });

  it('fails on a tensor perturbed by 1e-2, naming it; an unknown tap is not compared', () => {
    const s = readSafetensors(join(PARITY_DIR, 'stitching_retargeting_module.safetensors'));
    const victim = outputsOf('stitching_retargeting_module')[1];
    const t = s.tensors.get(victim)!;
    const data = toFloat32(t).slice();
    data[data.length >> 1] += 1e-2;
    s.tensors.set(victim, f32(t.shape, data));
    s.tensors.set('tap/stitching.mlp.0', f32([1], Float32Array.of(0)));
    const dir = makeFixture(tmp, 'perturbed', { stitching_retargeting_module: s });
    const r = cli(['--fixtures', dir, '-q']);
    expect(r.code).toBe(1);
    const lines = errorLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`stitching_retargeting_module ${victim}`);
    expect(lines[0]).toMatch(/1 of \d+ tensors failed/);
    const tableRow = (name: string) => r.stdout.split('\n').find((l) => l.split(/\s{2,}/)[1] === name) ?? '';
    expect(tableRow(victim)).toMatch(/\bfail\b/);
    expect(tableRow('tap/stitching.mlp.0')).toMatch(/not compared: our stitching_retargeting_module exposes no taps/);
  });

  it('a truncated or malformed safetensors file: one line naming the file', () => {
    const bytes = readFileSync(join(PARITY_DIR, 'camera.safetensors'));
    const cut = makeFixture(tmp, 'truncated', {});
    writeFileSync(join(cut, 'camera.safetensors'), bytes.subarray(0, bytes.length - 100));
    let r = cli(['--fixtures', cut, '-q']);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/camera\.safetensors.*truncated/);
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const bad = makeFixture(tmp, 'malformed', {});
    writeFileSync(join(bad, 'ops.safetensors'), Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{oops')]));
    r = cli(['--fixtures', bad, '-q']);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/ops\.safetensors: malformed header/);
  });

  it('no manifest, or a missing input: one line with the fix', () => {
    const dir = join(tmp, 'nomanifest');
    mkdirSync(dir);
    copyFileSync(join(PARITY_DIR, 'ops.safetensors'), join(dir, 'ops.safetensors'));
    let r = cli(['--fixtures', dir, '-q']);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/has no weights_manifest\.json.*copy the weights_manifest\.json/);

    const s = readSafetensors(join(PARITY_DIR, 'stitching_retargeting_module.safetensors'));
    s.tensors.delete('eye_ratio');
    const noInput = makeFixture(tmp, 'noinput', { stitching_retargeting_module: s });
    r = cli(['--fixtures', noInput, '-q']);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(errorLines(r.stderr)[0]).toMatch(/input missing: no 'eye_ratio' in stitching_retargeting_module\.safetensors; dump the fixture again/);
  });
});
