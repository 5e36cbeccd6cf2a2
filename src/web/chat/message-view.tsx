// One message of the conversation: a user's as plain text (editable, then regenerated from
// there), an assistant's as rendered Markdown with its reasoning folded and its measures below.
import { useMemo, useState } from 'preact/hooks';
import { renderMarkdown } from '../markdown';
import type { ChatMessage } from '../store';
import { statsLine } from './generate';

export interface MessageActions {
  /** Replace this user message's text and regenerate the reply after it. */
  onEdit?: (text: string) => void;
  onRegenerate?: () => void;
  onContinue?: () => void;
}

export function MessageView({ message, streaming, actions }: { message: ChatMessage; streaming: boolean; actions: MessageActions }) {
  const [editing, setEditing] = useState<string | null>(null);
  const html = useMemo(() => (message.role === 'assistant' ? renderMarkdown(message.content) : ''), [message.role, message.content]);

  if (message.role === 'user') {
    return (
      <li class="message user" data-role="user">
        {editing === null ? (
          <>
            <div class="content">{message.content}</div>
            {actions.onEdit && (
              <div class="message-actions">
                <button type="button" class="link" onClick={() => setEditing(message.content)}>Edit</button>
              </div>
            )}
          </>
        ) : (
          <form class="edit" onSubmit={(e) => { e.preventDefault(); if (editing.trim()) { actions.onEdit?.(editing); setEditing(null); } }}>
            <textarea aria-label="Edit message" rows={3} value={editing} onInput={(e) => setEditing(e.currentTarget.value)} />
            <div class="message-actions">
              <button type="submit" class="primary">Save and regenerate</button>
              <button type="button" onClick={() => setEditing(null)}>Cancel</button>
            </div>
          </form>
        )}
      </li>
    );
  }
  return (
    <li class="message assistant" data-role="assistant" aria-busy={streaming}>
      {message.reasoning && (
        <details class="reasoning">
          <summary>Reasoning{streaming && !message.content ? '…' : ''}</summary>
          <div class="reasoning-text">{message.reasoning}</div>
        </details>
      )}
      <div class="content markdown" dangerouslySetInnerHTML={{ __html: html }} />
      {message.stats && <p class="stats">{statsLine(message.stats)}</p>}
      {!streaming && (actions.onRegenerate || actions.onContinue) && (
        <div class="message-actions">
          {actions.onRegenerate && <button type="button" class="link" onClick={actions.onRegenerate}>Regenerate</button>}
          {actions.onContinue && <button type="button" class="link" onClick={actions.onContinue}>Continue</button>}
        </div>
      )}
    </li>
  );
}
