import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Appends bytes to the file being written; returns the file position after the write. */
export type ByteWriter = (bytes: Uint8Array) => number;

/**
 * Writes a file atomically: `produce` streams the content into a temporary file in the same
 * directory, which is fsynced and then renamed over `path`. Readers see the old file or the
 * complete new one, never a partial file; on failure the temporary file is removed.
 * Returns the number of bytes written.
 */
export function writeFileAtomic(path: string, produce: (write: ByteWriter) => void): number {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o644);
  let position = 0;
  let open = true;
  try {
    produce((bytes) => {
      let done = 0;
      while (done < bytes.byteLength) {
        done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
      }
      position += bytes.byteLength;
      return position;
    });
    fsyncSync(fd);
    closeSync(fd);
    open = false;
    renameSync(temp, path);
  } catch (error) {
    if (open) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // already renamed or removed
    }
    throw error;
  }
  syncDirectory(dir);
  return position;
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some platforms cannot fsync a directory; the rename itself is still atomic
  }
}
