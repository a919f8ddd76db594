/**
 * Imported first by the GPU kit's entry: everything that libraries print
 * with console.log (tfjs's Node banner among them) goes to stderr, so that
 * the kit's stdout holds its one JSON line alone.
 */
console.log = (...a: unknown[]) => console.error(...a);
console.info = (...a: unknown[]) => console.error(...a);
export {};
