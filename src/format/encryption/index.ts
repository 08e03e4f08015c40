/** Encrypted backups (reference §7): keybag, key wrapping and the payload cipher. */
export * from './aes-key-wrap';
export * from './backup-keybag';
export * from './file-keys';
export * from './payload-cipher';
