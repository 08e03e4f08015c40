/**
 * The headless choice: passwords in `<data>/secrets/<UDID>.json`, 0600 in a 0700 folder, readable
 * only by the user (as ssh keys and the pair records are). Anyone who can read the user's files
 * can read them; the desktop app uses the OS keychain instead (safe-storage-store.ts).
 */
import { RecordFileStore } from './record-files';

export class FileSecretStore extends RecordFileStore {
  readonly kind = 'file' as const;

  constructor(dir: string) {
    super(dir, {
      suffix: '.json',
      seal: (plain) => Buffer.from(plain, 'utf8'),
      unseal: (sealed) => sealed.toString('utf8'),
    });
  }
}
