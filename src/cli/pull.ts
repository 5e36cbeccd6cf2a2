// minerva pull <repo>[:QUANT]: a model from the Hugging Face Hub into the shared HF cache, linked
// into the models folder. Progress goes to stderr (a bar on a TTY, a line per file otherwise);
// the path to load goes to stdout.
import cliProgress from 'cli-progress';
import { pull } from '../hub/pull.js';
import type { PullEvent } from '../hub/pull-events.js';

export interface PullCommandOptions {
  revision?: string;
  file?: string;
  modelsDir?: string;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
    : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Turns pull events into stderr output. */
function progressReporter(tty: boolean): { onEvent: (e: PullEvent) => void; stop: () => void } {
  const write = (line: string) => process.stderr.write(`${line}\n`);
  let bar: cliProgress.SingleBar | undefined;
  let start = { time: 0, bytes: 0 };
  let last = 0;
  const stopBar = () => { bar?.stop(); bar = undefined; };
  const rate = (completed: number) => (completed - start.bytes) / Math.max((Date.now() - start.time) / 1000, 1e-3);
  const onEvent = (e: PullEvent) => {
    switch (e.type) {
      case 'resolving':
        write(`pulling ${e.repo}@${e.revision}${e.offline ? ' from the cache (HF_HUB_OFFLINE)' : ''}`);
        break;
      case 'resolved':
        write(`commit ${e.commit.slice(0, 10)}: ${e.files.length} file${e.files.length === 1 ? '' : 's'}, ${mib(e.totalBytes)} (${e.kind})`);
        break;
      case 'file-start':
        start = { time: Date.now(), bytes: -1 };
        if (tty && !e.cached) {
          bar = new cliProgress.SingleBar({
            stream: process.stderr, hideCursor: true, clearOnComplete: true,
            format: `${e.file.path} [{bar}] {percentage}% | {done}/{size} | {rate}/s | ETA {remaining}`,
          }, cliProgress.Presets.shades_classic);
          bar.start(e.file.size, 0, { done: mib(0), size: mib(e.file.size), rate: '--', remaining: '--' });
        }
        break;
      case 'file-progress': {
        if (start.bytes < 0) start = { time: Date.now(), bytes: e.completed }; // a resume starts counting here
        const r = rate(e.completed);
        bar?.update(e.completed, { done: mib(e.completed), rate: mib(r), remaining: duration((e.total - e.completed) / r) });
        break;
      }
      case 'file-wait':
        stopBar();
        write(`${e.file.path}: another pull is downloading it; waiting`);
        break;
      case 'file-retry':
        if (bar && Date.now() - last < 1000) break;
        last = Date.now();
        write(`${e.file?.path ?? 'request'}: ${e.reason}; retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)} s`);
        break;
      case 'file-done': {
        stopBar();
        const seconds = (Date.now() - start.time) / 1000;
        write(e.cached ? `${e.file.path}: ${mib(e.file.size)}, already in the cache`
          : `${e.file.path}: ${mib(e.received)} in ${seconds.toFixed(1)} s (${mib(e.received / Math.max(seconds, 1e-3))}/s), verified`);
        break;
      }
      case 'linked':
        write(`linked ${e.link} → ${e.target}`);
        break;
      default:
        break;
    }
  };
  return { onEvent, stop: stopBar };
}

export async function pullCommand(repo: string, o: PullCommandOptions): Promise<void> {
  const abort = new AbortController();
  const onSigint = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  const reporter = progressReporter(Boolean(process.stderr.isTTY));
  try {
    const r = await pull(repo, { revision: o.revision, file: o.file, modelsDir: o.modelsDir, signal: abort.signal, onEvent: reporter.onEvent });
    reporter.stop();
    process.stderr.write(`pulled ${r.repo}@${r.revision} (${r.commit.slice(0, 10)}): ${r.files.length} file${r.files.length === 1 ? '' : 's'}, `
      + `${mib(r.downloadedBytes)} downloaded\n`);
    process.stdout.write(`${r.modelPath}\n`);
  } catch (e) {
    reporter.stop();
    if (abort.signal.aborted) throw new Error(`pull of ${repo} interrupted: run it again to resume`);
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
