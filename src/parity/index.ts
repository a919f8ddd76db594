/**
 * `liveportrait-tfjs/parity`: the parity kit (core, no Node). Our networks
 * on a reference dump (tools/reference/dump.py): every output and tap
 * compared with the tolerance table, one row each. The CLI is `liveportrait
 * parity`; directories are read by `openFixtureDir`, `fixtureWeights` and
 * `directoryWeights` of `liveportrait-tfjs/node`.
 *
 * @example
 * import { compareParity, formatParityTable } from 'liveportrait-tfjs/parity';
 * import { openFixtureDir, fixtureWeights } from 'liveportrait-tfjs/node';
 * const report = await compareParity(openFixtureDir('dump'), fixtureWeights('dump'), { modules: ['W', 'G'] });
 * console.log(formatParityTable(report.rows));
 */
export { compareParity, selectModules, type CompareOptions, type ParityReport } from './compare.js';
export { FIXED_OUTPUTS, FIXTURE_INPUTS, PARITY_MODULES, TAPPED, TO_NCDHW, TO_NCHW, TO_NDHWC, TO_NHWC, hostToTensor, pipelineOptionSets, toOptions, withRatios, type FixedOutput, type OptionSet } from './cases.js';
export { checkTensor, compareFrames, judged, strided, tensorErrors, type ParityRow, type RowStatus, type TensorErrors } from './judge.js';
export { FixtureError, manifestWeights, parseTapName, parseSlice, tapMetadata, type FixtureFile, type ParityFixture, type ParityWeights, type TapName, type WeightsManifest } from './fixture.js';
export { TOLERANCES, toleranceFor, bound, describeTolerance, type Tolerance } from './tolerances.js';
export { formatParityTable, summarizeParity } from './report.js';
