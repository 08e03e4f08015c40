export * from './messages';
export * from './file-stream';
