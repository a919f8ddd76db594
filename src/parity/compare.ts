/**
 * The parity comparer: our networks on a reference dump's inputs, every
 * output and tap of the dump compared with ours (max abs and relative error
 * against the tolerance table). Nothing in a dump is skipped silently: a
 * tensor we do not compute is a row with status 'not compared' and the reason.
 *
 * Everything here works on parsed tensors (ParityFixture, ParityWeights);
 * reading a directory is src/node/parity.ts.
 */
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../formats/host_tensor.js';
import { gridSample3d } from '../layers/grid_sample3d.js';
import { TapRecorder } from '../layers/taps.js';
import { getRotationMatrix, headposeBinsToDegree, type KpInfo, transformKeypoint } from '../motion/camera.js';
import { createNetwork, createStitching, type NetworkName, type LivePortraitNets } from '../models/registry.js';
import type { StitchingRetargetingModule } from '../models/stitching_retargeting_module.js';
import type { WarpingModule } from '../models/warping_module.js';
import type { SpadeGenerator } from '../models/spade_generator.js';
import { LivePortrait, prepareImage } from '../pipeline/live_portrait.js';
import { disposeSourceKeypoints } from '../motion/transfer.js';
import { FIXED_OUTPUTS, FIXTURE_INPUTS, hostToTensor, PARITY_MODULES, pipelineOptionSets, TAPPED, TO_NCDHW, TO_NDHWC, TO_NHWC, toOptions, withRatios } from './cases.js';
import { type FixtureFile, FixtureError, type ParityFixture, type ParityWeights, parseSlice, parseTapName, tapMetadata } from './fixture.js';
import { checkTensor, compareFrames, type ParityRow } from './judge.js';

export type { ParityRow, RowStatus } from './judge.js';

export interface ParityReport {
  fixture: string;
  weights: string;
  backend: string;
  rows: ParityRow[];
  /** Seconds per module. */
  seconds: Record<string, number>;
  /** No row failed. */
  ok: boolean;
}

export interface CompareOptions {
  /** Modules by alias (F, M, W, G, S, camera, ops, pipeline) or file stem; default every one the fixture has. */
  modules?: string[];
  /**
   * Render the pipeline's frames (W and G per frame: minutes on one CPU
   * core). Default: only when `modules` names the pipeline.
   */
  renderFrames?: boolean;
  /** Called after each module with its rows (for progress output). */
  onModule?: (stem: string, rows: ParityRow[], seconds: number) => void;
}

/** Resolve --modules names to the fixture's stems, in run order. */
export function selectModules(fixture: ParityFixture, names?: string[]): string[] {
  if (!names?.length || names.includes('all')) return PARITY_MODULES.map((m) => m.stem).filter((s) => fixture.stems.includes(s));
  const wanted = new Set<string>();
  for (const n of names) {
    const m = PARITY_MODULES.find((x) => x.alias === n || x.stem === n || x.alias.toLowerCase() === n.toLowerCase());
    if (!m) throw new FixtureError(`unknown module '${n}' in --modules; use some of ${PARITY_MODULES.map((x) => x.alias).join(', ')} (or their file names)`);
    if (!fixture.stems.includes(m.stem)) throw new FixtureError(`${fixture.location} has no ${m.stem}.safetensors (asked for by --modules ${n}); dump it with tools/reference/dump.py --modules ${m.alias}`);
    wanted.add(m.stem);
  }
  return PARITY_MODULES.map((m) => m.stem).filter((s) => wanted.has(s));
}

/** Compare the fixture's modules with ours. */
export async function compareParity(fixture: ParityFixture, weights: ParityWeights, opts: CompareOptions = {}): Promise<ParityReport> {
  const stems = selectModules(fixture, opts.modules);
  const renderFrames = opts.renderFrames ?? !!opts.modules?.some((n) => n === 'pipeline');
  const run = new Run(fixture, weights);
  const rows: ParityRow[] = [];
  const seconds: Record<string, number> = {};
  try {
    for (const stem of stems) {
      const t0 = performance.now();
      const mine = await run.module(stem, renderFrames);
      seconds[stem] = (performance.now() - t0) / 1000;
      rows.push(...mine);
      opts.onModule?.(stem, mine, seconds[stem]);
    }
  } finally {
    run.dispose();
  }
  return { fixture: fixture.location, weights: weights.source, backend: tf.getBackend(), rows, seconds, ok: rows.every((r) => r.status !== 'fail') };
}

