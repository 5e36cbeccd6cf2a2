// What the server tells the world: error messages that name the model, never the server's paths,
// and a warning when it listens beyond this machine without a key.
//
// Errors are written for the person running the server, so they name files by their full paths;
// a client is told the model (the file's name within the models folder) and never where the
// server keeps its files, its home or temporary folders.
import path from 'node:path';

/**
 * An absolute path inside a message: POSIX (/…) or Windows (C:\… or C:/…), not part of a word,
 * a URL or a JSON pointer ("#/properties/a" in a schema error), up to a space, a quote, or a
 * colon, comma or parenthesis that ends it.
 */
const ABSOLUTE_PATH = /(?<![\w.~:/\\#-])(?:\/|[A-Za-z]:[\\/])[^\s"'`<>|]*?(?=$|[\s"'`<>|]|:\s|,\s|\)\s|\)$)/g;

/** The server's own routes, which messages name ("use POST /api/chat") and which are no files. */
const SERVER_ROUTE = /^\/(?:v1|api|ui)(?:\/|$)|^\/(?:metrics|health|ready)$/;

/**
 * `message` with paths inside `modelsDir` written relative to it (so "<models>/tiny.gguf" reads
 * "tiny.gguf", the name clients use) and any other absolute path cut to its last component.
 */
export function redactPaths(message: string, modelsDir: string): string {
  const root = path.resolve(modelsDir);
  return message.replace(ABSOLUTE_PATH, (p) => {
    if (SERVER_ROUTE.test(p)) return p;
    const resolved = path.resolve(p);
    if (resolved === root) return 'the models folder';
    if (resolved.startsWith(root + path.sep)) return path.relative(root, resolved);
    return p.split(/[\\/]/).filter(Boolean).pop() ?? 'a path';
  });
}

/** Whether `host` only takes connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(?:\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * The warning `minerva serve` prints when it listens beyond this machine without an API key:
 * anyone who can reach the port can then run models, pull into and delete from the models folder.
 */
export function exposureWarning(host: string, apiKey: string | undefined): string | undefined {
  if (isLoopback(host) || apiKey) return undefined;
  return `minerva: warning: listening on ${host} without an API key: anyone who can reach this port can run, pull `
    + 'and delete models; set --api-key (or MINERVA_API_KEY), or listen on 127.0.0.1\n';
}
