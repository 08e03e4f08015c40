/**
 * Temporary folders for one test file: `tmp()` makes a new one under the OS temp folder;
 * `cleanup()` (given to `after`) removes every one made.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function tempDirs(prefix: string): { tmp: () => string; cleanup: () => void } {
  const made: string[] = [];
  return {
    tmp: () => {
      const d = mkdtempSync(path.join(os.tmpdir(), prefix));
      made.push(d);
      return d;
    },
    cleanup: () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    },
  };
}
