/**
 * Convert the official LivePortrait .pth checkpoints to safetensors.
 *
 *   npx tsx scripts/convert/convert.ts <src-dir> <out-dir> [--set human|animal]
 *   npm run convert -- <src-dir> <out-dir> [--set human|animal]
 *
 * <src-dir> holds the five .pth files, flat or in the official layout
 * (liveportrait/base_models/..., as `huggingface-cli download KwaiVGI/LivePortrait` makes).
 * --modules converts only the listed modules.
 */
import { convertWeights } from '../../src/node/weights.js';
import { type WeightSet } from '../../src/models/checkpoints.js';
import { MODULES, type ModuleName } from '../../src/models/registry.js';

const USAGE = 'usage: convert <src-dir> <out-dir> [--set human|animal] [--modules name,name,...]';

function parseArgs(argv: string[]): { src: string; out: string; set: WeightSet; modules?: ModuleName[] } {
  const pos: string[] = [];
  let set: WeightSet = 'human';
  let modules: ModuleName[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--set' || a.startsWith('--set=')) {
      const v = a === '--set' ? argv[++i] : a.slice('--set='.length);
      if (v !== 'human' && v !== 'animal') throw new Error(`--set must be human or animal, not '${v ?? ''}'`);
      set = v;
    } else if (a === '--modules' || a.startsWith('--modules=')) {
      const v = (a === '--modules' ? argv[++i] : a.slice('--modules='.length)) ?? '';
      modules = v.split(',').filter(Boolean) as ModuleName[];
      const bad = modules.filter((m) => !(MODULES as readonly string[]).includes(m));
      if (bad.length || !modules.length) throw new Error(`--modules takes a comma-separated list of ${MODULES.join(', ')}${bad.length ? `; unknown: ${bad.join(', ')}` : ''}`);
    } else if (a.startsWith('-')) throw new Error(`unknown option '${a}'`);
    else pos.push(a);
  }
  if (pos.length !== 2) throw new Error(`expected <src-dir> <out-dir>, got ${pos.length} argument(s)`);
  return { src: pos[0], out: pos[1], set, modules };
}

function main(): void {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`convert: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const t0 = Date.now();
  try {
    const results = convertWeights(args.src, args.out, {
      set: args.set,
      modules: args.modules,
      onProgress: (p) => {
        if (p.phase === 'start') console.log(`[${p.index + 1}/${p.total}] ${p.module}: ${p.from} → ${p.to}`);
        else console.log(`[${p.index + 1}/${p.total}] ${p.module}: ${p.tensors} tensors, ${((p.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB`);
      },
    });
    const mib = results.reduce((a, r) => a + r.bytes, 0) / 2 ** 20;
    console.log(`converted ${results.length} modules (${mib.toFixed(1)} MiB) into ${args.out} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    console.error(`convert: ${(e as Error).message}`);
    process.exit(1);
  }
}

main();
