/**
 * The job processor of `liveportrait worker`, run by BullMQ in a child
 * process of the worker (a sandboxed processor): the child renders, busy
 * for minutes on the wasm backend, while the worker's own event loop stays
 * free to renew the job's lock in Redis. The child keeps its model between
 * jobs. The machine's options (weights, backend, frame workers) come from
 * the worker in QUEUE_OPTIONS_ENV. A job that fails for a reason of its own
 * (a missing file, no face: a one-line error) fails at once, without
 * retries; anything else (the child dying) is retried up to the job's
 * attempts.
 */
import type { SandboxedJob } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import { type JobOutcome, runJob } from './batch.js';
import { QUEUE_OPTIONS_ENV, type QueueJobData } from './queue_types.js';
// Imported only in the sandboxed child BullMQ starts: the signal handlers below are that child's alone.
import type { ModelOptions } from './model.js';
import { removePartials } from '../output.js';
import { resolve } from 'node:path';
import { hostname } from 'node:os';

// The worker gone (killed, machine lost): stop too instead of finishing a job that another worker takes up.
process.on('disconnect', () => process.exit(1));
// Stopped (the worker's Ctrl-C, SIGTERM): at once, leaving no temporary output; the job goes back to the queue.
let outputDir: string | undefined;
for (const [s, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(s, () => {
    if (outputDir) removePartials(outputDir);
    process.exit(code);
  });
}

export default async function processJob(job: SandboxedJob<QueueJobData, JobOutcome>): Promise<JobOutcome> {
  const opts = JSON.parse(process.env[QUEUE_OPTIONS_ENV] ?? '{}') as ModelOptions & { quiet?: boolean };
  const tag = `liveportrait worker ${process.ppid}: job ${job.id} (${job.data.name}, line ${job.data.line})`;
  const log = (line: string) => {
    if (!opts.quiet) process.stderr.write(`${tag}: ${line}\n`);
  };
  process.stdout.write(`${tag}: started (attempt ${(job.attemptsStarted ?? job.attemptsMade + 1) || 1})\n`);
  outputDir = resolve(job.data.request.outputDir ?? 'animations');
  let last = 0;
  const progress = {
    isTTY: false,
    write(s: string) {
      const text = s.trim();
      if (!text) return;
      log(text);
      const now = Date.now();
      if (now - last > 1000) {
        last = now;
        void Promise.resolve(job.updateProgress({ text })).catch(() => undefined);
      }
    },
  };
  const outcome = await runJob(job.data.request, { ...opts, overwrite: job.data.overwrite, log, progress: opts.quiet ? false : progress });
  if (outcome.status !== 'failed') process.stdout.write(`${tag}: ${outcome.status} in ${outcome.seconds.toFixed(1)} s → ${outcome.outputs.join(', ')}\n`);
  if (outcome.status === 'failed') throw new UnrecoverableError(outcome.reason ?? 'failed');
  return { ...outcome, worker: `${hostname()}:${process.ppid}` };
}
