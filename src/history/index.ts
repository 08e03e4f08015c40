/** The agent's history database (devices, attempts, notifications, settings) and its reason codes. */
export { openHistory, openHistoryReadOnly, type OpenHistoryOptions } from './open';
export {
  History,
  MAX_FIELD_CHARS,
  MAX_MESSAGE_CHARS,
  MAX_PARAMS_BYTES,
  MAX_SETTING_BYTES,
} from './history';
export { SCHEMA_VERSION } from './migrations';
export { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './queries';
export * from './types';
export * from './reasons';
export { formatAgo, formatBytes, formatCount, formatDuration, formatWhen } from './units';
