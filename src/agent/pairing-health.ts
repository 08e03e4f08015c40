/**
 * How healthy a device's pairing with this computer is, from facts the agent already keeps.
 * Pure: the caller passes `now`.
 *
 * iOS forgets a host it has not heard from for some weeks (a Wi-Fi pairing especially); we take
 * 30 days from the last successful contact as the lifetime and warn a week before.
 */
import { pairingExpiring, pairingInvalid } from '../history/reasons';
import type { PairingHealth } from './types';

const DAY = 24 * 60 * 60 * 1000;
export const PAIRING_LIFETIME_MS = 30 * DAY;
export const PAIRING_WARN_MS = 7 * DAY;

export function pairingHealth(p: {
  paired: boolean;
  lastContact: number | null;
  refusedAt: number | null;
  now: number;
}): { health: PairingHealth; expiresAt: number | null; message: string | null } {
  const expiresAt = p.lastContact === null ? null : p.lastContact + PAIRING_LIFETIME_MS;
  if (!p.paired)
    return {
      health: 'invalid',
      expiresAt,
      message: sentence(pairingInvalid({ cause: 'missing' })),
    };
  // A refusal counts until the device has accepted us again since.
  if (p.refusedAt !== null && (p.lastContact === null || p.refusedAt >= p.lastContact)) {
    return {
      health: 'invalid',
      expiresAt,
      message: sentence(pairingInvalid({ cause: 'refused' })),
    };
  }
  if (p.lastContact === null || expiresAt === null) {
    return {
      health: 'unknown',
      expiresAt: null,
      message:
        'No successful contact with the device yet: the pairing is checked at the first connection',
    };
  }
  if (p.now >= expiresAt - PAIRING_WARN_MS) {
    const n = pairingExpiring({ lastContactAt: p.lastContact, expiresAt, now: p.now });
    return { health: 'expiring', expiresAt, message: sentence(n) };
  }
  return { health: 'ok', expiresAt, message: null };
}

/** The notice's message and what to do, as one line. */
function sentence(n: { message: string; fixHint: string | null }): string {
  return n.fixHint === null ? n.message : `${n.message}: ${lowerFirst(n.fixHint)}`;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
