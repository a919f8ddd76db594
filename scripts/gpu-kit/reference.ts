/**
 * The GPU kit's side-by-side figure: the PyTorch reference's W + G per
 * frame on the same machine (tools/reference/bench_wg.py --json, on cuda
 * when torch sees a GPU, else the CPU), run by a python3 that imports torch
 * and yaml. Every step has a time limit; nothing here throws: a missing
 * python, torch or reference gives `{ result: null, reason }`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What bench_wg.py --json prints (one timing block per precision). */
export interface ReferenceTiming {
  msPerFrame: number;
  msMin: number;
  fps: number;
  frames: number;
}
export interface ReferenceReport {
  python: string;
  device: string;
  deviceName: string;
  torch: string;
  cuda: string | null;
  threads: number | null;
  warmup: number;
  tf32: boolean | null;
  fp32: ReferenceTiming;
  autocastFp16: ReferenceTiming | null;
  seconds: number;
}

export interface ReferenceOptions {
  /** The reference checkout (holding src/config/models.yaml), or undefined when the kit has none. */
  reference?: string;
  /** tools/reference/bench_wg.py. */
  benchWg?: string;
  /** A python to use; else python3 on the PATH, /usr/bin/python3, /opt/torch/.venv/bin/python3. */
  python?: string;
  frames: number;
  warmup: number;
  device: 'auto' | 'cuda' | 'cpu';
  threads?: number;
  /** Also time autocast float16 on cuda. */
  half: boolean;
  /** Milliseconds for the whole run (the python search included). */
  timeoutMs: number;
  /** Aborting kills the python process. */
  signal?: AbortSignal;
  log: (line: string) => void;
}

export const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3', '/opt/torch/.venv/bin/python3'];

const lastLine = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1) ?? '';

/** The first python that imports torch and yaml, or why none does. */
export function findPython(candidates: string[], timeoutMs: number): { python: string; torch: string } | { python: null; reason: string } {
  const tried: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const py of [...new Set(candidates)]) {
    const left = deadline - Date.now();
    if (left <= 0) {
      tried.push(`${py}: no time left`);
      break;
    }
    const r = spawnSync(py, ['-c', 'import sys, torch, yaml; print(torch.__version__, sys.executable)'], { encoding: 'utf8', timeout: left });
    if (r.status === 0) {
      const [torch, exe] = lastLine(r.stdout).split(' ');
      return { python: exe || py, torch };
    }
    const err = r.error as NodeJS.ErrnoException | undefined;
    const why = err?.code === 'ENOENT' ? 'not found' : err?.code === 'ETIMEDOUT' ? 'timed out importing torch' : lastLine(r.stderr ?? '') || `exit ${r.status}`;
    tried.push(`${py}: ${why}`);
  }
  return { python: null, reason: `no python3 that imports torch and yaml (${tried.join('; ')})` };
}

/** Runs bench_wg.py; never throws. */
export async function referenceWG(o: ReferenceOptions): Promise<{ result: ReferenceReport | null; reason?: string }> {
  if (!o.reference || !existsSync(`${o.reference}/src/config/models.yaml`))
    return { result: null, reason: o.reference ? `no reference sources at ${o.reference} (want src/config/models.yaml)` : 'the kit was built without the reference sources (build.sh --reference PATH)' };
  if (!o.benchWg || !existsSync(o.benchWg)) return { result: null, reason: `tools/reference/bench_wg.py not found${o.benchWg ? ` at ${o.benchWg}` : ''}` };
  const t0 = Date.now();
  const found = findPython(o.python ? [o.python] : PYTHON_CANDIDATES, Math.min(o.timeoutMs, 180_000));
  if (found.python === null) return { result: null, reason: found.reason };
  o.log(`reference: ${found.python} (torch ${found.torch}), W + G over ${o.frames} frame(s) after ${o.warmup} warm-up, device ${o.device}`);
  const args = [o.benchWg, '--reference', o.reference, '--frames', String(o.frames), '--warmup', String(o.warmup), '--device', o.device, '--json'];
  if (o.threads) args.push('--threads', String(o.threads));
  if (o.half) args.push('--half');
  const left = o.timeoutMs - (Date.now() - t0);
  if (left <= 1000) return { result: null, reason: 'no time left for the reference (--timeout)' };
  return new Promise((resolve) => {
    const child = spawn(found.python, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (err.length > 65536) err = err.slice(-32768);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, left);
    o.signal?.addEventListener('abort', () => child.kill('SIGKILL'), { once: true });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ result: null, reason: `${found.python}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ result: null, reason: `bench_wg.py timed out after ${(left / 1000).toFixed(0)} s (--timeout)` });
      if (code !== 0) return resolve({ result: null, reason: `bench_wg.py failed (${signal ?? `exit ${code}`}): ${lastLine(err) || 'no message'}` });
      try {
        const r = JSON.parse(lastLine(out)) as Omit<ReferenceReport, 'python' | 'seconds'>;
        resolve({ result: { python: found.python, ...r, seconds: (Date.now() - t0) / 1000 } });
      } catch {
        resolve({ result: null, reason: `bench_wg.py printed no JSON line: ${lastLine(out) || lastLine(err) || 'nothing'}` });
      }
    });
  });
}
