/** `liveportrait parity`: compare our networks with a PyTorch reference dump, layer by layer. */
import type { Argv } from 'yargs';
import { CliError, UsageError } from '../node/app/errors.js';
import { ensureBackend } from '../node/app/model.js';
import { directoryWeights, fixtureWeights, openFixtureDir } from '../node/parity.js';
import { compareParity } from '../parity/compare.js';
import { PARITY_MODULES } from '../parity/cases.js';
import { formatParityTable, summarizeParity } from '../parity/report.js';
import { logger, say } from './common.js';

interface ParityArgs {
  fixtures: string;
  weights?: string;
  seed?: number;
  set: 'human' | 'animal';
  backend?: string;
  json: boolean;
  modules?: string[];
  quiet: boolean;
}

export const parityCommand = {
  command: 'parity',
  describe: 'Compare our networks with a PyTorch reference dump (tools/reference/dump.py), every output and tap',
  builder: (y: Argv) =>
    y
      .usage(
        [
          'liveportrait parity --fixtures DIR [--weights synthetic|DIR] [--seed N] [--backend B] [--modules F,W,...] [--json]',
          '',
          "Runs our networks on the dump's inputs with the dump's weights and prints one row per output and",
          'tap: module, tensor, shape, max abs error, max relative error (max abs / max |reference|), the',
          "tolerance (the test suite's, src/parity/tolerances.ts) and pass/fail. Taps our port does not expose",
          'are listed as "not compared". Exit status 1 when any row fails.',
        ].join('\n'),
      )
      .option('fixtures', { type: 'string', demandOption: true, describe: 'The dump directory (dump.py --out), e.g. ../shared/parity/seed1.' })
      .option('weights', {
        type: 'string',
        describe: "'synthetic': the rule with the fixture's weights_manifest.json seed and explicit_weights.safetensors; or a real weights directory. [default: synthetic]",
      })
      .option('seed', { type: 'number', describe: "Seed of --weights synthetic. [default: the manifest's]" })
      .option('set', { choices: ['human', 'animal'] as const, default: 'human' as const, describe: 'Which official set a --weights directory holds.' })
      .option('backend', { type: 'string', choices: ['auto', 'tensorflow', 'wasm', 'cpu', 'webgpu'], describe: 'TensorFlow.js backend. [default: $LIVEPORTRAIT_BACKEND, else auto]' })
      .option('modules', {
        type: 'array',
        string: true,
        describe: `Only these (${PARITY_MODULES.map((m) => m.alias).join(', ')}; commas or spaces). Naming pipeline also renders its frames (minutes). [default: every file in the dump]`,
      })
      .option('json', { type: 'boolean', default: false, describe: 'The report as JSON on stdout.' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress lines on stderr.' })
      .example('liveportrait parity --fixtures ../shared/parity/seed1 --modules S,camera,ops', 'the small modules, seconds')
      .example('liveportrait parity --fixtures /tmp/dump --modules W,G', 'W and G with every tap of the dump'),
  handler: async (a: ParityArgs) => {
    const log = logger(a);
    if (a.seed !== undefined && (!Number.isInteger(a.seed) || a.seed < 0)) throw new UsageError(`--seed must be a non-negative integer, got ${a.seed}`);
    const modules = a.modules?.flatMap((m) => String(m).split(',')).map((m) => m.trim()).filter(Boolean);
    const fixture = openFixtureDir(a.fixtures);
    const weights = !a.weights || a.weights === 'synthetic' ? fixtureWeights(a.fixtures, a.seed) : directoryWeights(a.weights, a.set);
    await ensureBackend({ backend: a.backend === 'auto' ? undefined : a.backend }, a.quiet ? undefined : log);
    const report = await compareParity(fixture, weights, {
      modules,
      onModule: (stem, rows, s) => log(`${stem}: ${rows.filter((r) => r.status === 'pass').length}/${rows.length} passed (${s.toFixed(1)} s)`),
    });
    if (a.json) say(JSON.stringify(report, null, 2));
    else {
      say(formatParityTable(report.rows));
      say(summarizeParity(report));
    }
    const failed = report.rows.filter((r) => r.status === 'fail');
    if (failed.length)
      throw new CliError(`parity: ${failed.length} of ${report.rows.length} tensors failed: ${failed.map((r) => `${r.module} ${r.tensor}`).join(', ')}`);
  },
};
