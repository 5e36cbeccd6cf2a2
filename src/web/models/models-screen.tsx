// The models screen (#/models): pull a model from the Hugging Face Hub, the models in the folder
// with what they are and whether they are loaded, and the server's status. The lists are read
// again every 2 s (a model loaded or unloaded by a chat or another client shows up) and at once
// after anything done here.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { listLoaded, listModels, type LoadedListing, type ModelListing, type ServerConfig } from '../api';
import { shortName } from './format';
import { ModelList } from './model-list';
import { PullPanel } from './pull-panel';
import { StatusPanel } from './status-panel';
import './models.css';

const REFRESH_MS = 2000;

export function ModelsScreen({ config, apiKey }: { config: ServerConfig | undefined; apiKey: string }) {
  const [models, setModels] = useState<ModelListing[] | undefined>();
  const [loaded, setLoaded] = useState<LoadedListing[]>([]);
  const [error, setError] = useState('');

  const refresh = useCallback(async () => {
    try {
      const [all, running] = await Promise.all([listModels(), listLoaded()]);
      setModels([...all].sort((a, b) => shortName(a.name).localeCompare(shortName(b.name))));
      setLoaded(running);
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);

  useEffect(() => {
    void refresh();
    const timer = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(timer);
  }, [refresh, apiKey]);

  return (
    <main class="screen models-screen">
      <h1 class="visually-hidden">Models</h1>
      <div class="models-main">
        <PullPanel onPulled={refresh} />
        <section class="models-list" aria-labelledby="models-title">
          <h2 id="models-title">Models{config ? <span class="muted models-dir"> in {config.modelsDir}</span> : null}</h2>
          {error && (
            <p class="error" role="alert">
              Could not list the models: {error}{/key|401|unauthori[sz]ed/i.test(error) ? ' (enter the API key at the top right)' : ''}
            </p>
          )}
          {models ? <ModelList models={models} loaded={loaded} onChanged={refresh} /> : !error && <p class="muted">Reading the models folder…</p>}
        </section>
      </div>
      <StatusPanel loaded={loaded} maxMemory={config?.maxMemory} />
    </main>
  );
}
