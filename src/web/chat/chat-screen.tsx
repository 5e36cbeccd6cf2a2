// The chat screen: the conversations (kept in IndexedDB, see ../store) in a sidebar, the open one's
// messages with the reply streaming in as Markdown, its settings, and a composer. Each reply runs
// through ./generate, which reports the phase shown under the messages (loading the model,
// waiting, generating at N tokens/s) and the measures kept under the reply.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, listChatModels, type ServerConfig } from '../api';
import {
  DEFAULT_SETTINGS, deleteConversation, exportConversation, listConversations, newConversation, parseConversation,
  saveConversation, titleFrom, type ChatMessage, type ChatSettings, type Conversation,
} from '../store';
import './chat.css';
import { buildRequest, CONTINUE_PROMPT, generate, wireMessages, type Phase } from './generate';
import { MessageView } from './message-view';
import { SettingsPanel } from './settings-panel';
import { Sidebar } from './sidebar';

const SETTINGS_KEY = 'minerva.chatSettings';
const MODEL_KEY = 'minerva.model';

/** The settings a new chat starts with: the last ones used here. */
function lastSettings(): ChatSettings {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as Partial<ChatSettings>;
    return { ...DEFAULT_SETTINGS, ...saved, model: localStorage.getItem(MODEL_KEY) ?? '' };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

interface Busy { phase: Phase; started: number; seconds: number; tokens: number; rate: number | null; queued: number | null }

function statusText(b: Busy): string {
  if (b.phase === 'loading') return `Loading model (${b.seconds} s)…`;
  if (b.phase === 'waiting' && b.queued) return `Queued (${b.seconds} s): ${b.queued} ${b.queued === 1 ? 'request' : 'requests'} waiting for the model…`;
  if (b.phase === 'waiting') return `Waiting for the first token (${b.seconds} s)…`;
  return `Generating: ${b.tokens} tokens${b.rate !== null ? ` at ${b.rate.toFixed(1)} tokens/s` : ''}…`;
}

export function ChatScreen({ config, apiKey }: { config: ServerConfig | undefined; apiKey: string }) {
  const [models, setModels] = useState<string[] | undefined>();
  const [modelsError, setModelsError] = useState('');
  const [list, setList] = useState<Conversation[]>([]);
  const [conv, setConvState] = useState<Conversation>(() => newConversation(lastSettings()));
  const [busy, setBusy] = useState<Busy | null>(null);
  const [error, setError] = useState('');
  const [importError, setImportError] = useState('');
  const [input, setInput] = useState('');
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [showSettings, setShowSettings] = useState(false);
  const controller = useRef<AbortController | null>(null);
  const current = useRef(conv);
  const messagesEl = useRef<HTMLOListElement>(null);
  const stickToBottom = useRef(true);

  const setConv = (c: Conversation) => { current.current = c; setConvState(c); };
  const refreshList = async () => setList(await listConversations());

  /** Saves a conversation (its time of change first) and refreshes the sidebar. */
  async function persist(c: Conversation): Promise<void> {
    const saved = { ...c, updatedAt: Date.now() };
    if (current.current.id === c.id) setConv(saved);
    await saveConversation(saved);
    await refreshList();
  }

  useEffect(() => {
    listConversations().then((all) => {
      setList(all);
      if (all[0] && current.current.messages.length === 0) setConv(all[0]);
    }, (e: Error) => setError(`Conversations cannot be kept in this browser (IndexedDB: ${e.message}).`));
  }, []);

  useEffect(() => {
    setModelsError('');
    listChatModels().then(setModels, (e: Error) => {
      setModels(undefined);
      setModelsError(e instanceof ApiError && e.status === 401 ? 'the server wants an API key: enter it at the top right.' : e.message);
    });
  }, [apiKey]);

  // The conversation's model, when it is not (or no longer) offered: the last one used, else the first.
  // (It reads the conversation from `current`, not this render's `conv`: an import or a click may
  // have opened another one since, which a stale copy would overwrite.)
  useEffect(() => {
    const c = current.current;
    if (!models || models.length === 0 || models.includes(c.settings.model)) return;
    const remembered = localStorage.getItem(MODEL_KEY);
    const model = remembered && models.includes(remembered) ? remembered : models[0]!;
    setConv({ ...c, settings: { ...c.settings, model } });
  }, [models, conv.id, conv.settings.model]);

  // Follow the reply as it streams, unless the reader scrolled up.
  useEffect(() => {
    const el = messagesEl.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [conv.messages]);

  function changeSettings(settings: ChatSettings) {
    const c = { ...conv, settings };
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings, model: undefined }));
    if (settings.model) localStorage.setItem(MODEL_KEY, settings.model);
    if (conv.messages.length > 0) void persist(c);
    else setConv(c);
  }

  /** Streams a reply to `base` (whose last message is the user's), or goes on with its last reply. */
  async function run(base: Conversation, continuing: boolean): Promise<void> {
    setError('');
    let req;
    try {
      const wire = wireMessages(base.messages);
      req = buildRequest(base.settings, continuing ? [...wire, { role: 'user', content: CONTINUE_PROMPT }] : wire);
    } catch (e) {
      setError((e as Error).message);
      return;
    }
    const prior = continuing ? base.messages[base.messages.length - 1] : undefined;
    const head = continuing ? base.messages.slice(0, -1) : base.messages;
    const withReply = (content: string, reasoning: string, stats?: ChatMessage['stats']): Conversation => {
      const reply: ChatMessage = { role: 'assistant', content: (prior?.content ?? '') + content };
      const thought = (prior?.reasoning ?? '') + reasoning;
      if (thought) reply.reasoning = thought;
      if (stats) reply.stats = stats;
      // Settings or a title changed while the reply streamed are kept.
      const latest = current.current.id === base.id ? current.current : base;
      return { ...latest, messages: [...head, reply] };
    };
    const show = (c: Conversation) => { if (current.current.id === base.id) setConv(c); };
    show(withReply('', ''));
    stickToBottom.current = true;
    const ac = new AbortController();
    controller.current = ac;
    const started = performance.now();
    setBusy({ phase: 'waiting', started, seconds: 0, tokens: 0, rate: null, queued: null });
    const timer = setInterval(() => setBusy((b) => b && { ...b, seconds: Math.floor((performance.now() - b.started) / 1000) }), 250);
    const out = await generate(req, ac.signal, (p) => {
      show(withReply(p.content, p.reasoning));
      setBusy((b) => b && { ...b, phase: p.phase, tokens: p.tokens, rate: p.tokensPerSecond, queued: p.queued });
    });
    clearInterval(timer);
    controller.current = null;
    setBusy(null);
    if (out.error) setError(out.error);
    // A reply that brought nothing is not kept: the conversation ends with the user's message, to retry.
    const done = out.content || out.reasoning || prior ? withReply(out.content, out.reasoning, out.stats)
      : { ...(current.current.id === base.id ? current.current : base), messages: head };
    show(done);
    await persist(done);
  }

  /** Whether a reply can be asked for now (a model picked, settings usable): says why not otherwise. */
  function ready(c: Conversation): boolean {
    try {
      buildRequest(c.settings, []);
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    }
  }

  function send(text: string) {
    if (busy || !text.trim() || !ready(conv)) return;
    setInput('');
    const base: Conversation = {
      ...conv, title: conv.messages.length === 0 ? titleFrom(text) : conv.title,
      messages: [...conv.messages, { role: 'user', content: text }],
    };
    void persist(base).then(() => run(base, false));
  }

  function editAt(index: number, text: string) {
    if (busy || !ready(conv)) return;
    const base = { ...conv, messages: [...conv.messages.slice(0, index), { role: 'user' as const, content: text }] };
    void persist(base).then(() => run(base, false));
  }

  function regenerate() {
    if (busy || !ready(conv)) return;
    const last = conv.messages[conv.messages.length - 1];
    const base = last?.role === 'assistant' ? { ...conv, messages: conv.messages.slice(0, -1) } : conv;
    if (base.messages.length === 0) return;
    void run(base, false);
  }

  function open(c: Conversation) {
    controller.current?.abort();
    setError('');
    setConv(c);
    setSidebarOpen(false);
  }

  function download(c: Conversation) {
    const url = URL.createObjectURL(new Blob([exportConversation(c)], { type: 'application/json' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${c.title.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'chat'}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async function importFile(file: File) {
    setImportError('');
    try {
      const c = parseConversation(await file.text());
      await saveConversation(c);
      await refreshList();
      open(c);
    } catch (e) {
      setImportError(`${file.name}: ${(e as Error).message}`);
    }
  }

  // Copy buttons of code blocks (rendered in the Markdown's HTML), by delegation.
  function onMessagesClick(e: MouseEvent) {
    const button = (e.target as HTMLElement).closest<HTMLButtonElement>('.copy-code');
    const code = button?.closest('.code-block')?.querySelector('code')?.textContent;
    if (!button || code == null) return;
    const copied = () => { button.textContent = 'Copied'; setTimeout(() => { button.textContent = 'Copy'; }, 1500); };
    // The clipboard API exists only in secure contexts (not a page opened over the LAN by http).
    if (navigator.clipboard) navigator.clipboard.writeText(code).then(copied, () => { button.textContent = 'Copy failed'; });
    else {
      const area = document.createElement('textarea');
      area.value = code;
      document.body.append(area);
      area.select();
      const ok = document.execCommand('copy');
      area.remove();
      if (ok) copied();
    }
  }

  const last = conv.messages[conv.messages.length - 1];
  const noModels = models !== undefined && models.length === 0;
  const demo = config?.demoModel && conv.settings.model === config.demoModel;

  return (
    <main class="screen chat-screen">
      <Sidebar conversations={list} currentId={conv.id} open={sidebarOpen} importError={importError}
        onSelect={(id) => { const c = list.find((x) => x.id === id); if (c) open(c); }}
        onNew={() => open(newConversation({ ...conv.settings }))}
        onRename={(id, title) => { const c = list.find((x) => x.id === id); if (c) void persist({ ...(c.id === conv.id ? conv : c), title }); }}
        onDelete={(id) => {
          if (id === conv.id) open(newConversation({ ...conv.settings }));
          void deleteConversation(id).then(refreshList);
        }}
        onExport={(id) => { const c = id === conv.id ? conv : list.find((x) => x.id === id); if (c) download(c); }}
        onImport={(f) => void importFile(f)} onClose={() => setSidebarOpen(false)} />
      <section class="chat-main" aria-label="Chat">
        <div class="chat-toolbar">
          <button type="button" class="sidebar-toggle" aria-controls="chat-sidebar" aria-expanded={sidebarOpen}
            onClick={() => setSidebarOpen(!sidebarOpen)}>☰ Chats</button>
          <label for="model" class="model-picker">
            Model
            <select id="model" value={conv.settings.model} disabled={!models || models.length === 0}
              onChange={(e) => changeSettings({ ...conv.settings, model: e.currentTarget.value })}>
              {(models ?? []).map((m) => <option key={m} value={m}>{m}</option>)}
            </select>
          </label>
          <button type="button" aria-controls="chat-settings" aria-expanded={showSettings} onClick={() => setShowSettings(!showSettings)}>
            Settings
          </button>
          <h1 class="chat-title" title={conv.title}>{conv.title}</h1>
        </div>
        {showSettings && <SettingsPanel key={conv.id} settings={conv.settings} onChange={changeSettings} />}
        {modelsError && <p class="error notice" role="alert">The models cannot be listed: {modelsError}</p>}
        {noModels && (
          <div class="notice" id="empty-notice">
            <h2>No models yet</h2>
            <p>Put a model in the models folder and reload this page: a <code>.gguf</code> file, or a Hugging Face
              folder (<code>config.json</code>, <code>tokenizer.json</code>, <code>*.safetensors</code>), or get one
              on the <a href="#/models">Models screen</a>.</p>
            <p>Models folder: <code id="models-dir">{config?.modelsDir ?? '~/.minerva/models'}</code></p>
          </div>
        )}
        {demo && (
          <div class="notice" id="demo-notice">
            <p><strong>Demo model.</strong> <code>{config.demoModel}</code> is a 260K-parameter model (llama2.c's
              stories260K) that continues tiny children's stories: start one ("Once upon a time, a little dog")
              and it writes on. It is here because the models folder is empty.</p>
            <p>For a real assistant, get a model: <code>npx minerva pull bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M</code>,
              or the <a href="#/models">Models screen</a>, or put a <code>.gguf</code> file or a Hugging Face folder
              in <code>{config.modelsDir}</code>, then reload.</p>
          </div>
        )}
        <ol class="messages" ref={messagesEl} onClick={onMessagesClick}
          onScroll={(e) => { const el = e.currentTarget; stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40; }}>
          {conv.messages.map((m, i) => {
            const isLast = i === conv.messages.length - 1;
            return (
              <MessageView key={`${conv.id}:${i}`} message={m} streaming={busy !== null && isLast && m.role === 'assistant'}
                actions={busy ? {} : {
                  onEdit: m.role === 'user' ? (text) => editAt(i, text) : undefined,
                  onRegenerate: isLast && m.role === 'assistant' ? regenerate : undefined,
                  onContinue: isLast && m.role === 'assistant' && m.stats?.finishReason === 'length' ? () => void run(conv, true) : undefined,
                }} />
            );
          })}
        </ol>
        <p class="chat-status muted" role="status">{busy ? statusText(busy) : ''}</p>
        {error && (
          <div class="error chat-error" role="alert">
            <span>{error}</span>
            {!busy && last?.role === 'user' && <button type="button" onClick={regenerate}>Retry</button>}
          </div>
        )}
        <form class="composer" onSubmit={(e) => { e.preventDefault(); send(input); }}>
          <textarea id="chat-input" rows={2} aria-label="Message" value={input}
            placeholder="Send a message (Enter to send, Shift+Enter for a new line)"
            onInput={(e) => setInput(e.currentTarget.value)}
            onKeyDown={(e) => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(input); } }} />
          {busy
            ? <button type="button" class="danger" id="stop" onClick={() => controller.current?.abort()}>Stop</button>
            : <button type="submit" class="primary" id="send" disabled={!models || models.length === 0}>Send</button>}
        </form>
      </section>
    </main>
  );
}
