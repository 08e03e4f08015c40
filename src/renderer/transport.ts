/**
 * How the UI reaches the agent, whichever side it runs on: in Electron the preload exposes
 * `window.mooring` (IPC to the main process, which hosts the agent); in a browser the agent's
 * HTTP API on the same origin (the token travels in the HttpOnly cookie). Both implement this.
 */
// The contract itself lives with the agent's types, where the preload and the IPC allow-list
// (BRIDGE_METHODS) see it too.
export type { BridgeMethod, MooringBridge } from '../agent/types';

/** A refused or failed call; `message` is the agent's own words, ready to show. */
export class BridgeError extends Error {
  constructor(
    message: string,
    /** The API's error code (BAD_REQUEST, NOT_FOUND, …) or 'UNREACHABLE'. */
    readonly code: string,
    /** HTTP status; 0 when the agent could not be reached. */
    readonly status = 0,
  ) {
    super(message);
    this.name = 'BridgeError';
  }
}

/** The message a failed call shows the user. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
