/** Running the built `liveportrait` command (bin/liveportrait.js) as a user does, and reading its errors. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { BIN, ROOT } from './paths.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  /** Working directory (default: the repository). */
  cwd?: string;
  /** Added to this process's environment (LIVEPORTRAIT_DEBUG is cleared: no stacks). */
  env?: Record<string, string>;
  /** Killed after this long (default 180 s). */
  timeoutMs?: number;
}

const envOf = (opts: CliOptions) => ({ ...process.env, LIVEPORTRAIT_DEBUG: '', ...opts.env });

/** Run `liveportrait ARGS` to its end. */
export function cli(args: string[], opts: CliOptions = {}): CliRun {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', env: envOf(opts), timeout: opts.timeoutMs ?? 180_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/**
 * Run `liveportrait ARGS` without blocking: killed with SIGKILL (reported as
 * the signal) after timeoutMs (default 60 s); `user` runs it as that user
 * through setpriv (root only); `node` are flags for node itself.
 */
export function cliAsync(args: string[], opts: CliOptions & { user?: string; node?: string[]; onStart?: (c: ChildProcess) => void } = {}): Promise<CliRun> {
  const cmd = opts.user ? 'setpriv' : process.execPath;
  const pre = opts.user ? ['--reuid', opts.user, '--regid', 'nogroup', '--clear-groups', '--', process.execPath] : [];
  const t0 = Date.now();
  const c = spawn(cmd, [...pre, ...(opts.node ?? []), BIN, ...args], { cwd: opts.cwd ?? ROOT, env: envOf(opts) });
  let stdout = '';
  let stderr = '';
  c.stdout!.on('data', (b) => (stdout += b));
  c.stderr!.on('data', (b) => (stderr += b));
  opts.onStart?.(c);
  const timer = setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((ok) =>
    c.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    }),
  );
}

/** The `liveportrait: error:` lines of a run's stderr. */
export const errorLines = (stderr: string): string[] =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('liveportrait: error:'));
