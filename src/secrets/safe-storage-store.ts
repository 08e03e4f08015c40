/**
 * The desktop app's choice: each device's record is sealed by Electron's `safeStorage` (the macOS
 * Keychain, Windows DPAPI, or libsecret/kwallet on Linux) before it touches the disk. Electron is
 * never imported here: src/electron passes its `safeStorage` object in.
 */
import { MooringError } from '../util/errors';
import { RecordFileStore } from './record-files';

/** The part of Electron's `safeStorage` this store uses. */
export interface SafeStorageLike {
  isEncryptionAvailable(): boolean;
  encryptString(plainText: string): Buffer;
  decryptString(encrypted: Buffer): string;
  /** Linux only: 'basic_text' means no keyring is available (a hard-coded key). */
  getSelectedStorageBackend?: () => string;
}

export class ElectronSafeStorageStore extends RecordFileStore {
  readonly kind = 'electron-safe-storage' as const;

  constructor(dir: string, safeStorage: SafeStorageLike) {
    super(dir, {
      suffix: '.sealed',
      seal: (plain) => {
        if (!safeStorage.isEncryptionAvailable()) {
          throw new MooringError(
            'IO',
            'the OS keychain is not available, so the backup password cannot be stored safely: unlock the keychain, or keep the password yourself',
          );
        }
        return safeStorage.encryptString(plain);
      },
      unseal: (sealed) => safeStorage.decryptString(sealed),
    });
  }
}
