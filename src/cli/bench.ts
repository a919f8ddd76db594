/**
 * `liveportrait bench`: the network benchmark of scripts/bench.ts, which is
 * a source-checkout script (not built into dist): run through tsx when both
 * are there, otherwise say it is not available.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { CliError } from '../node/app/errors.js';

function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The command; `argv` is the whole command line (options after 'bench' are passed on). */
export const benchCommand = (argv: string[]) => ({
  command: 'bench',
  describe: 'Time the five networks on the active backend (synthetic weights; source checkouts only)',
  builder: (y: Argv) =>
    y
      .usage(
        [
          'liveportrait bench [--backend B] [--runs N] [--warmup N] [--only F,M,W,G,S] [--batch N] [--seed N] [--json]',
          '                   [--pipeline FRAMES] [--profile [--dry-run]]',
          '',
          'Runs scripts/bench.ts (needs a source checkout with dev dependencies: `npm ci`); all options are',
          'passed through. Reports ms per call, GMAC/s and peak memory per network. --profile: the GPU cost',
          'report instead (kernels, GPU dispatches, bytes created, host reads and uploads, top kernels) per',
          'network and, with --pipeline, for one frame; --dry-run counts webgpu programs without running them.',
        ].join('\n'),
      )
      .strict(false)
      .help(false)
      .version(false),
  handler: async () => {
    const root = packageRoot();
    const script = join(root, 'scripts', 'bench.ts');
    let tsx: string | undefined;
    try {
      tsx = createRequire(join(root, 'package.json')).resolve('tsx');
    } catch {
      tsx = undefined;
    }
    if (!existsSync(script) || !tsx)
      throw new CliError(`bench is not available in this installation (${existsSync(script) ? 'tsx is not installed' : `${script} is missing`}); run \`npm run bench\` from a source checkout after \`npm ci\``);
    const i = argv.indexOf('bench');
    const rest = i >= 0 ? argv.slice(i + 1) : [];
    const code = await new Promise<number>((res) => {
      const child = spawn(process.execPath, ['--import', 'tsx', script, ...rest], { cwd: root, stdio: 'inherit' });
      child.on('close', (c) => res(c ?? 1));
      child.on('error', () => res(1));
    });
    if (code !== 0) throw new CliError(`bench failed (exit ${code})`, { exitCode: code });
  },
});
