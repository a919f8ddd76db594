/**
 * Batches across machines on BullMQ (a job queue in Redis): `enqueue` adds a
 * batch's jobs, `follow` prints their progress until each has finished,
 * `queueStatus` counts the queue's jobs, `startWorker` takes jobs and
 * renders them (in a sandboxed child process, queue_processor.ts).
 *
 * - Job ids come from the job (jobId(): a hash of the request), and BullMQ
 *   adds a job whose id it holds already only once: running the same batch
 *   again adds nothing twice. Jobs that failed before are retried by a rerun;
 *   with `overwrite` finished jobs are removed and added again.
 * - A worker holds a lock on its job and renews it every lockDuration / 2;
 *   a worker that dies (SIGKILL, a lost machine) stops renewing, and after
 *   lockDuration the stalled-job check of another worker (every
 *   stalledInterval) puts the job back in the queue for the next free
 *   worker. A job is taken up again at most MAX_STALLED times; beyond, it
 *   fails. A job whose render throws for a reason other than its inputs is
 *   retried up to its attempts.
 * - Outputs go to the batch's output folder, which every worker must see
 *   under the same path (a shared folder: NFS, SMB, a cluster file system).
 *   animate() writes them under temporary names and renames them at the
 *   end; the worker that takes up a job removes the temporary files a dead
 *   worker left for it; a job whose outputs are all there is not rendered
 *   again (see batch.ts). Two workers finishing the same job (one that lost
 *   its lock without dying) rename complete files over the same names: one
 *   file each, always whole.
 */
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type ConnectionOptions, type Job, Queue, Worker } from 'bullmq';
import { CliError, UsageError, userMessage } from './errors.js';
import type { BatchRow, JobOutcome } from './batch.js';
import type { ModelOptions } from './model.js';
import { QUEUE_OPTIONS_ENV, type QueueJobData } from './queue_types.js';

export const QUEUE_NAME = 'liveportrait';
/** How many times a job is taken up again after its worker died, before it fails. */
export const MAX_STALLED = 2;
export const DEFAULT_LOCK_MS = 30_000;
export const DEFAULT_STALLED_MS = 30_000;

/** BullMQ's connection options for a redis:// (or rediss://) URL; a one-line error for anything else. */
export function connection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--queue ${url} is not a URL; give redis://HOST:PORT`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UsageError(`--queue ${url}: give a redis://HOST:PORT (or rediss://) URL`);
  // Fail instead of retrying for ever when Redis is not there.
  return { url, maxRetriesPerRequest: null, retryStrategy: (n: number) => (n > 5 ? null : 200 * n), connectTimeout: 5000 } as ConnectionOptions;
}

async function withQueue<T>(url: string, f: (q: Queue) => Promise<T>): Promise<T> {
  const q = new Queue(QUEUE_NAME, { connection: { ...(connection(url) as object), retryStrategy: () => null } as ConnectionOptions });
  let err: unknown;
  q.on('error', (e) => {
    err ??= e;
  });
  try {
    await q.waitUntilReady();
    return await f(q);
  } catch (e) {
    throw new CliError(`queue ${url}: ${userMessage(err ?? e)}; is redis-server running there?`, { cause: e });
  } finally {
    await q.close().catch(() => undefined);
  }
}

export interface QueuedJob {
  id: string;
  line: number;
  name: string;
  data: QueueJobData;
}

/** Add the jobs (once each; failed ones are retried, finished ones replaced with `overwrite`). Returns what was done to each. */
export async function enqueue(url: string, jobs: QueuedJob[], opts: { attempts?: number; overwrite?: boolean } = {}): Promise<Record<string, 'added' | 'queued already' | 'finished already' | 'retried'>> {
  return withQueue(url, async (q) => {
    const out: Record<string, 'added' | 'queued already' | 'finished already' | 'retried'> = {};
    for (const j of jobs) {
      const old = await q.getJob(j.id);
      const state = old ? await old.getState() : undefined;
      if (old && state === 'failed' && !opts.overwrite) {
        await old.retry('failed');
        out[j.id] = 'retried';
        continue;
      }
      if (old && (state === 'completed' || state === 'failed') && opts.overwrite) await old.remove();
      else if (old) {
        out[j.id] = state === 'completed' ? 'finished already' : 'queued already';
        continue;
      }
      await q.add(j.name, { ...j.data, overwrite: opts.overwrite }, { jobId: j.id, attempts: opts.attempts ?? 3, backoff: { type: 'fixed', delay: 1000 } });
      out[j.id] = 'added';
    }
    return out;
  });
}

