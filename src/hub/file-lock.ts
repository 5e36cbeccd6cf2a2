// A lock file per blob, so two pulls of one file (two processes, or two calls in one) do not both
// download it: created with O_EXCL, holding {pid, host, nonce}; kept fresh (mtime) while held. A
// lock is stale when its process is gone (same host) or it has not been refreshed for `staleMs`.
import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import os from 'node:os';
import { sleep } from './retry.js';

export interface LockOptions {
  /** A lock not refreshed for this long is taken over. Default 60 s (held locks refresh every staleMs/4). */
  staleMs?: number;
  /** How often a waiter looks again. Default 250 ms. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is held by someone else and we start waiting. */
  onWait?: () => void;
}

interface LockContent {
  pid: number;
  host: string;
  nonce: string;
}

/** Locks this process holds, removed on exit so a Ctrl-C does not leave them behind. */
const held = new Set<string>();
let exitHookInstalled = false;
function removeHeldOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const file of held) {
      try { unlinkSync(file); } catch { /* already gone */ }
    }
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function parse(text: string): LockContent | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    return typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.nonce === 'string' ? v as LockContent : undefined;
  } catch {
    return undefined;
  }
}

/** Why an existing lock may be taken over, or undefined while its holder lives. */
async function staleReason(file: string, staleMs: number): Promise<{ text: string } | undefined> {
  const [text, st] = await Promise.all([readFile(file, 'utf8').catch(() => undefined), stat(file).catch(() => undefined)]);
  if (text === undefined || !st) return undefined; // just released: try again
  const age = Date.now() - st.mtimeMs;
  const c = parse(text);
  if (age > staleMs) return { text };
  if (!c) return undefined; // being written right now
  if (c.host === os.hostname()) {
    if (c.pid === process.pid ? !held.has(file) : !processAlive(c.pid)) return { text };
  }
  return undefined;
}

/** Waits until this process holds `file`; resolves to the function that releases it. */
export async function acquireLock(file: string, o: LockOptions = {}): Promise<() => Promise<void>> {
  const staleMs = o.staleMs ?? 60_000;
  const pollMs = o.pollMs ?? 250;
  let told = false;
  for (;;) {
    if (o.signal?.aborted) throw o.signal.reason;
    const content: LockContent = { pid: process.pid, host: os.hostname(), nonce: randomBytes(8).toString('hex') };
    try {
      const fh = await open(file, 'wx');
      try { await fh.writeFile(JSON.stringify(content)); } finally { await fh.close(); }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const stale = await staleReason(file, staleMs);
      if (stale) {
        // Take it over only if it is still the lock judged stale (not one another waiter just made).
        const now = await readFile(file, 'utf8').catch(() => undefined);
        if (now === stale.text) await unlink(file).catch(() => {});
        continue;
      }
      if (!told) { told = true; o.onWait?.(); }
      await sleep(pollMs, o.signal);
      continue;
    }
    held.add(file);
    removeHeldOnExit();
    const refresh = setInterval(() => {
      const t = new Date();
      utimes(file, t, t).catch(() => {});
    }, Math.max(staleMs / 4, 10));
    refresh.unref();
    return async () => {
      clearInterval(refresh);
      held.delete(file);
      // Remove it only if it is still ours (a holder judged stale may have lost it).
      const now = parse(await readFile(file, 'utf8').catch(() => ''));
      if (now?.nonce === content.nonce) await unlink(file).catch(() => {});
    };
  }
}
