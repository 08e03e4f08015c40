/**
 * The rows the UI shows, named from AgentService itself: the renderer imports types from
 * src/agent/types.ts only, never from the layers behind it.
 */
import type { AgentService } from '../agent/types';

export type NotificationRow = ReturnType<AgentService['history']>['items'][number];
export type AttemptRow = ReturnType<AgentService['attempts']>['items'][number];
export type HistoryQuery = Parameters<AgentService['history']>[0];
export type Severity = NotificationRow['severity'];
