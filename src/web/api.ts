// The server's HTTP API as the web app uses it: OpenAI's /v1 for chat (streamed), Ollama's /api
// for models (list, details, load, unload, delete, pull), /metrics for the status, and
// /ui/config.json for what the page needs to know of the server. The API key, when the server
// wants one, is kept in localStorage.

const KEY_STORAGE = 'minerva.apiKey';

export function apiKey(): string {
  return localStorage.getItem(KEY_STORAGE) ?? '';
}

export function setApiKey(key: string): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function headers(): Record<string, string> {
  const key = apiKey();
  return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

/** An error the server answered, with its message (OpenAI's `error.message` or Ollama's `error`). */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

async function failure(res: Response, what: string): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let message = `${what}: HTTP ${res.status}`;
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string } };
    const said = typeof body.error === 'string' ? body.error : body.error?.message;
    if (said) message = said;
  } catch {
    if (text) message = `${message}: ${text.slice(0, 200)}`;
  }
  return new ApiError(res.status, message);
}

async function getJSON<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: headers() });
  if (!res.ok) throw await failure(res, `GET ${url}`);
  return res.json() as Promise<T>;
}

async function postJSON<T>(url: string, body: unknown, method = 'POST'): Promise<T> {
  const res = await fetch(url, { method, headers: headers(), body: JSON.stringify(body) });
  if (!res.ok) throw await failure(res, `${method} ${url}`);
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export interface ServerConfig {
  modelsDir: string;
  version: string;
  /** Whether the server wants an API key. */
  apiKey: boolean;
  /** The demo model's name, offered while the models folder is empty. */
  demoModel: string | null;
  /** The memory budget in bytes (--max-memory); absent from older servers. */
  maxMemory?: number;
}

export const serverConfig = () => getJSON<ServerConfig>('/ui/config.json');

/** A model in the folder (Ollama's /api/tags entry). */
export interface ModelListing {
  name: string;
  model: string;
  size: number;
  modified_at: string;
  details: { format: string; family: string; parameter_size: string; quantization_level: string };
  /** The context length the model was trained for (Minerva's, not Ollama's). */
  context_length?: number;
}

/** What /api/show says of a model. */
export interface ModelDetails {
  template?: string;
  parameters?: string;
  system?: string;
  details?: ModelListing['details'];
  model_info?: Record<string, unknown>;
  capabilities?: string[];
  modified_at?: string;
}

/** A loaded model (Ollama's /api/ps entry). */
export interface LoadedListing {
  name: string;
  size: number;
  size_vram: number;
  expires_at: string;
  context_length?: number;
}

export const listModels = async () => (await getJSON<{ models: ModelListing[] }>('/api/tags')).models;
export const listLoaded = async () => (await getJSON<{ models: LoadedListing[] }>('/api/ps')).models;
export const showModel = (name: string) => postJSON<ModelDetails>('/api/show', { model: name });
export const deleteModel = (name: string) => postJSON<unknown>('/api/delete', { model: name }, 'DELETE');
/** Loads a model and keeps it loaded (Ollama: a generate request without a prompt). */
export const loadModel = (name: string) => postJSON<unknown>('/api/generate', { model: name, stream: false });
/** Unloads a model (Ollama: keep_alive 0). */
export const unloadModel = (name: string) => postJSON<unknown>('/api/generate', { model: name, keep_alive: 0, stream: false });

/** Reads a streamed body as lines (NDJSON) or server-sent events' data fields. */
async function* lines(res: Response, separator: '\n' | '\n\n'): AsyncGenerator<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let at: number;
    while ((at = buffer.indexOf(separator)) >= 0) {
      const piece = buffer.slice(0, at);
      buffer = buffer.slice(at + separator.length);
      if (piece.trim() !== '') yield piece;
    }
  }
  if (buffer.trim() !== '') yield buffer;
}

/** One event of a pull (Ollama's /api/pull stream). */
export interface PullEvent {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
  error?: string;
}

export async function* pull(model: string, signal?: AbortSignal): AsyncGenerator<PullEvent> {
  const res = await fetch('/api/pull', { method: 'POST', headers: headers(), body: JSON.stringify({ model, stream: true }), signal });
  if (!res.ok) throw await failure(res, 'POST /api/pull');
  for await (const line of lines(res, '\n')) {
    const event = JSON.parse(line) as PullEvent;
    if (event.error) throw new ApiError(500, event.error);
    yield event;
  }
}

/** The body of an OpenAI chat completion request (the fields the app sets). */
export interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  max_tokens?: number;
  seed?: number;
  response_format?: { type: 'json_object' } | { type: 'json_schema'; json_schema: { name: string; schema: unknown } };
}

/** One streamed chat completion chunk, as far as the app reads it. */
export interface ChatChunk {
  choices: { delta: { content?: string; reasoning_content?: string }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number };
  error?: { message: string };
}

export async function* chatStream(body: ChatRequest, signal?: AbortSignal): AsyncGenerator<ChatChunk> {
  const res = await fetch('/v1/chat/completions', {
    method: 'POST', headers: headers(), signal,
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw await failure(res, 'POST /v1/chat/completions');
  for await (const event of lines(res, '\n\n')) {
    const data = event.replace(/^data: /, '');
    if (data === '[DONE]') return;
    const chunk = JSON.parse(data) as ChatChunk;
    if (chunk.error) throw new ApiError(500, chunk.error.message);
    yield chunk;
  }
}

/** Prometheus text → samples by metric name, with their labels. */
export interface MetricSample { labels: Record<string, string>; value: number }

export async function metrics(): Promise<Map<string, MetricSample[]>> {
  const res = await fetch('/metrics', { headers: headers() });
  if (!res.ok) throw await failure(res, 'GET /metrics');
  const out = new Map<string, MetricSample[]>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    const list = out.get(m[1]!) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

/** The models the chat can use: /v1/models (the folder's, or the bundled demo while it is empty). */
export const listChatModels = async () => (await getJSON<{ data: { id: string }[] }>('/v1/models')).data.map((m) => m.id);
