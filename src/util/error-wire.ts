/**
 * Errors across a thread boundary. A structured clone keeps an Error's name, message and stack
 * but drops its own properties, and callers decide on those: MooringError's `code` and `detail`,
 * a system error's `code` (ENOSPC, EROFS…) and the `cause` chain that isDiskFull walks.
 */
import { MooringError, type MooringErrorCode } from './errors';

export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** MooringError's code, or a system error's (ENOSPC…). */
  code?: string;
  detail?: string | number;
  /** Set when it was a MooringError. */
  mooring?: boolean;
  cause?: WireError;
}

/** A cause chain longer than this is cut (a cycle, or nothing a caller reads). */
const MAX_CAUSES = 8;

export function toWireError(e: unknown, depth = 0): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const w: WireError = { name: e.name, message: e.message };
  if (e.stack !== undefined) w.stack = e.stack;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') w.code = code;
  if (e instanceof MooringError) {
    w.mooring = true;
    if (e.detail !== undefined) w.detail = e.detail;
  }
  if (e.cause !== undefined && depth < MAX_CAUSES) w.cause = toWireError(e.cause, depth + 1);
  return w;
}

export function fromWireError(w: WireError): Error {
  const cause = w.cause ? { cause: fromWireError(w.cause) } : {};
  let e: Error;
  if (w.mooring && w.code !== undefined) {
    e = new MooringError(w.code as MooringErrorCode, w.message, {
      ...cause,
      ...(w.detail === undefined ? {} : { detail: w.detail }),
    });
  } else {
    e = new Error(w.message, cause);
    e.name = w.name;
    if (w.code !== undefined) (e as NodeJS.ErrnoException).code = w.code;
  }
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}
