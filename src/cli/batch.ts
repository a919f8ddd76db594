/** `liveportrait batch` and `liveportrait worker`: thin over src/node/app/batch.ts and queue.ts. */
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { runBatch, summaryTable } from '../node/app/batch.js';
import { CliError, UsageError } from '../node/app/errors.js';
import { DEFAULT_LOCK_MS, DEFAULT_STALLED_MS, MAX_STALLED, QUEUE_NAME, enqueue, follow, queueStatus, startWorker } from '../node/app/queue.js';
import { OutputDirError, prepareOutputDir } from '../node/output.js';
import { readJobs } from './batch_jobs.js';
import { type CommonArgs, logger, modelOptions, progressStream, say, withModelOptions } from './common.js';
import { ExitStatus, supervised } from './supervise.js';

const BATCH = 'Batch:';
const QUEUE = 'Queue (many machines):';

interface BatchArgs extends CommonArgs {
  jobs?: string;
  'output-dir': string;
  overwrite: boolean;
  queue?: string;
  status: boolean;
  attempts: number;
  follow: boolean;
}

export const batchCommand = {
  command: 'batch [jobs]',
  describe: 'Animate many source x driving pairs from a JSONL or CSV file, resumable; or spread them over machines through a Redis queue',
  builder: (y: Argv) =>
    withModelOptions(
      y
        .usage(
          [
            'liveportrait batch JOBS [-o OUTPUT_DIR] [options]',
            'liveportrait batch JOBS -o SHARED_DIR --queue redis://HOST:PORT   (workers: liveportrait worker)',
            'liveportrait batch --status --queue redis://HOST:PORT',
            '',
            'JOBS is a JSONL file, one job a line: {"source": "a.jpg", "driving": "d.mp4", "multiplier": 1.2,',
            '"max-frames": 50}, or a CSV file with a header line (source,driving,max-frames,...). A job takes',
            'source, driving and any option of `liveportrait animate` by its name (max-frames or maxFrames);',
            'paths are relative to the jobs file\'s folder. The whole file is checked first: a bad line stops',
            'the batch before any work, naming the line. Outputs are named as animate names them',
            '(<source>--<driving>.mp4 and _concat.mp4) in OUTPUT_DIR. Resumable: a job whose outputs are all',
            'there is skipped (outputs are renamed into place only when complete); a job that fails (missing',
            'file, no face) fails alone and the others go on. At the end, a table of the jobs: done, skipped,',
            'failed (with the reason), seconds. Exit status 1 when a job failed.',
            '',
            'With --queue the jobs go to a BullMQ queue in Redis (each job once: its id comes from its',
            'content) and this command follows them to the end; `liveportrait worker --queue URL` on any',
            'number of machines renders them. OUTPUT_DIR and the inputs must be at the same paths on every',
            'machine (a shared folder).',
          ].join('\n'),
        )
        .positional('jobs', { type: 'string', describe: 'The jobs file (.jsonl or .csv).' })
        .option('output-dir', { alias: 'o', type: 'string', default: 'animations', describe: 'Directory for the outputs (created if missing); with --queue, a folder every worker sees under this path.', group: BATCH })
        .option('overwrite', { type: 'boolean', default: false, describe: 'Render every job again, replacing its outputs (without it, finished jobs are skipped).', group: BATCH })
        .option('queue', { type: 'string', describe: 'Redis URL (redis://HOST:PORT): enqueue the jobs for `liveportrait worker` processes and follow them, instead of rendering here. [default: none, render here]', group: QUEUE })
        .option('status', { type: 'boolean', default: false, describe: 'With --queue: show the queued, active, done and failed jobs, and exit.', group: QUEUE })
        .option('attempts', { type: 'number', default: 3, describe: 'With --queue: how many times a job is tried when its render errs for a reason other than its inputs (those fail at once).', group: QUEUE })
        .option('follow', { type: 'boolean', default: true, describe: 'With --queue: follow the jobs to the end and print the table (--no-follow: enqueue and exit).', group: QUEUE })
        .example('liveportrait batch jobs.jsonl -o out', 'render the jobs here; run it again to resume')
        .example('liveportrait batch jobs.jsonl -o /mnt/shared/out --queue redis://10.0.0.1:6379', 'enqueue for the workers and follow them')
        .example('liveportrait batch --status --queue redis://10.0.0.1:6379', 'what the queue holds'),
    ),
  handler: async (a: BatchArgs) => {
    if (a.status) {
      if (!a.queue) throw new UsageError('--status shows a queue; give --queue redis://HOST:PORT');
      say(await queueStatus(a.queue));
      return;
    }
    if (!a.jobs) throw new UsageError('name the jobs file: liveportrait batch JOBS -o OUTPUT_DIR (or --status --queue URL)');
    if (!(Number.isInteger(a.attempts) && a.attempts >= 1)) throw new UsageError(`--attempts must be a positive integer, got ${a.attempts}`);
    if (a.queue) return queueBatch(a);
    await supervised(
      () => {
        readJobs(a.jobs!, a['output-dir']);
        return { outputDirs: [resolve(a['output-dir'])], created: outputDir(a['output-dir']) };
      },
      () => localBatch(a),
    );
  },
};

