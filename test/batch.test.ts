// `liveportrait batch` as a user meets it, through the real bin script:
// - without a queue: a job that renders, a job with a missing file that fails
//   alone, a rerun that skips the finished job; the jobs file checked up front;
// - with a queue on a real Redis (Debian's redis-server, started here on a
//   free loopback port, no persistence): two worker processes, four one-frame
//   jobs on synthetic weights, one worker killed with SIGKILL while it
//   renders: its job is taken up by the other, every output is there once,
//   complete (frame counts from ffmpeg), nothing partial. Skipped with the
//   reason printed when redis-server is missing; failed instead under CI=true.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeVideo } from '../src/node/video.js';
import { MEDIA_DIR } from './helpers/paths.js';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'liveportrait.js');
const m = (f: string) => join(MEDIA_DIR, f);

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lp-batch-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, LIVEPORTRAIT_DEBUG: '' }, timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function jsonl(name: string, jobs: object[]): string {
  const p = join(tmp, name);
  writeFileSync(p, jobs.map((j) => JSON.stringify(j)).join('\n') + '\n');
  return p;
}

/** The summary table's rows: line number → [job, status]. */
function table(stdout: string): Map<number, [string, string]> {
  const rows = new Map<number, [string, string]>();
  for (const l of stdout.split('\n')) {
    const c = l.trim().split(/\s{2,}/);
    if (/^\d+$/.test(c[0])) rows.set(Number(c[0]), [c[1], c[2]]);
  }
  return rows;
}

async function frames(path: string): Promise<number> {
  return (await probeVideo(path, { countFrames: true })).frameCount ?? -1;
}

describe('liveportrait batch (here, no queue)', () => {
  it('checks every line up front: one line naming the file, the line and the option', () => {
    const bad = [
      [{ source: 's.jpg', driving: 'd.mp4', maxFrames: 'many' }, /jobs1\.jsonl line 2: max-frames must be a number, got "many"/],
      [{ source: 's.jpg', driving: 'd.mp4', wobble: 1 }, /jobs1\.jsonl line 2: unknown option wobble/],
      [{ source: 's.jpg', driving: 'd.mp4', weights: 'synthetic' }, /jobs1\.jsonl line 2: weights is per machine/],
      [{ source: 's.jpg', driving: 'd.mp4', region: 'nose' }, /line 2: region must be one of all, exp, pose, lip, eyes/],
      [{ source: 's.jpg' }, /line 2: no driving/],
      [{ source: 'a.jpg', driving: 'd.mp4' }, /line 2: writes a--d like line 1/],
    ] as const;
    for (const [job, msg] of bad) {
      const r = cli(['batch', jsonl('jobs1.jsonl', [{ source: 'a.jpg', driving: 'd.mp4' }, job]), '-o', 'out1', '--weights', 'synthetic']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
    writeFileSync(join(tmp, 'jobs.csv'), 'source,driving,max-frames,relative\na.jpg,d.mp4,2,false\nb.jpg,d.mp4,x,true\n');
    const r = cli(['batch', 'jobs.csv', '-o', 'out1', '--weights', 'synthetic']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^liveportrait: error: jobs\.csv line 3: max-frames must be a number, got "x"\n$/);
    expect(readdirSync(tmp)).not.toContain('out1');
  });

  it('renders a job, fails a job with a missing file alone, and skips the finished job on a rerun', async () => {
    const jobs = jsonl('jobs2.jsonl', [
      { source: m('s0.jpg'), driving: m('laugh.pkl'), maxFrames: 1 },
      { source: join(tmp, 'nobody.jpg'), driving: m('laugh.pkl'), 'max-frames': 1 },
    ]);
    const out = join(tmp, 'out2');
    const first = cli(['batch', jobs, '-o', out, '--weights', 'synthetic', '--workers', '0']);
    expect(first.code, first.stderr).toBe(1);
    expect(table(first.stdout)).toEqual(
      new Map([
        [1, ['s0--laugh_pkl', 'done']],
        [2, ['nobody--laugh_pkl', 'failed']],
      ]),
    );
    expect(first.stdout).toMatch(/nobody\.jpg not found/);
    expect(first.stdout).toMatch(/2 jobs: 1 done, 0 skipped, 1 failed/);
    expect(first.stderr).toMatch(/batch: job 1\/2 \(line 1, s0--laugh_pkl\)/);
    expect(readdirSync(out).sort()).toEqual(['s0--laugh_pkl.mp4', 's0--laugh_pkl_concat.mp4']);
    expect(await frames(join(out, 's0--laugh_pkl.mp4'))).toBe(1);

    const t0 = Date.now();
    const again = cli(['batch', jobs, '-o', out, '--weights', 'synthetic', '--workers', '0']);
    expect(again.code).toBe(1);
    expect([...table(again.stdout).values()].map((r) => r[1])).toEqual(['skipped', 'failed']);
    expect(Date.now() - t0).toBeLessThan(30_000); // nothing rendered
    expect(readdirSync(out).sort()).toEqual(['s0--laugh_pkl.mp4', 's0--laugh_pkl_concat.mp4']);
  });
});

function redisServer(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const REDIS = redisServer();

function describeRedis(name: string, fn: () => void) {
  if (REDIS) return describe(name, fn);
  const reason = 'redis-server is not installed (scripts/setup-test-env.sh installs it: apt-get install -y redis-server)';
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs redis-server', () => {
        throw new Error(`${reason}; CI=true requires it`);
      });
    });
  } else {
    console.warn(`skipping '${name}': ${reason}`);
    describe.skip(name, fn);
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A process with its output collected; `lines(re)` waits for a line matching re. */
function started(args: string[]) {
  const p = spawn(process.execPath, [BIN, ...args], { cwd: tmp, detached: true, env: { ...process.env, LIVEPORTRAIT_DEBUG: '' } });
  const out = { text: '', p };
  p.stdout!.on('data', (d) => (out.text += d));
  p.stderr!.on('data', (d) => (out.text += d));
  return out;
}

async function until<T>(f: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null ? r(p.exitCode) : p.once('exit', (c) => r(c))));

