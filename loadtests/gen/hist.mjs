// Log-bucketed latency histogram: 2 % relative precision from 1 µs to ~1 h,
// constant memory, so millions of samples cost nothing to keep.
const BASE = 1.02;
const LOG_BASE = Math.log(BASE);
const NBUCKETS = 1600;

export class Histogram {
  constructor() {
    this.counts = new Float64Array(NBUCKETS);
    this.n = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  // ms: a latency in milliseconds
  add(ms) {
    const us = ms * 1000;
    let i = us <= 1 ? 0 : Math.floor(Math.log(us) / LOG_BASE);
    if (i >= NBUCKETS) i = NBUCKETS - 1;
    this.counts[i] += 1;
    this.n += 1;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  merge(other) {
    for (let i = 0; i < NBUCKETS; i++) this.counts[i] += other.counts[i];
    this.n += other.n;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  // upper edge of the bucket holding quantile q, in ms (clamped to the max seen)
  quantile(q) {
    if (this.n === 0) return null;
    const target = q * this.n;
    let acc = 0;
    for (let i = 0; i < NBUCKETS; i++) {
      acc += this.counts[i];
      if (acc >= target && this.counts[i] > 0) {
        return Math.min(Math.pow(BASE, i + 1) / 1000, this.max);
      }
    }
    return this.max;
  }

  // [[ms, fraction <= ms], ...] for non-empty buckets, thinned to <= points
  cdf(points = 200) {
    const out = [];
    let acc = 0;
    for (let i = 0; i < NBUCKETS; i++) {
      if (this.counts[i] === 0) continue;
      acc += this.counts[i];
      out.push([Math.min(Math.pow(BASE, i + 1) / 1000, this.max), acc / this.n]);
    }
    if (out.length <= points) return out;
    const step = out.length / points;
    const thin = [];
    for (let k = 0; k < points; k++) thin.push(out[Math.floor(k * step)]);
    thin.push(out[out.length - 1]);
    return thin;
  }

  summary(withCdf = false) {
    const r = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
    const s = {
      count: this.n,
      mean_ms: this.n ? r(this.sum / this.n) : null,
      min_ms: this.n ? r(this.min) : null,
      p50_ms: r(this.quantile(0.5)),
      p90_ms: r(this.quantile(0.9)),
      p95_ms: r(this.quantile(0.95)),
      p99_ms: r(this.quantile(0.99)),
      p999_ms: r(this.quantile(0.999)),
      max_ms: this.n ? r(this.max) : null,
    };
    if (withCdf) s.cdf = this.cdf().map(([x, f]) => [r(x), Math.round(f * 1e6) / 1e6]);
    return s;
  }
}
