/**
 * One driving per face on the command line: `--all-faces -d a.mp4 -d b.mp4`
 * (the faces left to right, in order) or `--face-drivings 0:a.mp4,2:b.mp4`
 * (face positions from the left, from 0; the others stay still). Also the
 * `--reference-frame N|auto` value.
 */
import { UsageError } from './errors.js';

/** The drivings by face position from the left (undefined: that face stays still), or undefined for one driving. */
export function faceDrivingList(drivings: string | string[] | undefined, faceDrivings: string | undefined): (string | undefined)[] | undefined {
  const list = drivings === undefined ? [] : Array.isArray(drivings) ? drivings : [drivings];
  if (faceDrivings !== undefined) {
    if (list.length) throw new UsageError('--face-drivings gives the drivings by face; drop -d');
    const out: (string | undefined)[] = [];
    for (const part of faceDrivings.split(',')) {
      const m = /^\s*(\d+)\s*:(.+)$/.exec(part);
      if (!m) throw new UsageError(`--face-drivings takes FACE:FILE pairs separated by commas (faces from the left, from 0), e.g. 0:a.mp4,2:b.mp4; got '${part}'`);
      const k = Number(m[1]);
      if (out[k] !== undefined) throw new UsageError(`--face-drivings gives face ${k} twice`);
      out[k] = m[2].trim();
    }
    return Array.from({ length: out.length }, (_, k) => out[k]);
  }
  if (list.length === 0) throw new UsageError('missing the driving input: give -d DRIVING (or --all-faces with --face-drivings FACE:FILE,...)');
  return list.length > 1 ? list : undefined;
}

/** `--reference-frame`: a frame index (0 or more) or `auto`. */
export function parseReferenceFrame(v: string | number | undefined): number | 'auto' | undefined {
  if (v === undefined) return undefined;
  if (String(v).trim().toLowerCase() === 'auto') return 'auto';
  const n = Number(v);
  if (!(String(v).trim() !== '' && Number.isInteger(n) && n >= 0)) throw new UsageError(`--reference-frame must be a frame index (0 or more) or auto, got '${v}'`);
  return n;
}
