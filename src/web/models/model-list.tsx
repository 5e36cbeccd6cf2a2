// The models in the folder, one row each (a card on a phone): architecture, parameters, weight
// type, size on disk, context length, loaded or not and the memory it holds; load, unload, delete
// (after a confirmation), and /api/show's details (template, parameters, model info) folded open.
import { useEffect, useState } from 'preact/hooks';
import { deleteModel, loadModel, showModel, unloadModel, type LoadedListing, type ModelDetails, type ModelListing } from '../api';
import { formatBytes, formatCount, shortName } from './format';

export function ModelList({ models, loaded, onChanged }: { models: ModelListing[]; loaded: LoadedListing[]; onChanged: () => void }) {
  if (models.length === 0) {
    return <p class="models-empty">No models in the folder yet: pull one from the Hugging Face Hub above.</p>;
  }
  return (
    <table class="models-table">
      <caption class="visually-hidden">Models in the folder</caption>
      <thead>
        <tr>
          <th scope="col">Model</th><th scope="col">Architecture</th><th scope="col">Parameters</th>
          <th scope="col">Weights</th><th scope="col">Size</th><th scope="col">Context</th>
          <th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      {models.map((m) => (
        <ModelRow key={m.name} model={m} loaded={loaded.find((l) => l.name === m.name)} onChanged={onChanged} />
      ))}
    </table>
  );
}

type Busy = '' | 'loading' | 'unloading' | 'deleting';

function ModelRow({ model, loaded, onChanged }: { model: ModelListing; loaded: LoadedListing | undefined; onChanged: () => void }) {
  const name = shortName(model.name);
  const [busy, setBusy] = useState<Busy>('');
  const [since, setSince] = useState(0);
  const [error, setError] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [open, setOpen] = useState(false);
  const [details, setDetails] = useState<ModelDetails | undefined>();
  const [detailsError, setDetailsError] = useState('');
  const id = `model-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;

  const act = async (what: Exclude<Busy, ''>, run: () => Promise<unknown>) => {
    setBusy(what);
    setSince(Date.now());
    setError('');
    try {
      await run();
    } catch (e) {
      setError(`Could not ${what === 'loading' ? 'load' : what === 'unloading' ? 'unload' : 'delete'} ${name}: ${(e as Error).message}`);
    } finally {
      setBusy('');
      setConfirming(false);
      onChanged();
    }
  };

  const toggle = async () => {
    const next = !open;
    setOpen(next);
    if (next && !details) {
      try {
        setDetails(await showModel(name));
        setDetailsError('');
      } catch (e) {
        setDetailsError(`Could not read the details of ${name}: ${(e as Error).message}`);
      }
    }
  };

  return (
    <tbody class={`model-row${loaded ? ' is-loaded' : ''}`} data-model={name}>
      <tr>
        <th scope="row" data-label="Model" class="model-name">{name}</th>
        <td data-label="Architecture">{model.details.family}</td>
        <td data-label="Parameters">{model.details.parameter_size}</td>
        <td data-label="Weights">{model.details.quantization_level} <span class="muted">({model.details.format})</span></td>
        <td data-label="Size">{formatBytes(model.size)}</td>
        <td data-label="Context">{model.context_length ? formatCount(model.context_length) : '—'}</td>
        <td data-label="State" class="model-state">
          {busy === 'loading' ? <Elapsed what="loading" since={since} />
            : loaded ? <span class="badge loaded">loaded · {formatBytes(loaded.size)}</span>
              : <span class="badge">not loaded</span>}
        </td>
        <td data-label="Actions" class="model-actions">
          {confirming ? (
            <span class="confirm" role="group" aria-label={`Confirm deleting ${name}`}>
              <span>Delete {name} and its files?</span>
              <button type="button" class="danger" disabled={busy !== ''} onClick={() => act('deleting', () => deleteModel(name))}>Yes, delete {name}</button>
              <button type="button" onClick={() => setConfirming(false)}>Keep it</button>
            </span>
          ) : (
            <>
              {loaded
                ? <button type="button" disabled={busy !== ''} aria-label={`Unload ${name}`} onClick={() => act('unloading', () => unloadModel(name))}>Unload</button>
                : <button type="button" disabled={busy !== ''} aria-label={`Load ${name}`} onClick={() => act('loading', () => loadModel(name))}>Load</button>}
              <button type="button" aria-expanded={open} aria-controls={`${id}-details`} aria-label={`Details of ${name}`} onClick={toggle}>Details</button>
              <button type="button" class="danger" disabled={busy !== ''} aria-label={`Delete ${name}`} onClick={() => setConfirming(true)}>Delete</button>
            </>
          )}
        </td>
      </tr>
      {error && <tr class="model-error"><td colSpan={8} role="alert" class="error">{error}</td></tr>}
      {open && (
        <tr class="model-details-row">
          <td colSpan={8} id={`${id}-details`}>
            {detailsError ? <p class="error" role="alert">{detailsError}</p>
              : details ? <DetailsPanel details={details} /> : <p class="muted">Reading details…</p>}
          </td>
        </tr>
      )}
    </tbody>
  );
}

function Elapsed({ what, since }: { what: string; since: number }) {
  const [, tick] = useState(0);
  // (A re-render each second keeps the count of seconds moving while a model loads.)
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, []);
  return <span class="badge busy">{what} ({Math.floor((Date.now() - since) / 1000)} s)…</span>;
}

function DetailsPanel({ details }: { details: ModelDetails }) {
  const info = Object.entries(details.model_info ?? {});
  return (
    <div class="model-details">
      {details.capabilities && <p><strong>Capabilities:</strong> {details.capabilities.join(', ')}</p>}
      {info.length > 0 && (
        <dl class="model-info">
          {info.map(([k, v]) => (
            <div key={k}><dt>{k}</dt><dd>{typeof v === 'number' ? formatCount(v) : String(v)}</dd></div>
          ))}
        </dl>
      )}
      {details.system && <><h3>System prompt</h3><pre>{details.system}</pre></>}
      <h3>Parameters</h3>
      <pre>{details.parameters || '(none set: the request\'s or the server\'s defaults apply)'}</pre>
      <h3>Chat template</h3>
      <pre class="template">{details.template || '(none)'}</pre>
    </div>
  );
}
