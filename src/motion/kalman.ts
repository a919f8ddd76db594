/**
 * Kalman smoothing of per-frame vectors, as the reference smooths the
 * driving expression and rotation when the source is a video (pykalman's
 * `KalmanFilter(...).smooth`): a random-walk state x_t = x_{t-1} + w,
 * observed directly y_t = x_t + v, with
 *
 *   transition covariance  Q = process_variance · I      (default 1e-5)
 *   observation covariance R = observation_variance · I  (default 3e-7)
 *   initial state          N(y_0, I)                      (pykalman's default covariance)
 *
 * then the Rauch–Tung–Striebel backward pass. All matrices being multiples
 * of I, every coordinate is an independent scalar filter with the same gains,
 * so the gains are computed once. Float64 throughout (as pykalman), results
 * rounded to float32 (as the reference's torch.float32 copies).
 */

export interface KalmanOptions {
  /** Observation noise variance (the reference's driving_smooth_observation_variance), default 3e-7. */
  observationVariance?: number;
  /** Process (transition) noise variance, default 1e-5. */
  processVariance?: number;
  /** Variance of the initial state around the first observation, default 1 (pykalman's identity). */
  initialVariance?: number;
}

export const DEFAULT_OBSERVATION_VARIANCE = 3e-7;
export const DEFAULT_PROCESS_VARIANCE = 1e-5;

/**
 * Smooth a sequence of equally long vectors (one per frame). Returns new
 * float32 vectors; a sequence of 0 or 1 frames comes back unchanged (copied).
 */
export function kalmanSmooth(seq: readonly ArrayLike<number>[], opts: KalmanOptions = {}): Float32Array[] {
  const T = seq.length;
  if (T === 0) return [];
  const d = seq[0].length;
  for (const [i, v] of seq.entries()) if (v.length !== d) throw new Error(`kalmanSmooth: frame ${i} has ${v.length} values, frame 0 has ${d}`);
  const r = opts.observationVariance ?? DEFAULT_OBSERVATION_VARIANCE;
  const q = opts.processVariance ?? DEFAULT_PROCESS_VARIANCE;
  const p0 = opts.initialVariance ?? 1;
  if (!(r > 0) || !(q >= 0) || !(p0 >= 0)) throw new Error(`kalmanSmooth: variances must be positive (observation ${r}, process ${q}, initial ${p0})`);

  // Forward pass: predicted (pp) and filtered (pf) variances, shared by all coordinates.
  const pp = new Float64Array(T);
  const pf = new Float64Array(T);
  const gain = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    pp[t] = t === 0 ? p0 : pf[t - 1] + q;
    gain[t] = pp[t] / (pp[t] + r);
    pf[t] = (1 - gain[t]) * pp[t];
  }
  // Smoother gains L_t = pf[t] / pp[t+1].
  const L = new Float64Array(T);
  for (let t = 0; t + 1 < T; t++) L[t] = pf[t] / pp[t + 1];

  const out = Array.from({ length: T }, () => new Float32Array(d));
  const mf = new Float64Array(T);
  for (let k = 0; k < d; k++) {
    // Filtered means; the initial mean is the first observation.
    let prev = seq[0][k];
    for (let t = 0; t < T; t++) {
      const pred = t === 0 ? seq[0][k] : prev;
      prev = mf[t] = pred + gain[t] * (seq[t][k] - pred);
    }
    // Backward pass: m_s[t] = m_f[t] + L_t (m_s[t+1] - m_pred[t+1]), m_pred[t+1] = m_f[t].
    let ms = mf[T - 1];
    out[T - 1][k] = ms;
    for (let t = T - 2; t >= 0; t--) {
      ms = mf[t] + L[t] * (ms - mf[t]);
      out[t][k] = ms;
    }
  }
  return out;
}
