/**
 * H8c: how a device's backup encryption reads in the UI (Overview and Settings), from the agent's
 * EncryptionStatus alone. Pure, so it is tested without a browser.
 */
import type { EncryptionStatus } from '../agent/types';

export interface EncryptionText {
  /** Short, for the Overview row: "On", "Off", "Not known yet". */
  state: string;
  /** One sentence on the password and the latest backup. */
  detail: string;
  tone: 'ok' | 'warn' | 'bad' | 'neutral';
}

export function storeName(kind: EncryptionStatus['storeKind']): string {
  return kind === 'electron-safe-storage'
    ? 'the system keychain'
    : kind === 'file'
      ? 'a file only you can read'
      : 'nowhere (Mooring runs without a password store)';
}

export function encryptionText(e: EncryptionStatus): EncryptionText {
  if (e.on === null) {
    return {
      state: 'Not known yet',
      detail: 'Mooring reads this when it next talks to the device: connect it by USB.',
      tone: 'neutral',
    };
  }
  if (!e.on) {
    return {
      state: 'Off',
      detail:
        'Backups are not encrypted, so they leave out saved passwords, Health data and Wi-Fi settings.',
      tone: 'neutral',
    };
  }
  if (!e.passwordStored) {
    return {
      state: 'On',
      detail:
        'Mooring does not know the backup password, so it cannot check that backups open: store it below.',
      tone: 'warn',
    };
  }
  if (e.latestOpens === false) {
    return {
      state: 'On',
      detail:
        'The stored password does not open the latest backup: store the password the device now uses.',
      tone: 'bad',
    };
  }
  return {
    state: 'On',
    detail:
      e.latestOpens === true
        ? `The latest backup opens with the password kept in ${storeName(e.storeKind)}.`
        : `The password is kept in ${storeName(e.storeKind)}; the next backup is checked with it.`,
    tone: 'ok',
  };
}

/** The two new-password fields: empty both = generate; otherwise they must agree. */
export function newPasswordOf(
  first: string,
  second: string,
): { password?: string } | { error: string } {
  if (first === '' && second === '') return {};
  if (first !== second) return { error: 'The two passwords differ.' };
  return { password: first };
}
