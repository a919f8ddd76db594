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
