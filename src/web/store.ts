// Conversations kept in the browser: one IndexedDB database ("minerva", store "conversations",
// keyed by id), wrapped in a few promises. Conversations brought in from outside (an imported
// JSON file) are checked field by field by parseConversation before they are stored.

/** How a conversation asks for its replies. */
export interface ChatSettings {
  model: string;
  system: string;
  temperature: number;
  topP: number;
  /** null: the server's default. */
  topK: number | null;
  minP: number | null;
  maxTokens: number;
  seed: number | null;
  /** off; any JSON object (response_format json_object); or the JSON schema typed in `schema`. */
  json: 'off' | 'object' | 'schema';
  schema: string;
}

/** What a reply's generation measured, shown under it. */
export interface ReplyStats {
  /** Milliseconds from sending to the first token; null when none came. */
  ttftMs: number | null;
  tokensPerSecond: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  /** The server's finish_reason (stop, length…), or "stopped" / "error" on the page's side. */
  finishReason: string;
}

export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
  /** The model's reasoning (reasoning_content), for models that think. */
  reasoning?: string;
  stats?: ReplyStats;
}

export interface Conversation {
  id: string;
  title: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  updatedAt: number;
  settings: ChatSettings;
  messages: ChatMessage[];
}

export const DEFAULT_SETTINGS: ChatSettings = {
  model: '', system: '', temperature: 0.8, topP: 0.95, topK: null, minP: null, maxTokens: 512, seed: null, json: 'off', schema: '',
};

const DB = 'minerva';
const STORE = 'conversations';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

let opened: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'id' });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => { opened = undefined; reject(r.error ?? new Error('cannot open IndexedDB')); };
  });
  return opened;
}

async function objects(mode: IDBTransactionMode): Promise<IDBObjectStore> {
  return (await db()).transaction(STORE, mode).objectStore(STORE);
}

/** Every conversation, the most recently changed first. */
export async function listConversations(): Promise<Conversation[]> {
  const all = await request((await objects('readonly')).getAll() as IDBRequest<Conversation[]>);
  return all.sort((a, b) => b.updatedAt - a.updatedAt);
}

export async function saveConversation(c: Conversation): Promise<void> {
  await request((await objects('readwrite')).put(c));
}

export async function deleteConversation(id: string): Promise<void> {
  await request((await objects('readwrite')).delete(id));
}

// crypto.randomUUID exists only in secure contexts: a page opened over the LAN by plain http has none.
function newId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export function newConversation(settings: ChatSettings): Conversation {
  const now = Date.now();
  return { id: newId(), title: 'New chat', createdAt: now, updatedAt: now, settings: { ...settings }, messages: [] };
}

/** A title from the first user message: its first line, cut to 60 characters. */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0]!.trim();
  return line.length > 60 ? `${line.slice(0, 59)}…` : line || 'New chat';
}

/** The file a conversation is exported as (and imported from). */
export function exportConversation(c: Conversation): string {
  return JSON.stringify({ format: 'minerva-conversation', version: 1, conversation: c }, null, 2);
}

// Validation of an imported file: each problem names the field.
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Json, k: string, where: string): string {
  if (typeof o[k] !== 'string') throw new Error(`${where}.${k} must be a string`);
  return o[k] as string;
}
function num(o: Json, k: string, where: string): number {
  if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw new Error(`${where}.${k} must be a number`);
  return o[k] as number;
}
function numOrNull(o: Json, k: string, where: string): number | null {
  return o[k] === null || o[k] === undefined ? null : num(o, k, where);
}

function parseSettings(v: unknown, where: string): ChatSettings {
  if (!isObject(v)) return { ...DEFAULT_SETTINGS };
  const json = v.json ?? 'off';
  if (json !== 'off' && json !== 'object' && json !== 'schema') throw new Error(`${where}.json must be "off", "object" or "schema"`);
  const d = DEFAULT_SETTINGS;
  const or = <T>(k: string, read: () => T, fallback: T) => (v[k] === undefined ? fallback : read());
  return {
    model: or('model', () => str(v, 'model', where), d.model),
    system: or('system', () => str(v, 'system', where), d.system),
    temperature: or('temperature', () => num(v, 'temperature', where), d.temperature),
    topP: or('topP', () => num(v, 'topP', where), d.topP),
    topK: numOrNull(v, 'topK', where),
    minP: numOrNull(v, 'minP', where),
    maxTokens: or('maxTokens', () => num(v, 'maxTokens', where), d.maxTokens),
    seed: numOrNull(v, 'seed', where),
    json,
    schema: or('schema', () => str(v, 'schema', where), d.schema),
  };
}

function parseStats(v: unknown, where: string): ReplyStats | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new Error(`${where} must be an object`);
  return {
    ttftMs: numOrNull(v, 'ttftMs', where), tokensPerSecond: numOrNull(v, 'tokensPerSecond', where),
    promptTokens: numOrNull(v, 'promptTokens', where), completionTokens: numOrNull(v, 'completionTokens', where),
    finishReason: str(v, 'finishReason', where),
  };
}

/** Reads an exported conversation (the file's text); it is given a new id, so it never overwrites one. */
export function parseConversation(text: string): Conversation {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (e) {
    throw new Error(`the file is not JSON: ${(e as Error).message}`);
  }
  const c = isObject(file) && isObject(file.conversation) ? file.conversation : file;
  if (!isObject(c)) throw new Error('the file holds no conversation object');
  if (!Array.isArray(c.messages)) throw new Error('conversation.messages must be an array');
  const messages = c.messages.map((m, i): ChatMessage => {
    const where = `conversation.messages[${i}]`;
    if (!isObject(m)) throw new Error(`${where} must be an object`);
    if (m.role !== 'user' && m.role !== 'assistant') throw new Error(`${where}.role must be "user" or "assistant"`);
    const out: ChatMessage = { role: m.role, content: str(m, 'content', where) };
    if (m.reasoning !== undefined) out.reasoning = str(m, 'reasoning', where);
    const stats = parseStats(m.stats, `${where}.stats`);
    if (stats) out.stats = stats;
    return out;
  });
  const now = Date.now();
  return {
    id: newId(),
    title: typeof c.title === 'string' && c.title.trim() ? c.title : 'Imported chat',
    createdAt: typeof c.createdAt === 'number' ? c.createdAt : now,
    updatedAt: now,
    settings: parseSettings(c.settings, 'conversation.settings'),
    messages,
  };
}
