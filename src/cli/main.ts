/**
 * The `liveportrait` command line. `run(argv)` returns the exit code:
 * 0 success, 1 a failed run (one-line error naming the file and the fix),
 * 2 bad usage. Stack traces only with LIVEPORTRAIT_DEBUG=1.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type CommandModule } from 'yargs';
import { UsageError, reportError } from '../node/app/errors.js';
import { animateCommand } from './animate.js';
import { batchCommand, workerCommand } from './batch.js';
import { benchCommand } from './bench.js';
import { parityCommand } from './parity.js';
import { retargetCommand } from './retarget.js';
import { serveCommand } from './serve.js';
import { templateCommand } from './template.js';
import { weightsCommand } from './weights.js';
import { ExitStatus, recordCommandLine } from './supervise.js';

const DESCRIPTION = [
  'liveportrait - animate portraits (LivePortrait, with stitching and retargeting control) in TypeScript on TensorFlow.js',
  '',
  'Usage: liveportrait <command> [options]   (liveportrait <command> --help for its options)',
].join('\n');

const EPILOGUE = [
  'Weights: `liveportrait weights download` fetches the official ones (about 500 MB) into the HuggingFace',
  'cache (shared with the Python tools; `liveportrait weights where` says what is used);',
  '`--weights synthetic --seed N` runs every command offline with deterministic random weights.',
  'Environment: LIVEPORTRAIT_WEIGHTS (weights directory), HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_HUB_OFFLINE,',
  'HF_TOKEN (as in the Python hub), LIVEPORTRAIT_BACKEND (tensorflow, wasm, cpu,',
  'webgpu), LIVEPORTRAIT_FFMPEG (ffmpeg binary), LIVEPORTRAIT_DEBUG=1 (stack traces on errors).',
  'Caps on hostile files (README, "Hostile inputs"): LIVEPORTRAIT_MAX_PIXELS (photo or video frame,',
  'default 100000000), LIVEPORTRAIT_MAX_FRAMES (video or template, default 100000),',
  'LIVEPORTRAIT_MAX_INFLATE_MB (a deflated .pth record, default 512). Pickles run no code.',
  'Exit status: 0 done, 1 failed (one line on stderr naming the file and the fix), 2 bad usage,',
  '130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM); an interrupted run leaves no output.',
].join('\n');

/** This package's version, from its own package.json (not the nearest one: that may be a host project's). */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The argument given for option `key` (or an alias) as typed, for error messages. */
function typed(argv: string[], keys: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    for (const k of keys) {
      const flag = k.length === 1 ? `-${k}` : `--${k}`;
      if (argv[i] === flag) return argv[i + 1];
      if (argv[i].startsWith(`${flag}=`)) return argv[i].slice(flag.length + 1);
    }
  }
  return undefined;
}

/** Numeric options given something that is not a number: say what was typed, not "NaN". */
function checkNumbers(argv: string[]) {
  return (args: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(args)) {
      if (typeof v !== 'number' || !Number.isNaN(v) || /[A-Z]/.test(k) || k.length === 1) continue;
      const raw = typed(argv, [k]);
      throw new UsageError(`--${k} must be a number, got ${raw === undefined ? 'nothing' : `'${raw}'`}`);
    }
  };
}

/** Run the command line; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  let code = 0;
  recordCommandLine(argv);
  const parser = yargs(argv)
    .scriptName('liveportrait')
    .usage(DESCRIPTION)
    .command(animateCommand)
    .command(batchCommand as unknown as CommandModule)
    .command(workerCommand as unknown as CommandModule)
    .command(retargetCommand)
    .command(templateCommand)
    .command(weightsCommand as unknown as CommandModule)
    .command(benchCommand(argv))
    .command(parityCommand as unknown as CommandModule)
    .command(serveCommand)
    .demandCommand(1, 'name a command: animate, batch, worker, retarget, template, weights, bench, parity or serve')
    .strict()
    .recommendCommands()
    .epilogue(EPILOGUE)
    .example('liveportrait animate -s photo.jpg -d driving.mp4', 'animate a photo')
    .example('liveportrait batch jobs.jsonl -o out', 'many animations, resumable (--queue: on many machines)')
    .example('liveportrait retarget -s photo.jpg --eye-ratio 0 -o closed.jpg', 'close the eyes')
    .example('liveportrait template -d driving.mp4 -o driving.lpmotion.safetensors', 'save a motion template')
    .example('liveportrait weights download', 'get the official weights')
    .example('liveportrait parity --fixtures DIR', 'compare with a PyTorch reference dump')
    .example('liveportrait serve', 'the web page at http://127.0.0.1:8890/')
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    .middleware(checkNumbers(argv), true)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(`${msg} (see liveportrait --help)`);
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    code = e instanceof ExitStatus ? e.code : reportError(e);
  }
  return code;
}

function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const code = await run(process.argv.slice(2));
  process.exit(code);
}
