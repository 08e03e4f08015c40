/**
 * A strict command-line flag parser shared by `mooring` and `mooring-sim`: `--x v` or `--x=v`,
 * booleans without values, unknown or repeated flags refused with a message naming the flag.
 */
import { MooringError } from './errors';

export class UsageError extends MooringError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export interface ParsedFlags {
  flags: Map<string, string>;
  positionals: string[];
}

export function parseFlags(
  argv: string[],
  valued: readonly string[],
  booleans: readonly string[] = [],
): ParsedFlags {
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (booleans.includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.set(name, 'true');
      continue;
    }
    if (!valued.includes(name)) throw new UsageError(`unknown flag --${name}`);
    let value: string | undefined;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined || (eq < 0 && value.startsWith('--'))) {
      throw new UsageError(`--${name} needs a value`);
    }
    if (flags.has(name)) throw new UsageError(`--${name} given twice`);
    flags.set(name, value);
  }
  return { flags, positionals };
}

/** A non-negative integer flag, bounded by `max`. */
export function intFlag(
  flags: Map<string, string>,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > max) {
    const bound = max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : '';
    throw new UsageError(`--${name}: expected a non-negative integer${bound}, got "${v}"`);
  }
  return Number(v);
}
