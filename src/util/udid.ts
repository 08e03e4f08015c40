/**
 * The shape of a device identifier as the agent, its API and the desktop bridge accept it from
 * outside: 00008120-001A2B3C4D5E6F70 (current devices) or 40 hex digits (older ones).
 */
export const UDID_SHAPE = /^(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})$/;

/** What every refusal names as accepted. */
export const UDID_EXAMPLE = '00008120-001A2B3C4D5E6F70';

export function isUdid(v: string): boolean {
  return UDID_SHAPE.test(v);
}
