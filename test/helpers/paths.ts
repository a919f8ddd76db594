/**
 * Where the tests find things: the repository, the built CLI, the shared
 * media (`LP_MEDIA_DIR`, default ../shared/media) and the parity fixture
 * directory (`LP_PARITY_DIR`, default ../shared/parity/seed1).
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The `liveportrait` bin script. */
export const BIN = join(ROOT, 'bin', 'liveportrait.js');
/** The shared directories next to the repository. */
export const SHARED_DIR = resolve(ROOT, '..', 'shared');
export const MEDIA_DIR = resolve(process.env.LP_MEDIA_DIR ?? join(SHARED_DIR, 'media'));
export const PARITY_DIR = resolve(process.env.LP_PARITY_DIR ?? join(SHARED_DIR, 'parity', 'seed1'));
export const HAVE_PARITY = existsSync(join(PARITY_DIR, 'weights_manifest.json'));

/** A file of the shared media, e.g. media('s0.jpg'). */
export const media = (name: string): string => join(MEDIA_DIR, name);

/** The names in a directory, sorted; none when it does not exist. */
export const filesIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);
