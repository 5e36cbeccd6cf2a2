// A conversation's settings: system prompt, sampling (temperature, top-p, top-k, min-p, seed),
// max tokens, and JSON output (off, any JSON object, or a schema typed here and checked as JSON
// as it is typed). An empty optional field means the server's default.
import type { ChatSettings } from '../store';

type Props = { settings: ChatSettings; onChange: (s: ChatSettings) => void };

function schemaProblem(text: string): string | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? null : 'must be a JSON object';
  } catch (e) {
    return (e as Error).message;
  }
}

function NumberField({ label, id, value, min, max, step, optional, onValue }: {
  label: string; id: string; value: number | null; min: number; max?: number; step: number; optional?: boolean;
  onValue: (v: number | null) => void;
}) {
  return (
    <label for={id}>
      {label}
      {/* Uncontrolled (the panel is keyed by conversation): writing the parsed number back while
          one types would turn "1.0" into "1" under the caret. */}
      <input id={id} type="number" min={min} max={max} step={step} defaultValue={value === null ? '' : String(value)}
        placeholder={optional ? 'default' : undefined}
        onInput={(e) => {
          const raw = e.currentTarget.value.trim();
          if (raw === '') { if (optional && !e.currentTarget.validity.badInput) onValue(null); return; }
          const n = Number(raw);
          if (Number.isFinite(n) && n >= min && (max === undefined || n <= max)) onValue(n);
        }} />
    </label>
  );
}

export function SettingsPanel({ settings: s, onChange }: Props) {
  const set = <K extends keyof ChatSettings>(k: K, v: ChatSettings[K]) => onChange({ ...s, [k]: v });
  const problem = s.json === 'schema' ? schemaProblem(s.schema) : null;
  return (
    <div class="settings-panel" id="chat-settings">
      <label for="system-prompt" class="wide">
        System prompt
        <textarea id="system-prompt" rows={3} placeholder="You are a helpful assistant." value={s.system}
          onInput={(e) => set('system', e.currentTarget.value)} />
      </label>
      <NumberField label="Temperature" id="temperature" value={s.temperature} min={0} max={2} step={0.1} onValue={(v) => set('temperature', v ?? 0.8)} />
      <NumberField label="Top-p" id="top-p" value={s.topP} min={0.01} max={1} step={0.01} onValue={(v) => set('topP', v ?? 0.95)} />
      <NumberField label="Top-k" id="top-k" value={s.topK} min={0} step={1} optional onValue={(v) => set('topK', v)} />
      <NumberField label="Min-p" id="min-p" value={s.minP} min={0} max={1} step={0.01} optional onValue={(v) => set('minP', v)} />
      <NumberField label="Max tokens" id="max-tokens" value={s.maxTokens} min={1} max={1 << 20} step={1} onValue={(v) => set('maxTokens', v ?? 512)} />
      <NumberField label="Seed" id="seed" value={s.seed} min={0} step={1} optional onValue={(v) => set('seed', v)} />
      <label for="json-output">
        JSON output
        <select id="json-output" value={s.json} onChange={(e) => set('json', e.currentTarget.value as ChatSettings['json'])}>
          <option value="off">Off</option>
          <option value="object">Any JSON object</option>
          <option value="schema">Follow a JSON schema</option>
        </select>
      </label>
      {s.json === 'schema' && (
        <label for="json-schema" class="wide">
          JSON schema
          <textarea id="json-schema" rows={6} spellcheck={false} class="mono" value={s.schema} aria-invalid={problem !== null}
            aria-describedby="json-schema-problem"
            placeholder={'{ "type": "object", "properties": { "answer": { "type": "string" } }, "required": ["answer"] }'}
            onInput={(e) => set('schema', e.currentTarget.value)} />
          <span id="json-schema-problem" class={problem ? 'error' : 'muted'}>{problem ? `Not valid: ${problem}` : 'Valid JSON'}</span>
        </label>
      )}
    </div>
  );
}
