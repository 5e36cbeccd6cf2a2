// The chat page: talks to this server's OpenAI API (/v1/chat/completions, streamed), keeps the
// conversation in the page, and shows time to first token and tokens per second for each reply.
const $ = (id) => document.getElementById(id);
const state = { messages: [], controller: null, demoModel: null };

function headers() {
  const key = $('api-key').value || localStorage.getItem('minerva.apiKey') || '';
  if ($('api-key').value) localStorage.setItem('minerva.apiKey', $('api-key').value);
  return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

async function loadModels() {
  showError('');
  const res = await fetch('/v1/models', { headers: headers() });
  const body = await res.json();
  if (!res.ok) { showError(body.error?.message ?? `GET /v1/models: ${res.status}`); return; }
  const select = $('model');
  const previous = select.value || localStorage.getItem('minerva.model');
  select.replaceChildren(...body.data.map((m) => new Option(m.id, m.id)));
  if (previous && body.data.some((m) => m.id === previous)) select.value = previous;
  $('empty').hidden = body.data.length > 0;
  $('send').disabled = body.data.length === 0;
  showDemo();
}

/** The demo notice, while the demo model (offered when the models folder is empty) is picked. */
function showDemo() {
  $('demo').hidden = !state.demoModel || $('model').value !== state.demoModel;
}

function addMessage(role, text) {
  const li = document.createElement('li');
  li.className = role;
  li.dataset.role = role;
  const content = document.createElement('span');
  content.className = 'content';
  content.textContent = text;
  li.append(content);
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

async function send(text) {
  const model = $('model').value;
  if (!model) return;
  localStorage.setItem('minerva.model', model);
  state.messages.push({ role: 'user', content: text });
  addMessage('user', text);
  const li = addMessage('assistant', '');
  const content = li.querySelector('.content');
  const system = $('system').value.trim();
  const body = {
    model, stream: true, stream_options: { include_usage: true },
    messages: [...(system ? [{ role: 'system', content: system }] : []), ...state.messages],
    temperature: Number($('temperature').value), top_p: Number($('top-p').value), max_tokens: Number($('max-tokens').value),
  };
  state.controller = new AbortController();
  $('send').hidden = true; $('stop').hidden = false;
  const started = performance.now();
  let first = 0, tokens = 0, reply = '', finish = '';
  try {
    const res = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal: state.controller.signal });
    if (!res.ok) {
      const err = await res.json().catch(() => ({}));
      throw new Error(err.error?.message ?? `HTTP ${res.status}`);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        const data = event.replace(/^data: /, '');
        if (data === '[DONE]') continue;
        const chunk = JSON.parse(data);
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        const choice = chunk.choices[0];
        if (!choice) continue;
        if (choice.delta?.content) {
          if (!first) first = performance.now();
          reply += choice.delta.content;
          content.textContent = reply;
          li.scrollIntoView({ block: 'end' });
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') showError(e.message);
    finish = e.name === 'AbortError' ? 'stopped' : 'error';
  } finally {
    state.controller = null;
    $('send').hidden = false; $('stop').hidden = true;
  }
  state.messages.push({ role: 'assistant', content: reply });
  const end = performance.now();
  const stats = document.createElement('span');
  stats.className = 'stats';
  const ttft = first ? `${((first - started) / 1000).toFixed(2)} s to first token` : 'no tokens';
  const rate = first && tokens > 1 && end > first ? ` · ${((tokens - 1) / ((end - first) / 1000)).toFixed(1)} tokens/s` : '';
  stats.textContent = `${ttft}${rate}${tokens ? ` · ${tokens} tokens` : ''}${finish ? ` · ${finish}` : ''}`;
  li.append(stats);
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('input').value.trim();
  if (!text || state.controller) return;
  $('input').value = '';
  void send(text);
});
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('composer').requestSubmit(); }
});
$('stop').addEventListener('click', () => state.controller?.abort());
$('new-chat').addEventListener('click', () => { state.messages = []; $('messages').replaceChildren(); });
$('api-key').addEventListener('change', () => void loadModels());
$('api-key').value = localStorage.getItem('minerva.apiKey') ?? '';
$('model').addEventListener('change', showDemo);
fetch('/ui/config.json').then((r) => r.json()).then((c) => {
  for (const el of [$('models-dir'), ...document.querySelectorAll('.models-dir')]) el.textContent = c.modelsDir;
  state.demoModel = c.demoModel;
  showDemo();
}, () => {});
void loadModels();
