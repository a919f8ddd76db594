/** `liveportrait weights download|verify|convert`. */
import type { Argv } from 'yargs';
import { CliError, userMessage } from '../node/app/errors.js';
import { Progress } from '../node/app/progress.js';
import { appearanceFeatureExtractorSpecs } from '../models/appearance_feature_extractor.js';
import { motionExtractorSpecs } from '../models/motion_extractor.js';
import { spadeGeneratorSpecs } from '../models/spade_generator.js';
import { STITCHING_CHECKPOINT_NAMES, stitchingRetargetingSpecs, type StitchingPart } from '../models/stitching_retargeting_module.js';
import { warpingModuleSpecs } from '../models/warping_module.js';
import { downloadWeights, verifyWeights, type DownloadProgress, type VerifyOptions } from '../node/download.js';
import { describeWeightsSourceInFull, hubConfig, repoCacheDir, resolveWeightsSource } from '../node/hub.js';
import { fetchOfficialWeights } from '../node/hub_fetch.js';
import { type WeightSet } from '../models/checkpoints.js';
import { convertWeights } from '../node/weights.js';
import { say } from './common.js';
import { MODULES, type ModuleName } from '../models/registry.js';

interface WArgs {
  dir?: string;
  weights?: string;
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

const dirOption = { type: 'string' as const, describe: 'A plain weights folder. [default: download and where: the HuggingFace cache; verify: the weights animate would use; convert: ./weights]' };
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
          'liveportrait weights where    [--weights DIR] [--set human|animal]',
          'liveportrait weights verify   [--dir DIR] [--set human|animal]',
          'liveportrait weights convert  --from SRC [--dir DIR] [--set human|animal]',
          '',
          'download: fetch the official checkpoints from HuggingFace (KwaiVGI/LivePortrait) with resume and',
          '          sha256 checks into the HuggingFace cache the Python tools share ($HF_HOME/hub), or with',
          '          --dir into a plain folder, converted to safetensors there. HF_ENDPOINT, HF_HOME,',
          '          HF_HUB_CACHE, HF_HUB_OFFLINE and HF_TOKEN apply as in the Python hub.',
          'where:    which weights the other commands would use (--weights, $LIVEPORTRAIT_WEIGHTS,',
          '          ./weights, else the HuggingFace cache), file by file.',
          'verify:   check every module is present, readable, has the expected keys and shapes, and',
          '          matches the sha256 recorded at download.',
          'convert:  convert .pth checkpoints (flat or the official layout) in SRC to safetensors in DIR.',
        ].join('\n'),
      )
      .positional('action', { choices: ['download', 'where', 'verify', 'convert'] as const, describe: 'What to do.' })
      .option('dir', dirOption)
      .option('weights', { type: 'string', describe: 'where: a weights folder to describe instead of the default order.' })
      .option('from', { type: 'string', describe: 'convert: the folder holding the .pth files.' })
      .option('set', setOption)
      .option('modules', modulesOption)
      .option('convert', { type: 'boolean', default: true, describe: 'download --dir: convert to safetensors afterwards (--no-convert keeps only the .pth; the cache is never converted).' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress output.' })
      .example('liveportrait weights download', 'about 500 MB into the HuggingFace cache, resumable; nothing when the Python tools already fetched them')
      .example('liveportrait weights download --dir weights', 'a plain folder, converted to safetensors')
      .example('liveportrait weights where', 'which files animate would load')
      .example('liveportrait weights verify --dir weights', 'exit code 1 and one line per problem if anything is wrong')
      .example('liveportrait weights convert --from pretrained_weights --dir weights', 'from a checkout of the reference'),
  handler: async (a: WArgs & { action: string; from?: string; convert: boolean }) => {
    const modules = modulesOf(a);
    if (a.action === 'download') {
      let bar: Progress | undefined;
      let current = '';
      const onProgress = (p: DownloadProgress): void => {
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
      };
      if (a.dir !== undefined) {
        const res = await downloadWeights(a.dir, { set: a.set, modules, convert: a.convert, onProgress });
        bar?.finish();
        say(`liveportrait: ${res.files.length} file(s) in ${res.dir} (${res.files.filter((f) => f.downloaded).length} downloaded), ${res.converted.length} converted`);
      } else {
        const res = await fetchOfficialWeights({ set: a.set, modules, onProgress });
        bar?.finish();
        say(`liveportrait: ${res.files.length} file(s) in the HuggingFace cache ${res.root} (${res.files.filter((f) => f.downloaded).length} downloaded); the commands find them there`);
      }
    } else if (a.action === 'where') {
      let src;
      try {
        src = resolveWeightsSource({ weights: a.weights ?? a.dir, set: a.set });
      } catch (e) {
        throw new CliError(userMessage(e), { cause: e });
      }
      for (const line of describeWeightsSourceInFull(src)) say(line);
      const cfg = hubConfig();
      say(`  HuggingFace cache: ${repoCacheDir(cfg)}; endpoint ${cfg.endpoint}${cfg.offline ? ' (HF_HUB_OFFLINE: no requests)' : ''}${cfg.token ? '; a token is set' : ''}`);
    } else if (a.action === 'verify') {
      let dir = a.dir;
      if (dir === undefined) {
        try {
          dir = resolveWeightsSource({ set: a.set }).dir;
        } catch (e) {
          throw new CliError(userMessage(e), { cause: e });
        }
      }
      const res = await verifyWeights(dir, { set: a.set, modules, specs: verifySpecs() });
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
        res = convertWeights(a.from, a.dir ?? 'weights', {
          set: a.set,
          modules,
          onProgress: (p) => {
            if (!a.quiet && p.phase === 'done') process.stderr.write(`liveportrait: ${p.index + 1}/${p.total} ${p.module}: ${p.from} → ${p.to}\n`);
          },
        });
      } catch (e) {
        throw new CliError(userMessage(e), { cause: e });
      }
      say(`liveportrait: converted ${res.length} module(s) into ${a.dir ?? 'weights'}`);
    }
  },
};
