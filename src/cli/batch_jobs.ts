/**
 * The jobs file of `liveportrait batch`: JSONL (one JSON object a line) or
 * CSV with a header line. Every job names `source` and `driving` and may set
 * any option of `animate` by its CLI name (`max-frames`, or `maxFrames`).
 * The whole file is checked before any work: an unknown option, a value of
 * the wrong type, a missing source or driving, two jobs writing the same
 * output, each is one line naming the file and the line. Relative paths are
 * taken from the jobs file's folder. What a job's files hold (a missing file,
 * no face) is found when it runs: such a job fails alone.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import yargs, { type Argv } from 'yargs';
import type { AnimateRequest } from '../node/app/animate.js';
import { CliError, UsageError, userMessage } from '../node/app/errors.js';
import { stem, drivingTag } from '../node/app/inputs.js';
import { animateCommand, jobRequest } from './animate.js';

/** One job of the file: where it was, what it asks, and its id. */
export interface BatchJob {
  /** 1-based line number in the jobs file. */
  line: number;
  /** The animation: absolute paths, the batch's output folder; no per-machine options. */
  request: AnimateRequest;
  /** `<source>--<driving>`: the stem of the output names (for tables). */
  name: string;
  /** Derived from the request: the same job gives the same id (queue deduplication). */
  id: string;
}

/** Options that are the machine's or the batch's, not a job's. */
const NOT_PER_JOB: Record<string, string> = {
  weights: 'per machine',
  'lip-array': 'per machine',
  seed: 'per machine',
  set: 'per machine',
  backend: 'per machine',
  workers: 'per machine',
  quiet: 'per machine',
  'output-dir': 'the batch\'s (-o)',
  overwrite: 'the batch\'s (--overwrite)',
  help: 'not an option of a job',
  version: 'not an option of a job',
};

interface OptionTable {
  number: Set<string>;
  boolean: Set<string>;
  string: Set<string>;
  choices: Record<string, readonly string[]>;
  defaults: Record<string, unknown>;
}

let table: OptionTable | undefined;

/** animate's options, as its command line declares them (one source of truth). */
function optionTable(): OptionTable {
  if (table) return table;
  const y = (animateCommand.builder as (y: Argv) => Argv)(yargs([]));
  const o = (y as unknown as { getOptions(): { number: string[]; boolean: string[]; string: string[]; choices: Record<string, string[]>; default: Record<string, unknown>; alias: Record<string, string[]> } }).getOptions();
  const aliases = new Set(Object.values(o.alias).flat().filter((k) => k.length === 1));
  const keep = (ks: string[]) => new Set(ks.filter((k) => !aliases.has(k)));
  table = { number: keep(o.number), boolean: keep(o.boolean), string: keep(o.string), choices: o.choices, defaults: o.default };
  return table;
}

/** `maxFrames` → `max-frames`. */
function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Split one CSV line (RFC 4180 quotes, "" inside quotes). */
export function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((f) => f.trim());
}

