export * from './constants';
export * from './errors';
export * from './client';
export * from './endpoint';
export * from './session';
export * from './pair-records';
export * from './values';
