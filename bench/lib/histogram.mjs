// HdrHistogram helpers: values are microseconds; workers ship histograms to the parent compressed.
import * as hdr from 'hdr-histogram-js';

/** A histogram of microseconds from 1 µs to 10 minutes, 3 significant digits. */
export function createHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export function encode(h) {
  return hdr.encodeIntoCompressedBase64(h);
}

/** Adds every encoded histogram into one. */
export function merge(encodedList) {
  const total = createHistogram();
  for (const e of encodedList) if (e) total.add(hdr.decodeFromCompressedBase64(e));
  return total;
}

/** `{count, p50, p95, p99, max}` in milliseconds. */
export function summarize(h) {
  const ms = (v) => Math.round(v / 10) / 100;
  if (h.totalCount === 0) return { count: 0, p50: null, p95: null, p99: null, max: null };
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
  };
}

/** Monotonic microseconds, comparable across processes on one machine (CLOCK_MONOTONIC). */
export function nowMicros() {
  return Number(process.hrtime.bigint() / 1000n);
}
