/**
 * Progress on stderr: a redrawn bar (frames done, fps, ETA) when stderr is a
 * terminal, otherwise a plain line at most every `interval` seconds and one
 * at the end, so logs stay readable. Also the end-of-run summary line.
 */

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Where to draw (default process.stderr). */
  stream?: ProgressStream;
  /** Draw nothing (default false). */
  quiet?: boolean;
  /** Seconds between plain lines when the stream is not a terminal (default 10). */
  interval?: number;
  /** Unit shown after the counts (default 'frames'). */
  unit?: string;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A rate with a sensible number of digits (0.0213 fps, 2.13 fps, 21.3 fps). */
export function formatRate(x: number): string {
  if (!Number.isFinite(x) || x <= 0) return '0';
  return x >= 100 ? x.toFixed(0) : x.toPrecision(3);
}

export class Progress {
  private readonly stream: ProgressStream;
  private readonly quiet: boolean;
  private readonly tty: boolean;
  private readonly interval: number;
  private readonly unit: string;
  private readonly now: () => number;
  private readonly start: number;
  /** When the first unit was done: rates count from there, start-up left out. */
  private firstAt?: number;
  private lastPrint = -Infinity;
  private lastPrintedCount = -1;
  private done = 0;
  private finished = false;

  /** `total` may be undefined when unknown (no ETA then). */
  constructor(
    readonly label: string,
    private total: number | undefined,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.quiet = opts.quiet ?? false;
    this.tty = !!this.stream.isTTY;
    this.interval = (opts.interval ?? 10) * 1000;
    this.unit = opts.unit ?? 'frames';
    this.now = opts.now ?? (() => Date.now());
    this.start = this.now();
    if (!this.quiet && this.tty) this.draw();
  }

  /** Elapsed seconds. */
  get seconds(): number {
    return (this.now() - this.start) / 1000;
  }

  get count(): number {
    return this.done;
  }

  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** Count `n` more units done. */
  tick(n = 1): void {
    const t = this.now();
    if (this.done === 0 && n > 0) this.firstAt = t;
    this.done += n;
    if (this.quiet || this.finished) return;
    if (this.tty) this.draw();
    else if (t - this.lastPrint >= this.interval) {
      this.lastPrint = t;
      this.lastPrintedCount = this.done;
      this.stream.write(`${this.text()}\n`);
    }
  }

  /** Final state: the last line stays on screen. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.quiet) return;
    if (this.tty) {
      this.draw();
      this.stream.write('\n');
    } else if (this.lastPrintedCount !== this.done) this.stream.write(`${this.text()}\n`);
  }

  /**
   * The status text: label, bar (tty), counts, rate, elapsed / ETA. The rate
   * counts from the first unit on (start-up left out); until a second one,
   * the time to the first stands in.
   */
  text(bar = false): string {
    const secs = this.seconds;
    const first = this.firstAt !== undefined ? (this.firstAt - this.start) / 1000 : undefined;
    const since = this.firstAt !== undefined ? (this.now() - this.firstAt) / 1000 : 0;
    const rate = this.done > 1 && since > 0 ? (this.done - 1) / since : 0;
    const perUnit = rate > 0 ? 1 / rate : first;
    const total = this.total;
    const counts = total !== undefined ? `${this.done}/${total} ${this.unit}` : `${this.done} ${this.unit}`;
    let eta = '';
    if (total !== undefined && this.done < total) eta = perUnit !== undefined && perUnit > 0 ? `, ETA ${formatDuration((total - this.done) * perUnit)}` : ', ETA --:--';
    const speed = rate > 0 ? `${formatRate(rate)} ${this.unit === 'frames' ? 'fps' : `${this.unit}/s`}` : first !== undefined ? `first after ${formatDuration(first)}` : 'starting';
    let b = '';
    if (bar && total !== undefined && total > 0) {
      const w = 24;
      const k = Math.min(w, Math.round((this.done / total) * w));
      b = ` [${'#'.repeat(k)}${'-'.repeat(w - k)}]`;
    }
    return `${this.label}${b} ${counts}, ${speed}, ${formatDuration(secs)} elapsed${eta}`;
  }

  private draw(): void {
    let s = this.text(true);
    const cols = this.stream.columns ?? 100;
    if (s.length > cols - 1) s = s.slice(0, cols - 1);
    this.stream.write(`\r\x1b[K${s}`);
  }
}

/** The end-of-run line: frames, seconds, fps and what was written. */
export function summaryLine(frames: number, seconds: number, outputs: string[]): string {
  const fps = seconds > 0 ? frames / seconds : 0;
  return `liveportrait: ${frames} frame${frames === 1 ? '' : 's'} in ${seconds.toFixed(1)} s (${formatRate(fps)} fps) → ${outputs.join(', ')}`;
}
