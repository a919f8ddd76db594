/**
 * Atomic output files: everything is written to a temporary name in the same
 * directory as the final file and renamed over it only when complete, so a
 * failure (or a crash) never leaves a half-written result under the final name.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, parse, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';

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

/** A folder that cannot be created or written: the message names the folder and the reason. */
export class OutputDirError extends Error {
  constructor(
    readonly dir: string,
    readonly reason: string,
  ) {
    super(`output folder ${dir} ${reason}`);
    this.name = 'OutputDirError';
  }
}

/** A reason in words for a failed mkdir / write in `dir`. */
function reasonOf(e: unknown, dir: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${userName()} may not write in ${existingAncestor(dir) ?? dir})`;
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EDQUOT':
      return 'over the disk quota';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'ENOENT':
      // mkdir on a pseudo-filesystem (/proc, /sys) says ENOENT for a parent that exists
      return `${existingAncestor(dir) ?? dirname(dir)} does not take new folders (a pseudo or special file system?)`;
    default:
      return code ?? (e as Error).message;
  }
}

function userName(): string {
  try {
    return `user ${userInfo().username}`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

function existingAncestor(dir: string): string | undefined {
  let d = resolve(dir);
  for (;;) {
    if (existsSync(d)) return d;
    const up = dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

/**
 * Create `dir` (and its missing parents) one level at a time, never looping:
 * Node's `mkdirSync(dir, { recursive: true })` spins forever on paths under
 * pseudo-filesystems such as /proc. Returns the folders it created, outermost
 * first (so a failed run can remove them again). Throws OutputDirError naming
 * the folder and the reason.
 */
export function ensureDir(dir: string): string[] {
  const abs = resolve(dir);
  const missing: string[] = [];
  let d = abs;
  const root = parse(abs).root;
  for (;;) {
    let st;
    try {
      st = statSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') {
        // some ancestor is a file: find and name it
        const file = existingAncestor(d);
        throw new OutputDirError(abs, `cannot be created: ${file} is a file, not a folder`);
      }
      if (code !== 'ENOENT') throw new OutputDirError(abs, `cannot be used: ${reasonOf(e, abs)}`);
    }
    if (st) {
      if (!st.isDirectory()) throw new OutputDirError(abs, d === abs ? 'is a file, not a folder' : `cannot be created: ${d} is a file, not a folder`);
      break;
    }
    if (d === root) throw new OutputDirError(abs, `cannot be created: ${root} does not exist`);
    missing.unshift(d);
    d = dirname(d);
  }
  const created: string[] = [];
  for (const m of missing) {
    try {
      mkdirSync(m);
      created.push(m);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(m).isDirectory()) continue; // made meanwhile
      removeCreatedDirs(created);
      throw new OutputDirError(abs, `cannot be created: ${(e as NodeJS.ErrnoException).code === 'EEXIST' ? `${m} is a file, not a folder` : reasonOf(e, m)}`);
    }
  }
  return created;
}

/**
 * Create `dir` if needed and check that files can be written in it (a small
 * probe file, removed at once). Returns the folders created. Throws
 * OutputDirError ("output folder X is not writable: permission denied", ...).
 */
export function prepareOutputDir(dir: string): string[] {
  const abs = resolve(dir);
  const created = ensureDir(abs);
  const probe = join(abs, `.liveportrait-write-test-${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    rmSync(probe, { force: true });
    removeCreatedDirs(created);
    const code = (e as NodeJS.ErrnoException).code;
    throw new OutputDirError(abs, `is not writable: ${code === 'EACCES' || code === 'EPERM' ? `permission denied (${userName()} may not write in it)` : reasonOf(e, abs)}`);
  }
  return created;
}

/** Remove folders made by ensureDir, innermost first, where they are empty. */
export function removeCreatedDirs(created: readonly string[]): void {
  for (const d of [...created].reverse()) {
    try {
      rmdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return; // not empty: keep it and its parents
    }
  }
}

/** The folders ensureDir(dir) would create, outermost first (nothing is created). */
export function missingDirs(dir: string): string[] {
  const out: string[] = [];
  let d = resolve(dir);
  while (!existsSync(d)) {
    out.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return out;
}

/** Create the parent directory of `finalPath` and reserve a temporary name. */
export function openAtomicOutput(finalPath: string): AtomicOutput {
  const path = resolve(finalPath);
  ensureDir(dirname(path));
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
 * Remove the temporary outputs of process `pid` (default this one;
 * `.<name>.partial-<pid>-…`) from `dir`: for an interrupted run (Ctrl-C),
 * where the writers get no chance to clean up.
 */
export function removePartials(dir: string, pid: number = process.pid): number {
  let n = 0;
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith('.') && f.includes(`.partial-${pid}-`)) {
        rmSync(join(dir, f), { force: true });
        n++;
      }
    }
  } catch {
    /* the directory may not exist yet */
  }
  return n;
}
