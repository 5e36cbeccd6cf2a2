// Progress bars on a TTY (stderr), silent otherwise.
import cliProgress from 'cli-progress';
import type { LoadProgress } from '../model/load.js';

interface Bar<P> {
  update: (p: P) => void;
  stop: () => void;
}

/** A bar over `total(p)` bytes, started on the first update; `payload` fills the format's other fields. */
function ttyBar<P>(format: string, done: (p: P) => number, total: (p: P) => number, payload: (p: P) => object): Bar<P> {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (p) => {
      if (!started) { bar.start(total(p), 0, payload(p)); started = true; }
      bar.update(done(p), payload(p));
    },
    stop: () => { if (started) bar.stop(); },
  };
}

const mb = (bytes: number, digits: number) => (bytes / 2 ** 20).toFixed(digits);

export function loadProgressBar(label: string): Bar<LoadProgress> {
  return ttyBar<LoadProgress>(`${label} [{bar}] {percentage}% | {loadedMB}/{totalMB} MB`, (p) => p.loadedBytes, (p) => p.totalBytes,
    (p) => ({ loadedMB: mb(p.loadedBytes, 0), totalMB: mb(p.totalBytes, 0) }));
}

/** A byte-count progress bar. */
export function progressBar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  const load = loadProgressBar(label);
  return { update: (done, total) => load.update({ loadedBytes: done, totalBytes: total }), stop: load.stop };
}

/** Tensors and bytes written. */
export function tensorProgressBar(label: string): Bar<{ tensors: number; totalTensors: number; bytes: number; totalBytes: number }> {
  return ttyBar(`${label} [{bar}] {percentage}% | {tensors}/{totalTensors} tensors | {doneMB}/{totalMB} MB`, (p) => p.bytes, (p) => p.totalBytes,
    (p) => ({ tensors: p.tensors, totalTensors: p.totalTensors, doneMB: mb(p.bytes, 1), totalMB: mb(p.totalBytes, 1) }));
}

/** Steps done of a known number, and what runs now (minerva bench ops). */
export function stepProgressBar(label: string): Bar<{ done: number; total: number; what: string }> {
  return ttyBar(`${label} [{bar}] {value}/{total} | {what}`, (p) => p.done, (p) => p.total, (p) => ({ what: p.what }));
}
