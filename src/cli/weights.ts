/** `liveportrait weights download|verify|convert`. */
import type { Argv } from 'yargs';
import { CliError, userMessage } from '../node/app/errors.js';
import { Progress } from '../node/app/progress.js';
import { appearanceFeatureExtractorSpecs } from '../models/appearance_feature_extractor.js';
import { motionExtractorSpecs } from '../models/motion_extractor.js';
import { spadeGeneratorSpecs } from '../models/spade_generator.js';
import { STITCHING_CHECKPOINT_NAMES, stitchingRetargetingSpecs, type StitchingPart } from '../models/stitching_retargeting_module.js';
import { warpingModuleSpecs } from '../models/warping_module.js';
import { downloadWeights, verifyWeights, type VerifyOptions } from '../node/download.js';
import { type WeightSet } from '../models/checkpoints.js';
import { convertWeights } from '../node/weights.js';
import { say } from './common.js';
import { MODULES, type ModuleName } from '../models/registry.js';

interface WArgs {
  dir: string;
  set: WeightSet;
  quiet: boolean;
  modules?: string[];
}

function modulesOf(a: WArgs): ModuleName[] | undefined {
  if (!a.modules?.length) return undefined;
  for (const m of a.modules) if (!(MODULES as readonly string[]).includes(m)) throw new CliError(`unknown module '${m}' in --modules; use some of ${MODULES.join(', ')}`, { exitCode: 2 });
  return a.modules as ModuleName[];
}

/** Full key and shape lists of the five networks (stitching keys as converted). */
export function verifySpecs(): VerifyOptions['specs'] {
  const st = stitchingRetargetingSpecs();
  return {
    appearance_feature_extractor: appearanceFeatureExtractorSpecs(),
    motion_extractor: motionExtractorSpecs(),
    warping_module: warpingModuleSpecs(),
    spade_generator: spadeGeneratorSpecs(),
    stitching_retargeting_module: (Object.keys(st) as StitchingPart[]).flatMap((p) => st[p].map((s) => ({ key: `${STITCHING_CHECKPOINT_NAMES[p]}.${s.key}`, shape: s.shape }))),
  };
}

const dirOption = { alias: 'dir', type: 'string' as const, default: 'weights', describe: 'The weights directory.' };
const setOption = { choices: ['human', 'animal'] as const, default: 'human' as const, describe: 'Which official set.' };
const modulesOption = { type: 'array' as const, string: true as const, describe: `Only these modules (${MODULES.join(', ')}). [default: all five]` };

export const weightsCommand = {
  command: 'weights <action>',
  describe: 'Download, verify or convert the official LivePortrait weights',
  builder: (y: Argv) =>
    y
      .usage(
        [
          'liveportrait weights download [--dir DIR] [--set human|animal]',
          'liveportrait weights verify   [--dir DIR] [--set human|animal]',
          'liveportrait weights convert  --from SRC [--dir DIR] [--set human|animal]',
          '',
          'download: fetch the official checkpoints from HuggingFace (KwaiVGI/LivePortrait; $HF_ENDPOINT',
          '          overrides the server) with resume and sha256 checks, and convert them to safetensors.',
          'verify:   check every module is present, readable, has the expected keys and shapes, and',
          '          matches the sha256 recorded at download.',
          'convert:  convert .pth checkpoints (flat or the official layout) in SRC to safetensors in DIR.',
        ].join('\n'),
      )
      .positional('action', { choices: ['download', 'verify', 'convert'] as const, describe: 'What to do.' })
      .option('dir', { ...dirOption, alias: undefined })
      .option('from', { type: 'string', describe: 'convert: the folder holding the .pth files.' })
      .option('set', setOption)
      .option('modules', modulesOption)
      .option('convert', { type: 'boolean', default: true, describe: 'download: convert to safetensors afterwards (--no-convert keeps only the .pth).' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress output.' })
      .example('liveportrait weights download --dir weights', 'about 500 MB, resumable')
      .example('liveportrait weights verify --dir weights', 'exit code 1 and one line per problem if anything is wrong')
      .example('liveportrait weights convert --from pretrained_weights --dir weights', 'from a checkout of the reference'),
  handler: async (a: WArgs & { action: string; from?: string; convert: boolean }) => {
    const modules = modulesOf(a);
    if (a.action === 'download') {
      let bar: Progress | undefined;
      let current = '';
      const res = await downloadWeights(a.dir, {
        set: a.set,
        modules,
        convert: a.convert,
        onProgress: (p) => {
          if (a.quiet) return;
          if (p.phase === 'downloading') {
            if (current !== p.file) {
              bar?.finish();
              current = p.file;
              bar = new Progress(`Downloading ${p.file}`, p.total ? Math.ceil(p.total / 2 ** 20) : undefined, { unit: 'MiB' });
            }
            const mib = Math.floor(p.received / 2 ** 20);
            if (mib > bar!.count) bar!.tick(mib - bar!.count);
          } else if (p.phase !== 'listing') {
            if (p.phase === 'verified' || p.phase === 'skipped') {
              bar?.finish();
              bar = undefined;
              current = '';
            }
            process.stderr.write(`liveportrait: ${p.module}: ${p.phase} ${p.file}\n`);
          }
        },
      });
      bar?.finish();
      say(`liveportrait: ${res.files.length} file(s) in ${res.dir} (${res.files.filter((f) => f.downloaded).length} downloaded), ${res.converted.length} converted`);
    } else if (a.action === 'verify') {
      const res = await verifyWeights(a.dir, { set: a.set, modules, specs: verifySpecs() });
      for (const m of res.modules) {
        const line = m.ok ? `ok       ${m.module} (${m.path}, ${m.tensors} tensors, sha256 ${m.sha256})` : `PROBLEM  ${m.module}: ${m.problems.join('; ')}`;
        if (!a.quiet || !m.ok) process.stderr.write(`${line}\n`);
      }
      if (!res.ok) {
        const bad = res.modules.filter((m) => !m.ok);
        throw new CliError(`weights in ${res.dir} are incomplete or corrupt (${bad.map((m) => `${m.module}: ${m.problems[0]}`).join('; ')}); run \`liveportrait weights download --dir ${res.dir}${a.set === 'animal' ? ' --set animal' : ''}\` again`);
      }
      say(`liveportrait: weights in ${res.dir} are complete (${res.modules.length} modules)`);
    } else {
      if (!a.from) throw new CliError('weights convert needs --from SRC, the folder holding the .pth checkpoints', { exitCode: 2 });
      let res;
      try {
        res = convertWeights(a.from, a.dir, {
          set: a.set,
          modules,
          onProgress: (p) => {
            if (!a.quiet && p.phase === 'done') process.stderr.write(`liveportrait: ${p.index + 1}/${p.total} ${p.module}: ${p.from} → ${p.to}\n`);
          },
        });
      } catch (e) {
        throw new CliError(userMessage(e), { cause: e });
      }
      say(`liveportrait: converted ${res.length} module(s) into ${a.dir}`);
    }
  },
};
