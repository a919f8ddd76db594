/**
 * Signals that work at any moment of a run. The commands that run the
 * networks (animate, retarget, template) run in a child process, in a
 * process group of its own, while this process only waits: its main thread
 * is never busy, so Ctrl-C or SIGTERM is acted on at once, even in the
 * middle of a frame rendered on the child's main thread (--workers 0). The
 * child's whole group goes (its frame worker threads with it, and the ffmpeg
 * processes it started), its temporary outputs are removed, folders it made
 * are removed again when empty, and the exit status is 130 (SIGINT) or 143
 * (SIGTERM).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { missingDirs, removeCreatedDirs, removePartials } from '../node/output.js';

/** Set in the child: run the command here, with the default signal handling. */
export const CHILD_ENV = 'LIVEPORTRAIT_CLI_CHILD';

/** The process ends with this status; the child has already said why. */
export class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit status ${code}`);
  }
}

let commandLine: string[] | undefined;

/** The arguments of this run (run() records them; the child gets the same). */
export function recordCommandLine(argv: string[]): void {
  commandLine = [...argv];
}

/** The bin script (from src/cli or dist/cli alike). */
const BIN = fileURLToPath(new URL('../../bin/liveportrait.js', import.meta.url));

/** What a command checks before any work: the folders it writes to, and those it created for that. */
export interface Preflight {
  outputDirs: string[];
  created: string[];
}

/**
 * Run `work` in this process when it is the child (or there is no command
 * line to hand on), else: `preflight` here (the cheap checks, so that a bad
 * input or output fails at once, in one process), then the same command line
 * in a child, waited for. A non-zero exit status of the child is thrown as
 * ExitStatus; the folders the preflight created are removed again (when
 * empty) after a failed or interrupted run.
 */
export async function supervised(preflight: () => Preflight, work: () => Promise<void>): Promise<void> {
  if (process.env[CHILD_ENV] === '1' || !commandLine) return work();
  const pre = preflight();
  let code: number;
  try {
    code = await runChild(commandLine, pre.outputDirs);
  } catch (e) {
    removeCreatedDirs(pre.created);
    throw e;
  }
  if (code !== 0) {
    removeCreatedDirs(pre.created);
    throw new ExitStatus(code);
  }
}

const EXIT_FOR: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

async function runChild(argv: string[], outputDirs: string[]): Promise<number> {
  // What the child may create, known before it starts (removed again when a signal ends it).
  const missing = outputDirs.map((d) => missingDirs(d));
  const child = spawn(process.execPath, [BIN, ...argv], {
    stdio: 'inherit',
    detached: true, // its own process group: the ffmpeg processes it starts go with it
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  let stopping: NodeJS.Signals | undefined;
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const onSignal = (sig: NodeJS.Signals) => {
    stopping ??= sig;
    killGroup();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve([c, s]));
    });
    const by = stopping ?? signal ?? undefined;
    if (code !== null && !stopping) return code;
    // Ended by a signal: stop whatever of its group is left, and clean up after it.
    killGroup();
    for (const d of outputDirs) removePartials(d, child.pid!);
    for (const m of missing) removeCreatedDirs(m);
    const sig = by as NodeJS.Signals;
    if (EXIT_FOR[sig] !== undefined) {
      process.stderr.write(`\nliveportrait: interrupted (${sig}); no output written\n`);
      return EXIT_FOR[sig]!;
    }
    process.stderr.write(`liveportrait: error: the run was killed (${sig}), perhaps for lack of memory; no output written; try fewer --workers (each needs up to 1.75 GiB in pairs) or --workers 0\n`);
    return 1;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