class Run {
  private readonly nets = new Map<string, { dispose(): void }>();

  constructor(
    readonly fixture: ParityFixture,
    readonly weights: ParityWeights,
  ) {}

  private file(stem: string): FixtureFile {
    return this.fixture.file(stem);
  }

  private net<T extends { dispose(): void }>(name: NetworkName | 'stitching_retargeting_module'): T {
    let n = this.nets.get(name);
    if (!n) {
      n = name === 'stitching_retargeting_module' ? createStitching(this.weights.stitching(), this.weights.source) : createNetwork(name, this.weights.network(name), this.weights.source);
      this.nets.set(name, n);
    }
    return n as T;
  }

  /** An input tensor (from `stem`, or the first of `alternatives` that has it); missing: one line with the fix. */
  private input(stem: string, name: string, perm?: number[], alternatives: [string, string][] = [], fix?: string): tf.Tensor {
    const candidates: [string, string][] = [[stem, name], ...alternatives];
    for (const [s, n] of candidates) {
      if (!this.fixture.stems.includes(s)) continue;
      const t = this.file(s).tensors.get(n);
      if (t) return hostToTensor(t, perm);
    }
    const where = candidates.map(([s, n]) => `'${n}' in ${s}.safetensors`).join(' or ');
    throw new FixtureError(`${this.fixture.location}: input missing: no ${where}; ${fix ?? 'dump the fixture again with tools/reference/dump.py (it stores every input)'}`);
  }

  private ref(stem: string, name: string): HostTensor {
    const t = this.file(stem).tensors.get(name);
    if (!t) throw new FixtureError(`${stem}.safetensors has no '${name}'`);
    return t;
  }

  /** Compare ours (PyTorch layout) with the dump's `name` in `stem`. */
  private async check(stem: string, name: string, ours: tf.Tensor, strides?: number[]): Promise<ParityRow> {
    const ref = this.ref(stem, name);
    return checkTensor(stem, name, ours, ref, strides);
  }

  async module(stem: string, renderFrames: boolean): Promise<ParityRow[]> {
    const rows = await this.runModule(stem, renderFrames);
    // Every other tensor of the file: a 'not compared' row, never silence.
    const done = new Set(rows.map((r) => r.tensor));
    const inputs = new Set(FIXTURE_INPUTS[stem] ?? []);
    const file = this.file(stem);
    for (const [name, t] of file.tensors) {
      if (done.has(name) || inputs.has(name)) continue;
      const tap = parseTapName(name);
      const note = tap && !TAPPED.has(stem) ? `our ${stem} exposes no taps` : tap ? 'unrecognised tap name' : 'no counterpart in our port';
      rows.push({ module: stem, tensor: name, shape: t.shape, status: 'not compared', note });
    }
    const order = [...file.tensors.keys()];
    return rows.sort((a, b) => order.indexOf(a.tensor) - order.indexOf(b.tensor));
  }

  private async runModule(stem: string, renderFrames: boolean): Promise<ParityRow[]> {
    switch (stem) {
      case 'appearance_feature_extractor':
        return this.runF();
      case 'motion_extractor':
        return this.runM();
      case 'warping_module':
        return this.runW();
      case 'spade_generator':
        return this.runG();
      case 'stitching_retargeting_module':
        return this.runS();
      case 'camera':
        return this.runCamera();
      case 'ops':
        return this.runOps();
      case 'pipeline':
        return this.runPipeline(renderFrames);
      default:
        return [];
    }
  }

  private async runF(): Promise<ParityRow[]> {
    const F = this.net<LivePortraitNets['F']>('appearance_feature_extractor');
    const x = this.input('appearance_feature_extractor', 'input', TO_NHWC) as tf.Tensor4D;
    const out = F.apply(x);
    const ours = tf.transpose(out, TO_NCDHW);
    try {
      return [await this.check('appearance_feature_extractor', 'output', ours)];
    } finally {
      tf.dispose([x, out, ours]);
    }
  }

  private async runM(): Promise<ParityRow[]> {
    const M = this.net<LivePortraitNets['M']>('motion_extractor');
    const x = this.input('motion_extractor', 'input', TO_NHWC) as tf.Tensor4D;
    const out = M.apply(x);
    try {
      const file = this.file('motion_extractor');
      const rows: ParityRow[] = [];
      for (const [k, v] of Object.entries(out)) if (file.tensors.has(k)) rows.push(await this.check('motion_extractor', k, v));
      return rows;
    } finally {
      tf.dispose([x, ...Object.values(out)]);
    }
  }

