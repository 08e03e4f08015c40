export * from './messages';
export * from './file-stream';
export * from './frame';
