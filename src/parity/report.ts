/** The comparer's report as a table (one row per output and tap) or JSON. */
import type { ParityReport } from './compare.js';
import type { ParityRow } from './judge.js';

const fmt = (x: number | undefined) => (x === undefined ? '' : Number.isNaN(x) ? 'NaN' : x === 0 ? '0' : x.toExponential(2));

/** Rows as aligned text columns: module, tensor, shape, max abs, max rel, tolerance, result (and the note). */
export function formatParityTable(rows: ParityRow[]): string {
  const head = ['module', 'tensor', 'shape', 'max abs', 'max rel', 'tolerance', 'result'];
  const body = rows.map((r) => [r.module, r.tensor, `[${r.shape.join(',')}]`, fmt(r.maxAbs), fmt(r.maxRel), r.tolerance ?? '', r.status + (r.note ? `: ${r.note}` : '')]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i === head.length - 1 ? 0 : b[i].length))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** One line: counts by status. */
export function summarizeParity(report: ParityReport): string {
  const n = (s: ParityRow['status']) => report.rows.filter((r) => r.status === s).length;
  const secs = Object.values(report.seconds).reduce((a, b) => a + b, 0);
  return `${n('pass')} passed, ${n('fail')} failed, ${n('not compared')} not compared (${report.backend}, weights: ${report.weights}, ${secs.toFixed(1)} s)`;
}