  /** W or G through a TapRecorder: the fixed names and every `tap/...` of the file. */
  private async tapped(stem: string, forward: (rec: TapRecorder) => void): Promise<ParityRow[]> {
    const file = this.file(stem);
    const fixed = Object.entries(FIXED_OUTPUTS[stem]).filter(([name]) => file.tensors.has(name));
    const taps = [...file.tensors.keys()].flatMap((name) => {
      const p = parseTapName(name);
      return p ? [{ name, ...p, key: p.path + p.item }] : [];
    });
    const rec = new TapRecorder([...fixed.map(([, n]) => n.path), ...taps.map((t) => t.key)]);
    try {
      forward(rec);
      const rows: ParityRow[] = [];
      for (const [name, n] of fixed) {
        const [t] = rec.calls(n.path);
        if (!t) rows.push({ module: stem, tensor: name, shape: this.ref(stem, name).shape, status: 'fail' as const, note: `our port did not offer '${n.path}'` });
        else rows.push(await this.check(stem, name, t, n.strides));
      }
      for (const t of taps) {
        const ref = this.ref(stem, t.name);
        if (!rec.offered.has(t.key)) {
          rows.push({ module: stem, tensor: t.name, shape: ref.shape, status: 'not compared', note: `our port does not expose '${t.key}'` });
          continue;
        }
        const calls = rec.calls(t.key);
        const ours = t.multiCall ? calls[t.call] : calls.length === 1 ? calls[0] : undefined;
        if (!ours) {
          const note = t.multiCall ? `call #${t.call} of '${t.key}': ours ran ${calls.length} times` : `'${t.key}' ran ${calls.length} times here, once in the reference`;
          rows.push({ module: stem, tensor: t.name, shape: ref.shape, status: 'fail', note });
          continue;
        }
        rows.push(await this.check(stem, t.name, ours, parseSlice(tapMetadata(file, t.name)?.slice)));
      }
      return rows;
    } finally {
      rec.dispose();
    }
  }

  private async runW(): Promise<ParityRow[]> {
    const W = this.net<WarpingModule>('warping_module');
    const feature = this.input('warping_module', 'feature_3d', TO_NDHWC, [['appearance_feature_extractor', 'output']], 'dump W with --embed-inputs, or together with F (--modules F,W)') as tf.Tensor5D;
    const kps = this.input('warping_module', 'kp_source') as tf.Tensor3D;
    const kpd = this.input('warping_module', 'kp_driving') as tf.Tensor3D;
    try {
      return await this.tapped('warping_module', (rec) => {
        const r = W.applyWithTaps(feature, kps, kpd, rec.tap);
        tf.dispose(Object.values(r));
      });
    } finally {
      tf.dispose([feature, kps, kpd]);
    }
  }

  private async runG(): Promise<ParityRow[]> {
    const G = this.net<SpadeGenerator>('spade_generator');
    const x = this.input('spade_generator', 'input', TO_NHWC, [['warping_module', 'out']], 'dump G with --embed-inputs, or together with W (--modules W,G)') as tf.Tensor4D;
    try {
      return await this.tapped('spade_generator', (rec) => {
        const r = G.applyWithTaps(x, rec.tap);
        tf.dispose(Object.values(r));
      });
    } finally {
      x.dispose();
    }
  }

  private async runS(): Promise<ParityRow[]> {
    const S = this.net<StitchingRetargetingModule>('stitching_retargeting_module');
    const stem = 'stitching_retargeting_module';
    const kpS = this.input(stem, 'kp_source') as tf.Tensor3D;
    const kpD = this.input(stem, 'kp_driving') as tf.Tensor3D;
    const eye = this.input(stem, 'eye_ratio') as tf.Tensor2D;
    const lip = this.input(stem, 'lip_ratio') as tf.Tensor2D;
    const outs: Record<string, tf.Tensor> = {
      stitch_delta: S.stitchDelta(kpS, kpD),
      stitched_kp_driving: S.stitching(kpS, kpD),
      eye_delta: S.retargetEye(kpS, eye),
      lip_delta: S.retargetLip(kpS, lip),
    };
    try {
      const rows: ParityRow[] = [];
      for (const [k, v] of Object.entries(outs)) rows.push(await this.check(stem, k, v));
      return rows;
    } finally {
      tf.dispose([kpS, kpD, eye, lip, ...Object.values(outs)]);
    }
  }

