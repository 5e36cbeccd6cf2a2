// Pulling a model from the Hugging Face Hub through /api/pull: a progress bar per file (the
// stream's lines carry digest, total and completed per file), the current step, cancel (aborting
// the request stops the server's pull; the partial download is kept for the next try), and the
// error said plainly with what to do.
import { useRef, useState } from 'preact/hooks';
import { pull } from '../api';
import { formatBytes } from './format';
import { describePullError, type PullFailure } from './pull-errors';

interface FileProgress { digest: string; total: number; completed: number }

type PullState =
  | { kind: 'idle' }
  | { kind: 'pulling'; name: string; step: string; files: FileProgress[] }
  | { kind: 'done'; name: string }
  | { kind: 'cancelled'; name: string }
  | { kind: 'failed'; name: string; failure: PullFailure };

export function PullPanel({ onPulled }: { onPulled: () => void }) {
  const [name, setName] = useState('');
  const [state, setState] = useState<PullState>({ kind: 'idle' });
  const controller = useRef<AbortController | undefined>(undefined);

  const start = async (e: Event) => {
    e.preventDefault();
    const repo = name.trim();
    if (!repo || state.kind === 'pulling') return;
    const abort = new AbortController();
    controller.current = abort;
    const files = new Map<string, FileProgress>();
    setState({ kind: 'pulling', name: repo, step: 'starting', files: [] });
    try {
      for await (const ev of pull(repo, abort.signal)) {
        if (ev.digest && ev.total !== undefined) files.set(ev.digest, { digest: ev.digest, total: ev.total, completed: ev.completed ?? 0 });
        setState({ kind: 'pulling', name: repo, step: ev.digest ? 'downloading' : ev.status, files: [...files.values()] });
        if (ev.status === 'success') {
          setState({ kind: 'done', name: repo });
          onPulled();
          return;
        }
      }
      // The stream ended without "success" or an error line: the server stopped.
      throw new Error('the pull stopped before it finished (the server closed the stream)');
    } catch (err) {
      if (abort.signal.aborted) setState({ kind: 'cancelled', name: repo });
      else setState({ kind: 'failed', name: repo, failure: describePullError((err as Error).message) });
    } finally {
      controller.current = undefined;
    }
  };

  const pulling = state.kind === 'pulling';
  return (
    <section class="pull-panel" aria-labelledby="pull-title">
      <h2 id="pull-title">Get a model</h2>
      <form class="pull-form" onSubmit={start}>
        <label for="pull-repo">Hugging Face repo</label>
        <input id="pull-repo" type="text" value={name} placeholder="bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"
          autocomplete="off" spellcheck={false} disabled={pulling}
          onInput={(e) => setName(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={pulling || !name.trim()}>Pull</button>
        {pulling && <button type="button" onClick={() => controller.current?.abort()}>Cancel pull</button>}
      </form>
      <div class="pull-status" aria-live="polite">
        {state.kind === 'pulling' && (
          <>
            <p>Pulling {state.name}: <span class="pull-step">{state.step}</span></p>
            <ul class="pull-files">
              {state.files.map((f) => (
                <li key={f.digest}>
                  <span class="pull-file-name" title={f.digest}>{f.digest.replace(/^sha256:/, '').slice(0, 12)}</span>
                  <progress max={f.total || 1} value={f.completed} aria-label={`Download of ${f.digest}`} />
                  <span class="pull-file-bytes">{formatBytes(f.completed)} / {formatBytes(f.total)}</span>
                </li>
              ))}
            </ul>
          </>
        )}
        {state.kind === 'done' && <p class="ok">Pulled {state.name}: it is in the list below.</p>}
        {state.kind === 'cancelled' && <p>Pull of {state.name} cancelled. Pull it again to resume where it stopped.</p>}
      </div>
      {state.kind === 'failed' && (
        <div class="pull-error" role="alert">
          <p class="error"><strong>Could not pull {state.name}:</strong> {state.failure.message}</p>
          <p>{state.failure.advice}</p>
        </div>
      )}
    </section>
  );
}
