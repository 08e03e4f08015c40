/**
 * The on-disk backup format (reference §5), shared by the host (store, engine, CLI) and the
 * simulated device: names, Manifest.db with its MBFile archives, and the backup's plists.
 */
export * from './file-id';
export * from './layout';
export * from './mbfile';
export * from './manifest-db';
export * from './plist-file';
export * from './status-plist';
export * from './manifest-plist';
export * from './info-plist';
export * from './keybag';
