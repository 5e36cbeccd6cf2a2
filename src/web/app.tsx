// The shell of the web app: a header (the screens, the theme, the API key when the server wants
// one) over the screen the URL's hash names: #/chat (default) or #/models. Each screen lives in
// its own folder: chat/ and models/.
import { useEffect, useState } from 'preact/hooks';
import { apiKey, serverConfig, setApiKey, type ServerConfig } from './api';
import { ChatScreen } from './chat/chat-screen';
import { ModelsScreen } from './models/models-screen';
import { applyTheme, nextTheme, storedTheme, type Theme } from './theme';

type Route = 'chat' | 'models';

function routeOf(hash: string): Route {
  return hash.startsWith('#/models') ? 'models' : 'chat';
}

export function App() {
  const [route, setRoute] = useState<Route>(routeOf(location.hash));
  const [theme, setTheme] = useState<Theme>(storedTheme());
  const [config, setConfig] = useState<ServerConfig | undefined>();
  const [key, setKey] = useState(apiKey());

  useEffect(() => {
    const onHash = () => setRoute(routeOf(location.hash));
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => applyTheme(theme), [theme]);
  useEffect(() => { serverConfig().then(setConfig, () => setConfig(undefined)); }, []);

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="#/chat">Minerva</a>
        <nav aria-label="Screens">
          <a href="#/chat" aria-current={route === 'chat' ? 'page' : undefined}>Chat</a>
          <a href="#/models" aria-current={route === 'models' ? 'page' : undefined}>Models</a>
        </nav>
        <span class="spacer" />
        {config?.apiKey && (
          <label class="api-key">
            <span class="visually-hidden">API key</span>
            <input type="password" placeholder="API key" value={key} autocomplete="off"
              onChange={(e) => { const v = e.currentTarget.value.trim(); setApiKey(v); setKey(v); }} />
          </label>
        )}
        <button type="button" class="icon" onClick={() => setTheme(nextTheme(theme))}
          aria-label={`Theme: ${theme} (switch)`} title={`Theme: ${theme}`}>
          {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'}
        </button>
      </header>
      {route === 'chat' ? <ChatScreen config={config} apiKey={key} /> : <ModelsScreen config={config} apiKey={key} />}
    </div>
  );
}
