export * from './constants';
export * from './packet';
export * from './body';
