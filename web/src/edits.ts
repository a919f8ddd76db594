/** The image-editing panel's sliders as the library's RetargetEdit (also used by the browser test). */
import type { RetargetEdit } from '../../src/index.js';
import type { EditParams } from './protocol.js';

/** The slider values as the library's RetargetEdit. */
export function toRetargetEdit(e: EditParams, info: { eyeRatio?: ArrayLike<number>; lipRatio?: number }): RetargetEdit {
  return {
    eyeRatio: info.eyeRatio ? e.eyeRatio : undefined,
    lipRatio: info.lipRatio !== undefined ? e.lipRatio : undefined,
    pitch: e.pitch,
    yaw: e.yaw,
    roll: e.roll,
    movX: e.movX,
    movY: e.movY,
    movZ: e.movZ,
    smile: e.smile,
    wink: e.wink,
    eyebrow: e.eyebrow,
    eyeballX: e.eyeballX,
    eyeballY: e.eyeballY,
    lipVariation: [e.lip0, e.lip1, e.lip2, e.lip3] as [number, number, number, number],
    stitching: e.stitching,
  };
}

