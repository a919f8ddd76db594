/**
 * The parity kit's comparer (core, no Node): our networks on a reference
 * dump (tools/reference/dump.py), every output and tap compared. The CLI is
 * `liveportrait parity`; files are read by src/node/parity.ts.
 */
export { compareParity, selectModules, tensorErrors, toOptions, withRatios, type OptionSet, PARITY_MODULES, type CompareOptions, type ParityReport, type ParityRow, type RowStatus } from './compare.js';
export { FixtureError, manifestWeights, parseTapName, parseSlice, tapMetadata, type FixtureFile, type ParityFixture, type ParityWeights, type TapName, type WeightsManifest } from './fixture.js';
export { TOLERANCES, toleranceFor, bound, describeTolerance, type Tolerance } from './tolerances.js';
export { formatParityTable, summarizeParity } from './report.js';
