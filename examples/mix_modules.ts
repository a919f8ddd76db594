/**
 * Networks mixed across weight sets: every module from one set, the motion
 * extractor M from another (say, the human F, W, G and S with the animal
 * M), then one frame of a photo driven by a motion template.
 *
 *   npx tsx examples/mix_modules.ts PHOTO.jpg TEMPLATE.pkl OUT.jpg [M_WEIGHTS]
 *
 * M_WEIGHTS: a weights directory, or a .pth/.safetensors file of
 * motion_extractor (default: the synthetic M of seed 2, to run offline).
 */
import { Driving, initBackend, syntheticModuleWeights } from 'liveportrait-tfjs';
import { loadLivePortrait, loadTemplate, readImage, writeImage } from 'liveportrait-tfjs/node';

const [photo, template, output, mWeights] = process.argv.slice(2);
if (!photo || !template || !output) {
  console.error('usage: npx tsx examples/mix_modules.ts PHOTO.jpg TEMPLATE.pkl OUT.jpg [M_WEIGHTS]');
  process.exit(2);
}

await initBackend();
const lp = await loadLivePortrait(undefined, {
  modules: { motion_extractor: mWeights ?? syntheticModuleWeights('motion_extractor', 2) },
  onProgress: ({ module, source }) => console.log(`${module}: ${source}`),
});
const portrait = await lp.preparePortrait(await readImage(photo));
try {
  const tpl = loadTemplate(template);
  const one = { fps: tpl.fps, frames: tpl.frames.slice(0, 1) }; // one picture's motion
  for await (const frame of lp.animatePortrait(portrait, Driving.template(one))) await writeImage(output, frame.image);
  console.log(`wrote ${output} with M from ${mWeights ?? 'synthetic seed 2'}`);
} finally {
  portrait.dispose();
  await lp.dispose();
}