/** The raw jobs of the text: [line number, fields] (CSV values are strings; empty ones are left out). */
function rawJobs(text: string, file: string): [number, Record<string, unknown>][] {
  const lines = text.split(/\r?\n/);
  const csv = ['.csv', '.tsv'].includes(extname(file).toLowerCase()) || !/^\s*\{/.test(lines.find((l) => l.trim() !== '' && !l.trim().startsWith('#')) ?? '{');
  const out: [number, Record<string, unknown>][] = [];
  let header: string[] | undefined;
  lines.forEach((l, i) => {
    const n = i + 1;
    if (l.trim() === '' || l.trim().startsWith('#')) return;
    if (!csv) {
      let v: unknown;
      try {
        v = JSON.parse(l);
      } catch (e) {
        throw new UsageError(`${file} line ${n}: not JSON (${userMessage(e)}); write one job a line, e.g. {"source": "a.jpg", "driving": "d.mp4"}`);
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${file} line ${n}: a job is a JSON object, e.g. {"source": "a.jpg", "driving": "d.mp4"}`);
      out.push([n, v as Record<string, unknown>]);
      return;
    }
    const fields = csvFields(l);
    if (!header) {
      header = fields;
      return;
    }
    if (fields.length !== header.length) throw new UsageError(`${file} line ${n}: ${fields.length} fields, the header has ${header.length}`);
    const job: Record<string, unknown> = {};
    header.forEach((h, k) => {
      if (fields[k] !== '') job[h] = fields[k];
    });
    out.push([n, job]);
  });
  return out;
}

/** A value of the job checked against the option's type; CSV strings are converted. */
function typedValue(key: string, v: unknown, t: OptionTable, where: string): unknown {
  const bad = (want: string) => new UsageError(`${where}: ${key} must be ${want}, got ${JSON.stringify(v)}`);
  if (t.number.has(key)) {
    const x = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw bad('a number');
    return x;
  }
  if (t.boolean.has(key)) {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string' && /^(true|yes|1)$/i.test(v)) return true;
    if (typeof v === 'string' && /^(false|no|0)$/i.test(v)) return false;
    throw bad('true or false');
  }
  const choices = t.choices[key];
  if (typeof v !== 'string' || (t.string.has(key) && v === '')) throw bad(choices ? `one of ${choices.join(', ')}` : 'a string');
  if (choices && !choices.includes(v)) throw bad(`one of ${choices.join(', ')}`);
  return v;
}

/** Stable JSON (sorted keys) for the job id. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The id of a request: `lp-` and 20 hex digits of the SHA-256 of its canonical JSON. */
export function jobId(r: AnimateRequest): string {
  return `lp-${createHash('sha256').update(canonical(r)).digest('hex').slice(0, 20)}`;
}

/**
 * Read and check a jobs file; the jobs write to `outputDir`. Throws a
 * UsageError (exit 2) naming the file and the line for the first bad line.
 */
export function readJobs(file: string, outputDir: string): BatchJob[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`jobs file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? userMessage(e)}); give batch a JSONL or CSV file of jobs`);
  }
  const base = dirname(resolve(file));
  const t = optionTable();
  const jobs: BatchJob[] = [];
  const byName = new Map<string, number>();
  for (const [line, raw] of rawJobs(text, file)) {
    const where = `${basename(file)} line ${line}`;
    const args: Record<string, unknown> = { ...t.defaults };
    for (const [k0, v] of Object.entries(raw)) {
      const k = kebab(k0);
      if (v === null || v === undefined) continue;
      if (NOT_PER_JOB[k]) throw new UsageError(`${where}: ${k} is ${NOT_PER_JOB[k]}, not a job's; give it on the command line`);
      if (!t.number.has(k) && !t.boolean.has(k) && !t.string.has(k) && !t.choices[k]) throw new UsageError(`${where}: unknown option ${k0} (a job takes source, driving and the options of liveportrait animate by their names, e.g. max-frames)`);
      args[k] = typedValue(k, v, t, where);
    }
    for (const k of ['source', 'driving']) if (args[k] === undefined) throw new UsageError(`${where}: no ${k}; every job needs a source and a driving`);
    for (const k of ['source', 'driving']) if (!isAbsolute(args[k] as string)) args[k] = resolve(base, args[k] as string);
    const request: AnimateRequest = { ...jobRequest(args), outputDir: resolve(outputDir), overwrite: undefined };
    const drv = Array.isArray(request.driving) ? request.driving.join('+') : request.driving;
    const name = `${stem(request.source)}--${stem(drv)}${drivingTag(drv)}`;
    const same = byName.get(name);
    if (same !== undefined) throw new UsageError(`${where}: writes ${name} like line ${same}; give one of them other inputs (outputs are named <source>--<driving>)`);
    byName.set(name, line);
    jobs.push({ line, request, name, id: jobId(request) });
  }
  if (jobs.length === 0) throw new UsageError(`${file}: no jobs in it; write one a line (JSONL) or a CSV with a header`);
  return jobs;
}
