/**
 * The library's errors, so callers branch on the class, not on message text.
 * Every message is one line that names the file or argument and what to do.
 *
 * - InputError: an input the caller gave is wrong (an image, a file, a
 *   format, an option). Format errors (safetensors, .pth, motion templates)
 *   are InputErrors too.
 * - WeightsError: weights missing, incomplete, or for another network.
 * - BackendError: the tfjs backend asked for cannot start.
 */
export class LivePortraitError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A message that stays one line whatever a hostile file puts in it (names
 * of zip entries, pickle keys, tensor names): line breaks become spaces and
 * other control characters (terminal escapes) '?'.
 */
function printable(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' || c === '\r' || c === '\t' ? ' ' : '?'));
}

export class InputError extends LivePortraitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(printable(message), options);
  }
}

export class WeightsError extends LivePortraitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(printable(message), options);
  }
}

export class BackendError extends LivePortraitError {}

/** Image-driven relative motion needs the reference's neutral-lip expression (lip_array.pkl), and none was given. */
export class LipArrayMissingError extends WeightsError {}

/**
 * No face was found where one is needed: in the source (`input: 'source'`)
 * or the driving input, an image or a video. Apps add their own hint (a
 * flag to place the crop, a toggle to turn cropping off). `forRatios`: the
 * face was needed only for its eye and lip ratios (eye or lip retargeting).
 */
export class NoFaceError extends InputError {
  constructor(
    readonly input: 'source' | 'driving',
    readonly kind: 'image' | 'video',
    readonly file: string,
    readonly forRatios = false,
  ) {
    super(`no face found in the ${input}${kind === 'video' ? ' video' : input === 'driving' ? ' image' : ''} ${file}${forRatios ? ', but eye and lip retargeting need the driving face' : ''}`);
  }
}

/** A face index beyond the faces found (largest first, from 0). */
export class FaceIndexError extends InputError {
  constructor(
    readonly index: number,
    readonly found: number,
    readonly file: string,
  ) {
    super(`face index ${index} is out of range: ${found} face(s) found in ${file} (largest first, from 0)`);
  }
}