describeRedis('liveportrait batch --queue and worker on Redis', () => {
  let redis: ChildProcess;
  let url: string;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    const port = await freePort();
    const dir = join(tmp, 'redis');
    mkdirSync(dir);
    redis = spawn(REDIS!, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'pipe' });
    let log = '';
    redis.stdout!.on('data', (d) => (log += d));
    await until(() => (/Ready to accept connections/.test(log) ? true : undefined), 20_000, 'redis-server');
    url = `redis://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          process.kill(-p.pid!, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
      }
    }
    redis?.kill('SIGTERM');
    if (redis) await exited(redis);
  });

  it('two workers, one killed with SIGKILL mid-job: every job done once, complete, nothing partial', async () => {
    const out = join(tmp, 'shared-out');
    const jobs = jsonl('jobs3.jsonl', [
      { source: m('s0.jpg'), driving: m('laugh.pkl'), maxFrames: 1 },
      { source: m('s9.jpg'), driving: m('laugh.pkl'), maxFrames: 1 },
      { source: m('s0.jpg'), driving: m('d11.mp4'), maxFrames: 1 },
      { source: m('s9.jpg'), driving: m('d11.mp4'), maxFrames: 1 },
    ]);
    // Small lock and stalled-check times so that a dead worker's job comes back in seconds.
    const worker = () => started(['worker', '--queue', url, '--weights', 'synthetic', '--workers', '0', '--lock-duration', '10000', '--stalled-interval', '3000']);
    const a = worker();
    const b = worker();
    procs.push(a.p, b.p);
    const batch = started(['batch', jobs, '-o', out, '--queue', url]);
    procs.push(batch.p);

    // A worker has a job in hand: let it render a few seconds, then kill it and its job's process.
    const startedRe = /liveportrait worker (\d+): job (lp-[0-9a-f]+) \(([^,]+), line \d+\): started/;
    const [victim, killedJob] = await until(() => {
      for (const w of [a, b]) {
        const hit = startedRe.exec(w.text);
        if (hit) return [w, hit[2]] as const;
      }
      return undefined;
    }, 120_000, 'a worker to start a job');
    await new Promise((r) => setTimeout(r, 8000));
    expect(victim.text).not.toMatch(new RegExp(`${killedJob}.*: (done|skipped)`));
    process.kill(-victim.p.pid!, 'SIGKILL');
    await exited(victim.p);
    const other = victim === a ? b : a;

    const code = await exited(batch.p);
    expect(code, batch.text).toBe(0);
    const rows = table(batch.text);
    expect([...rows.keys()].sort()).toEqual([1, 2, 3, 4]);
    expect([...rows.values()].map((r) => r[1])).toEqual(['done', 'done', 'done', 'done']);
    // The killed job was taken up by the other worker after its lock ran out.
    expect(other.text).toMatch(new RegExp(`job ${killedJob} .*started \\(attempt 2\\)`));
    expect(other.text).toMatch(new RegExp(`job ${killedJob} .*: done in`));
    // Each job rendered to completion exactly once (the killed worker finished none).
    const done = [...other.text.matchAll(/job (lp-[0-9a-f]+) .*: done in/g)].map((x) => x[1]);
    expect(new Set(done).size).toBe(done.length);
    expect(victim.text).not.toMatch(/: done in/);
    // The outputs: all there, once, whole; no temporary file left.
    const names = ['s0--laugh_pkl', 's9--laugh_pkl', 's0--d11', 's9--d11'];
    expect(readdirSync(out).sort()).toEqual(names.flatMap((n) => [`${n}.mp4`, `${n}_concat.mp4`]).sort());
    for (const n of names) {
      expect(await frames(join(out, `${n}.mp4`))).toBe(1);
      expect(await frames(join(out, `${n}_concat.mp4`))).toBe(1);
    }

    const status = cli(['batch', '--status', '--queue', url]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/0 queued, 0 active, 4 done, 0 failed/);
    // Running the batch again adds nothing and renders nothing.
    const again = cli(['batch', jobs, '-o', out, '--queue', url]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/0 added, 0 failed before and retried, 0 queued already, 4 finished already/);
    expect([...table(again.stdout).values()].map((r) => r[1])).toEqual(['done', 'done', 'done', 'done']);

    process.kill(-other.p.pid!, 'SIGTERM');
    expect(await exited(other.p)).toBe(143);
  });
});
