// The demo model shipped inside the package: stories260K (llama2.c, MIT), converted to GGUF by
// `minerva convert` (models/demo/README.md says how). A server whose models folder is empty
// offers it, so a first start with no network still has something to chat with.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DemoModel {
  /** The name requests use. */
  name: string;
  path: string;
}

/** The bundled demo (this file runs from <package>/dist/src/server/), or undefined if the package lacks it. */
export function bundledDemoModel(): DemoModel | undefined {
  const path = fileURLToPath(new URL('../../../models/demo/stories260K.gguf', import.meta.url));
  return existsSync(path) ? { name: 'stories260K-demo', path } : undefined;
}
