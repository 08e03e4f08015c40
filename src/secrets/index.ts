/** Backup passwords: where Mooring keeps them (secret-store.ts says why and how). */
export * from './secret-store';
export { secretsDir, type Sealer } from './record-files';
export * from './file-store';
export * from './safe-storage-store';
export * from './passphrase';
export * from './candidates';
export * from './recovery-sheet';