/** Follow the jobs until each has finished (completed or failed); `say` gets a line whenever something changed. */
export async function follow(url: string, jobs: QueuedJob[], say: (line: string) => void, opts: { pollMs?: number } = {}): Promise<BatchRow[]> {
  const t0 = Date.now();
  return withQueue(url, async (q) => {
    let lastLine = '';
    for (;;) {
      const rows: BatchRow[] = [];
      const active: string[] = [];
      let waiting = 0;
      for (const j of jobs) {
        const job = (await q.getJob(j.id)) as Job<QueueJobData, JobOutcome> | undefined;
        const state = job ? await job.getState() : 'missing';
        if (state === 'completed' && job) rows.push({ line: j.line, name: j.name, outcome: job.returnvalue });
        else if (state === 'failed' || state === 'missing') {
          const secs = job?.finishedOn && job.processedOn ? (job.finishedOn - job.processedOn) / 1000 : 0;
          rows.push({ line: j.line, name: j.name, outcome: { status: 'failed', outputs: [], seconds: secs, reason: job ? job.failedReason : 'the job is no longer in the queue' } });
        } else if (state === 'active') {
          const p = job?.progress as { text?: string } | undefined;
          active.push(`${j.name}${p?.text ? ` (${p.text.replace(/^.*?(\d+\/\d+ \w+)/, '$1')})` : ''}`);
        } else waiting++;
      }
      const n = (s: string) => rows.filter((r) => r.outcome.status === s).length;
      const line = `batch: ${jobs.length} jobs: ${waiting} waiting, ${active.length} active${active.length ? ` [${active.join('; ')}]` : ''}, ${n('done')} done, ${n('skipped')} skipped, ${n('failed')} failed`;
      if (line !== lastLine) {
        say(`${line}, ${Math.round((Date.now() - t0) / 1000)} s`);
        lastLine = line;
      }
      if (rows.length === jobs.length) {
        const byLine = new Map(jobs.map((j, i) => [j.line, i]));
        return rows.sort((a, b) => byLine.get(a.line)! - byLine.get(b.line)!);
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
    }
  });
}

/** The queue's jobs by state, and the active and failed ones by name. */
export async function queueStatus(url: string): Promise<string> {
  return withQueue(url, async (q) => {
    const c = await q.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
    const lines = [`queue ${QUEUE_NAME} on ${url}: ${c.waiting + c.prioritized + c.delayed} queued, ${c.active} active, ${c.completed} done, ${c.failed} failed`];
    for (const j of (await q.getActive(0, 99)) as Job<QueueJobData>[]) lines.push(`  active  ${j.id}  ${j.data.name} (line ${j.data.line})${(j.progress as { text?: string })?.text ? `: ${(j.progress as { text: string }).text}` : ''}`);
    for (const j of (await q.getWaiting(0, 99)) as Job<QueueJobData>[]) lines.push(`  queued  ${j.id}  ${j.data.name} (line ${j.data.line})`);
    for (const j of (await q.getFailed(0, 99)) as Job<QueueJobData>[]) lines.push(`  failed  ${j.id}  ${j.data.name} (line ${j.data.line}): ${j.failedReason}`);
    for (const j of (await q.getCompleted(0, 99)) as Job<QueueJobData, JobOutcome>[]) lines.push(`  ${j.returnvalue?.status === 'skipped' ? 'skipped' : 'done   '} ${j.id}  ${j.data.name} (line ${j.data.line}) ${j.returnvalue?.seconds?.toFixed(1) ?? '?'} s${j.returnvalue?.worker ? ` by ${j.returnvalue.worker}` : ''}`);
    return lines.join('\n');
  });
}

export interface WorkerOptions extends ModelOptions {
  concurrency?: number;
  /** ms a job's lock lasts without renewal (default 30 s): how soon a dead worker's job is noticed. */
  lockDuration?: number;
  /** ms between the checks for stalled jobs (default 30 s). */
  stalledInterval?: number;
  quiet?: boolean;
}

/** The sandboxed processor (its .ts source through tsx when this runs from source). */
function processorFile(): { file: string; execArgv?: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(`./queue_processor.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  if (!fromSource) return { file };
  const tsx = createRequire(import.meta.url).resolve('tsx/package.json').replace(/package\.json$/, 'dist/loader.mjs');
  return { file, execArgv: ['--import', pathToFileURL(tsx).href] };
}

/**
 * Take jobs from the queue and render them until stopped (`close()`).
 * `say` gets the worker's own lines (jobs failed, stalled).
 */
export async function startWorker(url: string, opts: WorkerOptions, say: (line: string) => void): Promise<Worker> {
  const { concurrency, lockDuration, stalledInterval, quiet, model: _model, ...machine } = opts;
  const { file, execArgv } = processorFile();
  const w = new Worker<QueueJobData, JobOutcome>(QUEUE_NAME, file, {
    connection: connection(url),
    concurrency: concurrency ?? 1,
    lockDuration: lockDuration ?? DEFAULT_LOCK_MS,
    stalledInterval: stalledInterval ?? DEFAULT_STALLED_MS,
    maxStalledCount: MAX_STALLED,
    useWorkerThreads: false,
    workerForkOptions: { ...(execArgv ? { execArgv } : {}), env: { ...process.env, [QUEUE_OPTIONS_ENV]: JSON.stringify({ ...machine, quiet }) } },
    autorun: false,
  });
  let err: unknown;
  w.on('error', (e) => {
    err ??= e;
    say(`error: ${userMessage(e)}`);
  });
  w.on('failed', (job, e) => {
    if (job) say(`job ${job.id} (${job.data.name}) failed: ${userMessage(e)}`);
  });
  w.on('stalled', (id) => say(`job ${id} stalled (its worker stopped renewing the lock): back in the queue`));
  try {
    await w.waitUntilReady();
  } catch (e) {
    await w.close(true).catch(() => undefined);
    throw new CliError(`queue ${url}: ${userMessage(err ?? e)}; is redis-server running there?`, { cause: e });
  }
  void w.run().catch((e) => say(`error: ${userMessage(e)}`));
  return w;
}
