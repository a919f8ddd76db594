/**
 * Atomic output files: everything is written to a temporary name in the same
 * directory as the final file and renamed over it only when complete, so a
 * failure (or a crash) never leaves a half-written result under the final name.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * A temporary sibling of `finalPath` that keeps its extension (ffmpeg and the
 * image encoders pick the format from it): `dir/.name.partial-<pid>-<rand>.ext`.
 */
export function tempPathFor(finalPath: string): string {
  const abs = resolve(finalPath);
  const ext = extname(abs);
  const stem = basename(abs, ext);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  return join(dirname(abs), `.${stem}.partial-${tag}${ext}`);
}

/** A pending output: write to `tempPath`, then `commit()` or `abort()`. */
export interface AtomicOutput {
  /** The final path (absolute). */
  readonly path: string;
  /** Where the content is written until commit. */
  readonly tempPath: string;
  /** Rename the temporary file to the final name (replacing it). */
  commit(): void;
  /** Remove the temporary file; safe to call more than once or after commit. */
  abort(): void;
}

/** Create the parent directory of `finalPath` and reserve a temporary name. */
export function openAtomicOutput(finalPath: string): AtomicOutput {
  const path = resolve(finalPath);
  mkdirSync(dirname(path), { recursive: true });
  const tempPath = tempPathFor(path);
  let done = false;
  return {
    path,
    tempPath,
    commit() {
      if (done) throw new Error(`Output "${path}" was already committed or aborted`);
      done = true;
      try {
        renameSync(tempPath, path);
      } catch (e) {
        rmSync(tempPath, { force: true });
        throw new Error(`Cannot write "${path}": ${(e as Error).message}`);
      }
    },
    abort() {
      done = true;
      rmSync(tempPath, { force: true });
    },
  };
}

/**
 * Run `write(tempPath)` and rename its result to `finalPath` on success;
 * on any error the temporary file is removed and the error rethrown.
 */
export async function withAtomicOutput<T>(
  finalPath: string,
  write: (tempPath: string) => Promise<T> | T,
): Promise<T> {
  const out = openAtomicOutput(finalPath);
  try {
    const result = await write(out.tempPath);
    out.commit();
    return result;
  } catch (e) {
    out.abort();
    throw e;
  }
}

/** Write a whole buffer atomically. */
export function writeFileAtomic(finalPath: string, data: Uint8Array | string): void {
  const out = openAtomicOutput(finalPath);
  try {
    writeFileSync(out.tempPath, data);
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

/**
 * Remove this process's temporary outputs (`.<name>.partial-<pid>-…`, see
 * io/output.ts) from `dir`: for an interrupted run (Ctrl-C), where the
 * writers get no chance to clean up.
 */
export function removePartials(dir: string): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith('.') && f.includes(`.partial-${process.pid}-`)) {
        rmSync(join(dir, f), { force: true });
        n++;
      }
    }
  } catch {
    /* the directory may not exist yet */
  }
  return n;
}
