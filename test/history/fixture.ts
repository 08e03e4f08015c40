/** Shared pieces of the history tests. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export { tempDirs } from '../helpers/temp-dirs';

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

export const UDID_A = '00008030-001A2B3C4D5E6F70';
export const UDID_B = '00008101-000A1B2C3D4E5F60';

// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f]/;
