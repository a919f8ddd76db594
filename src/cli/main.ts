/**
 * The `liveportrait` command line. `run(argv)` returns the exit code:
 * 0 success, 1 a failed run (one-line error naming the file and the fix),
 * 2 bad usage. Stack traces only with LIVEPORTRAIT_DEBUG=1.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yargs, { type CommandModule } from 'yargs';
import { UsageError, reportError } from '../node/app/errors.js';
import { animateCommand } from './animate.js';
import { benchCommand } from './bench.js';
import { parityCommand } from './parity.js';
import { retargetCommand } from './retarget.js';
import { serveCommand } from './serve.js';
import { templateCommand } from './template.js';
import { weightsCommand } from './weights.js';

const DESCRIPTION = [
  'liveportrait - animate portraits (LivePortrait, with stitching and retargeting control) in TypeScript on TensorFlow.js',
  '',
  'Usage: liveportrait <command> [options]   (liveportrait <command> --help for its options)',
].join('\n');

const EPILOGUE = [
  'Weights: `liveportrait weights download` fetches the official ones (about 500 MB) into ./weights;',
  '`--weights synthetic --seed N` runs every command offline with deterministic random weights.',
  'Environment: LIVEPORTRAIT_WEIGHTS (weights directory), LIVEPORTRAIT_BACKEND (tensorflow, wasm, cpu,',
  'webgpu), LIVEPORTRAIT_FFMPEG (ffmpeg binary), LIVEPORTRAIT_DEBUG=1 (stack traces on errors).',
  'Exit status: 0 done, 1 failed (one line on stderr naming the file and the fix), 2 bad usage.',
].join('\n');

/** Run the command line; resolves to the exit code. */
export async function run(argv: string[]): Promise<number> {
  let code = 0;
  const parser = yargs(argv)
    .scriptName('liveportrait')
    .usage(DESCRIPTION)
    .command(animateCommand)
    .command(retargetCommand)
    .command(templateCommand)
    .command(weightsCommand as unknown as CommandModule)
    .command(benchCommand(argv))
    .command(parityCommand as unknown as CommandModule)
    .command(serveCommand)
    .demandCommand(1, 'name a command: animate, retarget, template, weights, bench, parity or serve')
    .strict()
    .recommendCommands()
    .epilogue(EPILOGUE)
    .example('liveportrait animate -s photo.jpg -d driving.mp4', 'animate a photo')
    .example('liveportrait retarget -s photo.jpg --eye-ratio 0 -o closed.jpg', 'close the eyes')
    .example('liveportrait template -d driving.mp4 -o driving.lpmotion.safetensors', 'save a motion template')
    .example('liveportrait weights download', 'get the official weights')
    .example('liveportrait parity --fixtures DIR', 'compare with a PyTorch reference dump')
    .example('liveportrait serve', 'the web page at http://127.0.0.1:8890/')
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(`${msg} (see liveportrait --help)`);
    });
  try {
    await parser.parseAsync();
  } catch (e) {
    code = reportError(e);
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
