/**
 * User-facing errors: one line that names the file and the fix, and an exit
 * code (1 for a failed run, 2 for bad usage). Anything else that reaches
 * the command line is reported as one line too; the stack trace only with
 * LIVEPORTRAIT_DEBUG=1.
 */

import { LivePortraitError } from '../../errors.js';

export const DEBUG_ENV = 'LIVEPORTRAIT_DEBUG';

/** An error the command line reports as one line, with its exit code. */
export class CliError extends LivePortraitError {
  readonly exitCode: number;
  constructor(message: string, opts: { exitCode?: number; cause?: unknown } = {}) {
    super(oneLine(message), opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** Bad command-line usage (unknown flag, missing argument, bad value): exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/** Collapse a message to a single line. */
export function oneLine(msg: string): string {
  return msg.replace(/\s*\n\s*/g, ' ').replace(/\s+$/, '');
}

/** A one-line message for any thrown value. */
export function userMessage(e: unknown): string {
  if (e instanceof Error) return oneLine(e.message || e.name);
  return oneLine(String(e));
}

/** The process exit code for a thrown value (1 unless it says otherwise). */
export function exitCodeOf(e: unknown): number {
  return e instanceof CliError ? e.exitCode : 1;
}

/** True when stack traces were asked for. */
export function debugEnabled(): boolean {
  const v = process.env[DEBUG_ENV];
  return !!v && v !== '0' && v.toLowerCase() !== 'false';
}

/**
 * Wrap an error thrown while handling `file` so its message names the file
 * (when it does not already) and ends with `fix`.
 */
export function withFile(e: unknown, file: string, fix?: string): CliError {
  if (e instanceof CliError) return e;
  let msg = userMessage(e);
  if (!msg.includes(file)) msg = `${file}: ${msg}`;
  if (fix) msg = `${msg}; ${fix}`;
  return new CliError(msg, { cause: e });
}

/** Print the error the command-line way; returns the exit code. */
export function reportError(e: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  write(`liveportrait: error: ${userMessage(e)}\n`);
  if (debugEnabled() && e instanceof Error && e.stack) write(`${e.stack}\n`);
  return exitCodeOf(e);
}
