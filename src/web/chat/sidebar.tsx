// The conversations, newest first: open one, start a new one, import one (a JSON file exported
// here), and rename, export or delete each.
import { useState } from 'preact/hooks';
import type { Conversation } from '../store';

type Props = {
  conversations: Conversation[];
  currentId: string;
  open: boolean;
  importError: string;
  onSelect: (id: string) => void;
  onNew: () => void;
  onRename: (id: string, title: string) => void;
  onDelete: (id: string) => void;
  onExport: (id: string) => void;
  onImport: (file: File) => void;
  /** Folds the sidebar (on a phone, where it covers the chat). */
  onClose: () => void;
};

export function Sidebar(p: Props) {
  const [renaming, setRenaming] = useState<{ id: string; title: string } | null>(null);
  return (
    <aside class="chat-sidebar" id="chat-sidebar" data-open={p.open} aria-label="Conversations">
      <div class="sidebar-actions">
        <button type="button" class="primary" onClick={p.onNew}>New chat</button>
        <label class="button">
          Import
          <input type="file" accept="application/json,.json" class="visually-hidden" aria-label="Import a conversation (JSON)"
            onChange={(e) => { const f = e.currentTarget.files?.[0]; e.currentTarget.value = ''; if (f) p.onImport(f); }} />
        </label>
        <button type="button" class="sidebar-close" onClick={p.onClose}>Close</button>
      </div>
      {p.importError && <p class="error" role="alert">{p.importError}</p>}
      <ul class="conversation-list">
        {p.conversations.map((c) => (
          <li key={c.id} class="conversation" aria-current={c.id === p.currentId ? 'true' : undefined}>
            {renaming?.id === c.id ? (
              <form class="rename" onSubmit={(e) => { e.preventDefault(); p.onRename(c.id, renaming.title.trim() || c.title); setRenaming(null); }}>
                <input aria-label="New name" value={renaming.title} ref={(el) => el?.focus()}
                  onInput={(e) => setRenaming({ id: c.id, title: e.currentTarget.value })}
                  onKeyDown={(e) => { if (e.key === 'Escape') setRenaming(null); }} />
                <button type="submit">Save</button>
              </form>
            ) : (
              <>
                <button type="button" class="conversation-title" onClick={() => p.onSelect(c.id)} title={c.title}>{c.title}</button>
                <span class="conversation-actions">
                  <button type="button" class="icon" aria-label={`Rename "${c.title}"`} title="Rename"
                    onClick={() => setRenaming({ id: c.id, title: c.title })}>✎</button>
                  <button type="button" class="icon" aria-label={`Export "${c.title}" as JSON`} title="Export as JSON"
                    onClick={() => p.onExport(c.id)}>⤓</button>
                  <button type="button" class="icon danger" aria-label={`Delete "${c.title}"`} title="Delete"
                    onClick={() => { if (confirm(`Delete "${c.title}"?`)) p.onDelete(c.id); }}>✕</button>
                </span>
              </>
            )}
          </li>
        ))}
      </ul>
    </aside>
  );
}
