// Positional reads and whole-buffer writes shared by the format readers and writers.
import { open, type FileHandle } from 'node:fs/promises';
import { FormatError } from './tensor.js';

/** Largest single read or write (FileHandle.read/write take at most 2^31-1 bytes). */
const IO_CHUNK = 1 << 30;

/**
 * Reads `length` bytes at absolute `offset` into a fresh buffer (its own ArrayBuffer, so 8-byte
 * aligned), or into the start of `into` (returned as a view of `length` bytes): reusing one buffer
 * for many tensors saves touching fresh memory, which costs more than the read itself. A short
 * file is a FormatError: the file changed after its header was checked.
 */
export async function readAt(
  handle: FileHandle, file: string, offset: number, length: number, tensor?: string, into?: Uint8Array,
): Promise<Uint8Array> {
  if (into && into.length < length) throw new RangeError(`readAt: ${length} bytes do not fit a buffer of ${into.length}`);
  const out = into ? into.subarray(0, length) : new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const want = Math.min(IO_CHUNK, length - done);
    const { bytesRead } = await handle.read(out, done, want, offset + done);
    if (bytesRead === 0) {
      const what = tensor === undefined ? '' : `tensor "${tensor}": `;
      throw new FormatError(file, `${what}file ends at byte ${offset + done}, ${length - done} bytes short (changed while open?)`);
    }
    done += bytesRead;
  }
  return out;
}

/** Writes all of `bytes` at the handle's current position. */
export async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(IO_CHUNK, bytes.length - done));
    done += bytesWritten;
  }
}

/** Opens a model file for reading; a file that cannot be opened is a FormatError naming why. */
export async function openForReading(file: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FormatError(file, code === 'ENOENT' ? 'no such file' : `cannot open: ${code ?? (e as Error).message}`);
  }
  try {
    return { handle, size: (await handle.stat()).size };
  } catch (e) {
    await handle.close();
    throw e;
  }
}
