/** Temp folders for history tests, removed after the file's tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

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

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export const UDID_A = '00008030-001A2B3C4D5E6F70';
export const UDID_B = '00008101-000A1B2C3D4E5F60';

// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f]/;
