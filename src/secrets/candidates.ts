/**
 * Which passwords to try on a backup's keybag, best first: one given right now (a
 * --password-file), the one known to open this very keybag, the device's current one, then the
 * other earlier ones. The result has the shape store/encrypted.ts takes (a lookup by keybag id).
 */
import type { SecretStore } from './secret-store';

export function passwordCandidates(
  store: SecretStore | undefined,
  udid: string,
  given: readonly string[] = [],
): (keyBagId: string) => Promise<string[]> {
  return async (keyBagId) => {
    const out = [...given];
    if (store) {
      const eras = await store.eras(udid);
      const current = await store.get(udid);
      out.push(...eras.filter((e) => e.keyBagId === keyBagId).map((e) => e.password));
      if (current !== undefined) out.push(current);
      out.push(...eras.filter((e) => e.keyBagId !== keyBagId).map((e) => e.password));
    }
    return [...new Set(out)];
  };
}
