/** What the queue's front (queue.ts) and its sandboxed job processor (queue_processor.ts) share, with no side effects. */
import type { AnimateRequest } from './animate.js';

/** The environment variable that carries the worker's per-machine options (JSON) to this child. */
export const QUEUE_OPTIONS_ENV = 'LIVEPORTRAIT_QUEUE_WORKER_OPTIONS';

/** What a job of the queue holds. */
export interface QueueJobData {
  request: AnimateRequest;
  /** Line of the jobs file, for tables. */
  line: number;
  name: string;
  overwrite?: boolean;
}
