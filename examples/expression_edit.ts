/**
 * An expression edit by keypoint deltas: the source's expression δ moved at
 * chosen implicit keypoints (here the mouth corners up and the lips apart),
 * rendered through stitching, W and G, and pasted back. The reference's
 * sliders are the same kind of edit (src/motion/edits.ts).
 *
 *   npx tsx examples/expression_edit.ts PHOTO.jpg OUT.jpg
 */
import { initBackend } from 'liveportrait-tfjs';
import { loadLivePortrait, readImage, writeImage } from 'liveportrait-tfjs/node';

const [photo, output] = process.argv.slice(2);
if (!photo || !output) {
  console.error('usage: npx tsx examples/expression_edit.ts PHOTO.jpg OUT.jpg');
  process.exit(2);
}

await initBackend();
const lp = await loadLivePortrait();
const portrait = await lp.preparePortrait(await readImage(photo));
try {
  const edited = await lp.editPortrait(portrait, {
    expression: [
      { index: 17, delta: [0, -0.004, 0] }, // a mouth corner up (keypoint 17: lips)
      { index: 20, delta: [0, -0.004, 0] }, // the other side
      { index: 19, delta: [0, 0.006, 0] }, // the lower lip down
    ],
    yaw: 5, // and the head turned by 5 degrees
  });
  await writeImage(output, edited.image);
  console.log(`wrote ${output} (${edited.image.width}x${edited.image.height}), the face edited by keypoint deltas`);
} finally {
  portrait.dispose();
  await lp.dispose();
}
