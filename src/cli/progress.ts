// Loading progress on a TTY (stderr), silent otherwise.
import cliProgress from 'cli-progress';
import type { LoadProgress } from '../model/load.js';

export function loadProgressBar(label: string): { update: (p: LoadProgress) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {loadedMB}/{totalMB} MB`,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (p) => {
      const payload = { loadedMB: (p.loadedBytes / 2 ** 20).toFixed(0), totalMB: (p.totalBytes / 2 ** 20).toFixed(0) };
      if (!started) { bar.start(p.totalBytes, 0, payload); started = true; }
      bar.update(p.loadedBytes, payload);
    },
    stop: () => { if (started) bar.stop(); },
  };
}

/** A byte-count progress bar on a TTY (stderr), silent otherwise. */
export function progressBar(label: string): { update: (done: number, total: number) => void; stop: () => void } {
  const load = loadProgressBar(label);
  return { update: (done, total) => load.update({ loadedBytes: done, totalBytes: total }), stop: load.stop };
}

/** Tensors and bytes written, on a TTY (stderr), silent otherwise. */
export function tensorProgressBar(label: string): {
  update: (p: { tensors: number; totalTensors: number; bytes: number; totalBytes: number }) => void; stop: () => void;
} {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {tensors}/{totalTensors} tensors | {doneMB}/{totalMB} MB`,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (p) => {
      const payload = {
        tensors: p.tensors, totalTensors: p.totalTensors,
        doneMB: (p.bytes / 2 ** 20).toFixed(1), totalMB: (p.totalBytes / 2 ** 20).toFixed(1),
      };
      if (!started) { bar.start(p.totalBytes, 0, payload); started = true; }
      bar.update(p.bytes, payload);
    },
    stop: () => { if (started) bar.stop(); },
  };
}
