// What a pull reports as it goes. The CLI draws bars from these; a server can stream them, e.g.
// as Ollama's /api/pull statuses (ollamaPullStatus).
import type { HashAlgorithm } from './content-hash.js';

export interface PullFileInfo {
  path: string;
  size: number;
  etag: string | undefined;
  algorithm: HashAlgorithm | undefined;
  /** `sha256:<hex>` for LFS files, `sha1:<hex>` (git blob) for small ones. */
  digest: string | undefined;
}

export type PullEvent =
  | { type: 'resolving'; repo: string; revision: string; offline: boolean }
  | { type: 'resolved'; repo: string; revision: string; commit: string; kind: 'gguf' | 'safetensors' | 'file'; files: PullFileInfo[]; totalBytes: number; offline: boolean }
  /** A file begins; for a download, a file-progress follows at once with the bytes a resumed download already has. */
  | { type: 'file-start'; file: PullFileInfo; index: number; count: number; cached: boolean }
  /** Another pull is downloading this file; we wait for it and then use its blob. */
  | { type: 'file-wait'; file: PullFileInfo }
  | { type: 'file-progress'; file: PullFileInfo; completed: number; total: number }
  | { type: 'file-retry'; file: PullFileInfo | undefined; attempt: number; delayMs: number; reason: string }
  | { type: 'file-verifying'; file: PullFileInfo }
  /** `received`: bytes that came over the network for it (0 when cached). */
  | { type: 'file-done'; file: PullFileInfo; cached: boolean; received: number }
  | { type: 'linked'; link: string; target: string }
  | { type: 'done'; modelPath: string; downloadedBytes: number };

/** One line of Ollama's /api/pull stream. */
export interface OllamaPullStatus {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** The Ollama status an event becomes, or undefined for events Ollama has no line for. */
export function ollamaPullStatus(e: PullEvent): OllamaPullStatus | undefined {
  const pulling = (f: PullFileInfo, completed: number): OllamaPullStatus => ({
    status: `pulling ${(f.etag ?? f.path).slice(0, 12)}`, digest: f.digest ?? f.path, total: f.size, completed,
  });
  switch (e.type) {
    case 'resolving': return { status: 'pulling manifest' };
    case 'file-start': return pulling(e.file, e.cached ? e.file.size : 0);
    case 'file-progress': return pulling(e.file, e.completed);
    case 'file-done': return pulling(e.file, e.file.size);
    case 'file-verifying': return { status: 'verifying sha256 digest' };
    case 'linked': return { status: 'writing manifest' };
    case 'done': return { status: 'success' };
    default: return undefined;
  }
}
