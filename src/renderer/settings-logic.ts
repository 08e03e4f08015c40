/**
 * The Settings form's pure parts: which settings changed, and which field an agent's validation
 * message is about (its messages start with the key: "interval: expected …").
 */
import type { ConfigValues } from '../agent/types';

export type Scope = 'device' | 'global';

/** Which field a validation message is about: the agent starts it with "key:" or "key ". */
export function fieldOfMessage(message: string, keys: readonly string[]): string | undefined {
  return [...keys]
    .sort((a, b) => b.length - a.length)
    .find((k) => message.startsWith(`${k}:`) || message.startsWith(`${k} `));
}

type Changes = Record<string, string | null>;

/**
 * The settings that differ from what was loaded, per scope. A resettable field left empty
 * becomes null: the device's own value goes and it follows the global one again.
 */
export function changedSettings(
  loaded: { device: ConfigValues; global: ConfigValues },
  edited: Array<{ key: string; scope: Scope; value: string; resettable?: boolean }>,
): { device: Changes; global: Changes } {
  const out = { device: {} as Changes, global: {} as Changes };
  for (const f of edited) {
    if (f.resettable && f.value === '') out[f.scope][f.key] = null;
    else if (loaded[f.scope][f.key] !== f.value) out[f.scope][f.key] = f.value;
  }
  return out;
}
