// PLACEHOLDER (replaced by the chat screen): conversations, streaming Markdown, settings.
import type { ServerConfig } from '../api';

export function ChatScreen(_props: { config: ServerConfig | undefined; apiKey: string }) {
  return <main class="screen">Chat</main>;
}