  private async runCamera(): Promise<ParityRow[]> {
    const owned: tf.Tensor[] = [];
    const get = (k: string) => {
      const t = this.input('camera', k);
      owned.push(t);
      return t;
    };
    try {
      const deg = await headposeBinsToDegree(get('bins') as tf.Tensor2D);
      const [p, y, r] = tf.split(get('pyr_degrees'), 3, 1);
      const R = getRotationMatrix(p, y, r);
      const info = Object.fromEntries(['pitch', 'yaw', 'roll', 't', 'exp', 'scale', 'kp'].map((k) => [k, get(`x_s_info_${k}`)])) as unknown as KpInfo;
      const xs = transformKeypoint(info);
      owned.push(deg, p, y, r, R, xs);
      return [await this.check('camera', 'degree', deg), await this.check('camera', 'rotation', R), await this.check('camera', 'x_s', xs)];
    } finally {
      tf.dispose(owned);
    }
  }

  private async runOps(): Promise<ParityRow[]> {
    const input = this.input('ops', 'grid_sample_input', TO_NDHWC) as tf.Tensor5D;
    const grid = this.input('ops', 'grid_sample_grid') as tf.Tensor5D;
    const out = tf.tidy(() => tf.transpose(gridSample3d(input, grid), TO_NCDHW));
    try {
      return [await this.check('ops', 'grid_sample_output', out)];
    } finally {
      tf.dispose([input, grid, out]);
    }
  }

  /**
   * The pipeline file: x_d of every option set (M and S); the frames (F, W,
   * G per frame) only when asked, else 'not compared' with the reason.
   */
  private async runPipeline(renderFrames: boolean): Promise<ParityRow[]> {
    const stem = 'pipeline';
    const file = this.file(stem);
    const sets = pipelineOptionSets(file);
    const unused = { apply: () => { throw new Error('not used for x_d'); }, dispose: () => undefined };
    const nets: LivePortraitNets = {
      F: renderFrames ? this.net('appearance_feature_extractor') : unused,
      M: this.net('motion_extractor'),
      W: renderFrames ? this.net('warping_module') : unused,
      G: renderFrames ? this.net('spade_generator') : unused,
      S: this.net('stitching_retargeting_module'),
    };
    const lp = new LivePortrait(nets);
    const s = this.input(stem, 'source_rgb256');
    const d = this.input(stem, 'driving_rgb256');
    const drivingFrames = tf.unstack(d);
    const kp = await lp.prepareSourceKeypoints(s);
    let f_s: tf.Tensor5D | undefined;
    if (renderFrames) {
      const I_s = prepareImage(s, 'source_rgb256');
      f_s = nets.F.apply(I_s);
      I_s.dispose();
    }
    const src = { ...kp, f_s };
    const motion = await lp.extractMotion(drivingFrames);
    tf.dispose([s, d, ...drivingFrames]);
    const rows: ParityRow[] = [];
    try {
      for (const [name, o] of sets) {
        const { ratios, frames } = withRatios(o, motion);
        const source = { ...src, ...ratios };
        const opts = toOptions(o);
        const xs: tf.Tensor3D[] = [];
        for (const f of frames) xs.push(await lp.drivingKeypoints(source, f, frames[0], opts));
        try {
          if (file.tensors.has(`${name}/x_d`)) {
            const x_d = tf.concat(xs);
            rows.push(await this.check(stem, `${name}/x_d`, x_d));
            x_d.dispose();
          }
          const ref = file.tensors.get(`${name}/frames`);
          if (!ref) continue;
          if (!renderFrames || !src.f_s) {
            rows.push({ module: stem, tensor: `${name}/frames`, shape: ref.shape, status: 'not compared', note: `rendering ${ref.shape[0]} frames takes minutes (W and G per frame); ask with --modules pipeline` });
            continue;
          }
          const rendered: Uint8Array[] = [];
          for (const x_d of xs) rendered.push((await lp.renderImage(src.f_s, src.x_s, x_d)).rgb);
          rows.push(compareFrames(stem, `${name}/frames`, rendered, ref));
        } finally {
          tf.dispose(xs);
        }
      }
    } finally {
      src.f_s?.dispose();
      disposeSourceKeypoints(kp);
    }
    return rows;
  }

  dispose(): void {
    for (const n of this.nets.values()) n.dispose();
    this.nets.clear();
  }
}
