// PLACEHOLDER (replaced by the models screen): the models folder, pulls, server status.
import type { ServerConfig } from '../api';

export function ModelsScreen(_props: { config: ServerConfig | undefined; apiKey: string }) {
  return <main class="screen">Models</main>;
}
