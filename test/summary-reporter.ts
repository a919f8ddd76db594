/**
 * Prints the closing line CI reads: `N passed, N failed` (and skipped),
 * counted over every test case of the run. A file or suite that failed
 * outside its tests (a load error, a failing beforeAll) counts as one
 * failure, so it can never pass as "skipped".
 */
import type { Reporter, TestModule, TestSuite } from 'vitest/node';

function failedTestsIn(s: TestModule | TestSuite): number {
  let n = 0;
  for (const t of s.children.allTests()) if (t.result().state === 'failed') n++;
  return n;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else skipped++;
      }
      // Innermost failures only: a failed suite also marks its file failed.
      let suiteFailures = 0;
      for (const s of m.children.allSuites()) if (s.state() === 'failed' && failedTestsIn(s) === 0) suiteFailures++;
      if (suiteFailures === 0 && m.state() === 'failed' && failedTestsIn(m) === 0) suiteFailures = 1;
      failed += suiteFailures;
    }
    failed += errors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