function outputDir(dir: string): string[] {
  try {
    return prepareOutputDir(dir);
  } catch (e) {
    if (e instanceof OutputDirError) throw new CliError(`${e.message}; give -o a folder you can write to`, { cause: e });
    throw e;
  }
}

async function localBatch(a: BatchArgs): Promise<void> {
  const jobs = readJobs(a.jobs!, a['output-dir']);
  outputDir(a['output-dir']);
  const t0 = Date.now();
  const log = logger(a);
  const rows = await runBatch(jobs, { ...modelOptions(a), overwrite: a.overwrite, log, progress: progressStream(a), batchLog: log });
  say(summaryTable(rows, (Date.now() - t0) / 1000));
  if (rows.some((r) => r.outcome.status === 'failed')) throw new ExitStatus(1);
}

async function queueBatch(a: BatchArgs): Promise<void> {
  const jobs = readJobs(a.jobs!, a['output-dir']);
  const t0 = Date.now();
  const log = logger(a);
  const queued = jobs.map((j) => ({ id: j.id, line: j.line, name: j.name, data: { request: j.request, line: j.line, name: j.name } }));
  const what = await enqueue(a.queue!, queued, { attempts: a.attempts, overwrite: a.overwrite });
  const count = (s: string) => Object.values(what).filter((v) => v === s).length;
  log(`batch: ${jobs.length} jobs on ${a.queue} (queue ${QUEUE_NAME}): ${count('added')} added, ${count('retried')} failed before and retried, ${count('queued already')} queued already, ${count('finished already')} finished already`);
  if (!a.follow) return;
  const rows = await follow(a.queue!, queued, log);
  say(summaryTable(rows, (Date.now() - t0) / 1000));
  if (rows.some((r) => r.outcome.status === 'failed')) throw new ExitStatus(1);
}

interface WorkerArgs extends CommonArgs {
  queue: string;
  concurrency: number;
  'lock-duration': number;
  'stalled-interval': number;
}

export const workerCommand = {
  command: 'worker',
  describe: 'Render the jobs of a `batch --queue` (Redis): run one or more on each machine',
  builder: (y: Argv) =>
    withModelOptions(
      y
        .usage(
          [
            'liveportrait worker --queue redis://HOST:PORT [--concurrency 1] [options]',
            '',
            'Takes jobs from the queue that `liveportrait batch JOBS -o DIR --queue URL` filled and renders',
            'them with this machine\'s weights, backend and frame workers (--weights, --seed, --backend,',
            '--workers), until stopped (Ctrl-C, SIGTERM). Each job renders in a child process, so the worker',
            'keeps renewing its lock in Redis; a worker that dies (killed, machine lost) has its job taken up',
            `by another after --lock-duration (checked every --stalled-interval), at most ${MAX_STALLED}`,
            'times. The inputs and the output folder must be at the same paths as on the machine that ran',
            'batch (a shared folder).',
          ].join('\n'),
        )
        .option('queue', { type: 'string', demandOption: true, describe: 'Redis URL (redis://HOST:PORT) of the batch\'s queue.', group: QUEUE })
        .option('concurrency', { type: 'number', default: 1, describe: 'Jobs rendered at once on this machine, each in its own process (with its own frame workers).', group: QUEUE })
        .option('lock-duration', { type: 'number', default: DEFAULT_LOCK_MS, describe: 'Milliseconds a job\'s lock lasts unless renewed: after this, the job of a dead worker goes back to the queue.', group: QUEUE })
        .option('stalled-interval', { type: 'number', default: DEFAULT_STALLED_MS, describe: 'Milliseconds between this worker\'s checks for jobs whose worker died.', group: QUEUE })
        .example('liveportrait worker --queue redis://10.0.0.1:6379', 'render jobs on this machine')
        .example('liveportrait worker --queue redis://10.0.0.1:6379 --concurrency 2 --workers 0', 'two jobs at once, each rendering in its own process'),
    ),
  handler: async (a: WorkerArgs) => {
    for (const k of ['concurrency', 'lock-duration', 'stalled-interval'] as const) if (!(Number.isInteger(a[k]) && a[k] >= 1)) throw new UsageError(`--${k} must be a positive integer, got ${a[k]}`);
    const log = (line: string) => process.stderr.write(`liveportrait worker ${process.pid}: ${line}\n`);
    const w = await startWorker(a.queue, { ...modelOptions(a), concurrency: a.concurrency, lockDuration: a['lock-duration'], stalledInterval: a['stalled-interval'], quiet: a.quiet }, log);
    log(`taking jobs from ${a.queue} (queue ${QUEUE_NAME}, concurrency ${a.concurrency}, lock ${a['lock-duration']} ms, stalled check every ${a['stalled-interval']} ms); Ctrl-C stops`);
    const sig = await new Promise<NodeJS.Signals>((res) => {
      for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => res(s));
    });
    log(`${sig}: stopping; a job in hand goes back to the queue when its lock runs out`);
    await w.close(true).catch(() => undefined);
    throw new ExitStatus(sig === 'SIGINT' ? 130 : 143);
  },
};
