export * from './constants';
export * from './header';
export * from './reader';
export * from './messages';
export * from './binary';
export * from './network-address';
export * from './udid';
export type * from './types';
