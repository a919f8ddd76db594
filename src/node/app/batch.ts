/**
 * Many animations, one after the other (`liveportrait batch` without a
 * queue), and the one-job step that the queue's workers share with it.
 *
 * A job is finished when every file animate() would write is there: animate
 * writes each under a temporary name and renames it when complete, so a file
 * under its final name is whole. On a rerun a finished job is skipped. A job
 * with some of its files but not all (a run ended between two renames) is
 * rendered again, replacing them. With `overwrite` every job is rendered
 * again. A job that fails (a missing file, no face) fails alone, with its
 * one-line error, and the others go on. The temporary files a killed run
 * left for a job's outputs (`.<name>.partial-*`) are removed before the job
 * is rendered again.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { type AnimateRequest, type AnimateResult, animate, plannedOutputs } from './animate.js';
import { userMessage } from './errors.js';
import type { ModelOptions } from './model.js';
import { formatDuration, type ProgressStream } from './progress.js';

export type JobStatus = 'done' | 'skipped' | 'failed';

/** How one job ended. */
export interface JobOutcome {
  status: JobStatus;
  /** The files written (done) or found (skipped). */
  outputs: string[];
  seconds: number;
  frames?: number;
  /** Why it failed: the one-line error. */
  reason?: string;
  /** Who rendered it, on a queue: `host:pid` of the worker. */
  worker?: string;
}

/** The per-machine side of a job: model options, output, and the batch's overwrite. */
export interface JobRunOptions extends ModelOptions {
  overwrite?: boolean;
  log?: (line: string) => void;
  progress?: ProgressStream | false;
}

/** Remove the temporary files left for `outputs` by runs that were killed; returns how many. */
export function removeStalePartials(outputs: string[]): number {
  let n = 0;
  for (const out of outputs) {
    const dir = dirname(out);
    const prefix = `.${basename(out, extname(out))}.partial-`;
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const f of names) {
      if (f.startsWith(prefix)) {
        rmSync(join(dir, f), { force: true });
        n++;
      }
    }
  }
  return n;
}

/**
 * Run one job: skipped when its outputs are all there (unless overwrite),
 * else rendered by animate(), replacing outputs a broken run left. Never
 * throws: a failure is an outcome with its reason.
 */
export async function runJob(request: AnimateRequest, opts: JobRunOptions = {}): Promise<JobOutcome> {
  const t0 = Date.now();
  const secs = () => (Date.now() - t0) / 1000;
  let outputs: string[];
  try {
    outputs = plannedOutputs(request);
  } catch (e) {
    return { status: 'failed', outputs: [], seconds: secs(), reason: userMessage(e) };
  }
  const there = outputs.filter((p) => existsSync(p));
  if (!opts.overwrite && there.length === outputs.length) return { status: 'skipped', outputs, seconds: secs() };
  const stale = removeStalePartials(outputs);
  if (stale > 0) opts.log?.(`removed ${stale} temporary file(s) of an interrupted run of ${basename(outputs[0])}`);
  if (there.length > 0 && !opts.overwrite) opts.log?.(`${basename(outputs[0])}: ${there.length} of ${outputs.length} outputs there (an interrupted run); rendering it again`);
  try {
    const { weights, lipArray, seed, set, backend, workers, model, log, progress } = opts;
    const res: AnimateResult = await animate({
      ...request,
      weights,
      lipArray,
      seed,
      set,
      backend,
      workers,
      model,
      log,
      progress,
      // Outputs of an interrupted run of this job are replaced; someone else's file never is (the names are this job's).
      overwrite: opts.overwrite || there.length > 0,
    });
    return { status: 'done', outputs: [res.output, ...(res.concat ? [res.concat] : []), ...(res.gif ? [res.gif] : [])], seconds: secs(), frames: res.frames };
  } catch (e) {
    return { status: 'failed', outputs: [], seconds: secs(), reason: userMessage(e) };
  }
}

/** A job of a batch with its outcome, for the summary table. */
export interface BatchRow {
  line: number;
  name: string;
  outcome: JobOutcome;
}

/** The end-of-batch table: one row a job (line, job, status, seconds, outputs or reason) and the totals. */
export function summaryTable(rows: BatchRow[], seconds: number): string {
  const cells = rows.map((r) => [String(r.line), r.name, r.outcome.status, r.outcome.seconds.toFixed(1), r.outcome.status === 'failed' ? (r.outcome.reason ?? '') : r.outcome.outputs.map((p) => basename(p)).join(', ')]);
  const head = ['line', 'job', 'status', 'seconds', 'outputs / reason'];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const fmt = (c: string[]) => c.map((x, i) => (i === c.length - 1 ? x : i === 3 ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ');
  const count = (s: JobStatus) => rows.filter((r) => r.outcome.status === s).length;
  const total = `${rows.length} job${rows.length === 1 ? '' : 's'}: ${count('done')} done, ${count('skipped')} skipped, ${count('failed')} failed in ${formatDuration(seconds)} (${seconds.toFixed(1)} s)`;
  return [fmt(head), ...cells.map(fmt), total].join('\n');
}

export interface BatchOptions extends JobRunOptions {
  /** Progress of the whole batch, one line a job (default none). */
  batchLog?: (line: string) => void;
}

/** Run the jobs one after the other; resolves to their rows (the summary table's). */
export async function runBatch(jobs: { line: number; name: string; request: AnimateRequest }[], opts: BatchOptions = {}): Promise<BatchRow[]> {
  const rows: BatchRow[] = [];
  const t0 = Date.now();
  const say = opts.batchLog ?? (() => undefined);
  for (const [i, job] of jobs.entries()) {
    const counts = (['done', 'skipped', 'failed'] as const).map((s) => `${rows.filter((r) => r.outcome.status === s).length} ${s}`).join(', ');
    say(`batch: job ${i + 1}/${jobs.length} (line ${job.line}, ${job.name}); ${counts}; ${formatDuration((Date.now() - t0) / 1000)} elapsed`);
    const outcome = await runJob(job.request, opts);
    say(`batch: job ${i + 1}/${jobs.length} ${job.name}: ${outcome.status} in ${outcome.seconds.toFixed(1)} s${outcome.reason ? `: ${outcome.reason}` : ''}`);
    rows.push({ line: job.line, name: job.name, outcome });
  }
  return rows;
}
