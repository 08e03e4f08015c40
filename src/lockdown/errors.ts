/**
 * The one place where lockdownd's `Error` strings (reference §3.6) become MooringErrors with a
 * message a person can act on. Callers decide on `code` and `detail` (the raw Error string),
 * never on the text.
 */
import { MooringError, type MooringErrorCode } from '../util/errors';

interface ErrorInfo {
  code: MooringErrorCode;
  /** What happened and what to do, for a person. `{service}` is replaced by the service name. */
  message: string;
}

const REPAIR = 'connect it by USB, unlock it and pair again (mooring pair)';

/** Known lockdownd Error strings. Anything else becomes a generic DEVICE_ERROR. */
export const LOCKDOWN_ERRORS: Readonly<Record<string, ErrorInfo>> = {
  InvalidHostID: {
    code: 'PAIRING',
    message: `This computer is no longer trusted by the device: ${REPAIR}`,
  },
  MissingHostID: { code: 'PAIRING', message: `The device does not know this computer: ${REPAIR}` },
  MissingPairRecord: {
    code: 'PAIRING',
    message: `The device has no pairing for this computer: ${REPAIR}`,
  },
  InvalidPairRecord: {
    code: 'PAIRING',
    message: `The device rejected this computer's pairing record: ${REPAIR}`,
  },
  SavePairRecordFailed: {
    code: 'PAIRING',
    message:
      'The device could not store the pairing: restart the device and pair again (mooring pair)',
  },
  PasswordProtected: {
    code: 'DEVICE_ERROR',
    message: 'The device is locked with a passcode. Unlock the device and try again',
  },
  UserDeniedPairing: {
    code: 'PAIRING',
    message: `Someone tapped "Don't Trust" on the device. Unplug it and plug it back in, unlock it, run mooring pair and tap "Trust"`,
  },
  PairingDialogResponsePending: {
    code: 'PAIRING',
    message:
      'The device is asking "Trust This Computer?": unlock it and tap "Trust", then try again',
  },
  PairingProhibitedOverThisConnection: {
    code: 'PAIRING',
    message:
      'Pairing is not possible over this connection (Wi-Fi): connect the device by USB and run mooring pair',
  },
  MCChallengeRequired: {
    code: 'PAIRING',
    message:
      'This device is supervised and needs its supervisor certificate to pair; Mooring cannot pair supervised devices',
  },
  MCProtected: {
    code: 'PAIRING',
    message: 'A device-management profile forbids pairing with this computer',
  },
  FMiPProtected: {
    code: 'DEVICE_ERROR',
    message: 'Find My is blocking this operation on the device',
  },
  EscrowLocked: {
    code: 'DEVICE_ERROR',
    message:
      'The device is locked and cannot release its data protection keys: unlock the device and try again',
  },
  SessionInactive: {
    code: 'PROTOCOL',
    message: 'The lockdown session on the device has ended: reconnect and try again',
  },
  SessionActive: {
    code: 'PROTOCOL',
    message: 'A lockdown session is already active on this connection',
  },
  InvalidSessionID: {
    code: 'PROTOCOL',
    message: 'The device did not accept the lockdown session id: reconnect and try again',
  },
  MissingSessionID: {
    code: 'PROTOCOL',
    message: 'The device expected a lockdown session id: reconnect and try again',
  },
  InvalidConnection: {
    code: 'PROTOCOL',
    message: 'The device rejected this connection: reconnect and try again',
  },
  InvalidService: {
    code: 'DEVICE_ERROR',
    message: 'The device does not offer the service {service}',
  },
  MissingService: {
    code: 'DEVICE_ERROR',
    message: 'The device does not offer the service {service}',
  },
  ServiceLimit: {
    code: 'DEVICE_ERROR',
    message:
      'Too many connections to {service} are open on the device: close other sync tools (Finder, iTunes) and try again',
  },
  ServiceProhibited: {
    code: 'DEVICE_ERROR',
    message: 'The device does not allow starting {service} (restrictions or device management)',
  },
  GetProhibited: {
    code: 'DEVICE_ERROR',
    message: 'The device does not allow reading this value (try again inside a paired session)',
  },
  SetProhibited: { code: 'DEVICE_ERROR', message: 'The device does not allow changing this value' },
  RemoveProhibited: {
    code: 'DEVICE_ERROR',
    message: 'The device does not allow removing this value',
  },
  ImmutableValue: { code: 'DEVICE_ERROR', message: 'This device value cannot be changed' },
  MissingValue: { code: 'DEVICE_ERROR', message: 'The device has no such value' },
  MissingKey: { code: 'PROTOCOL', message: 'The device says the request lacked a required key' },
  InvalidResponse: { code: 'PROTOCOL', message: 'The device did not understand the request' },
  InvalidActivationRecord: {
    code: 'DEVICE_ERROR',
    message: 'The device is not activated: finish setting it up first',
  },
  MissingActivationRecord: {
    code: 'DEVICE_ERROR',
    message: 'The device is not activated: finish setting it up first',
  },
};

export interface LockdownErrorContext {
  /** The request that failed, e.g. "StartService". */
  request: string;
  /** For StartService: the service name. */
  service?: string;
}

/**
 * MooringError detail: StartService with the escrow bag answered MissingValue, which is how a
 * phone not unlocked since it booted refuses (its data protection keys are still sealed).
 */
export const NOT_UNLOCKED_SINCE_BOOT = 'NotUnlockedSinceBoot';

export function notUnlockedSinceBoot(service: string): MooringError {
  return new MooringError(
    'DEVICE_ERROR',
    `The device has restarted and has not been unlocked since, so it cannot open its data for ${service}: unlock it once with its passcode and try again (lockdownd StartService ${service} with the escrow bag: MissingValue)`,
    { detail: NOT_UNLOCKED_SINCE_BOOT },
  );
}

/** Maps lockdownd's `Error` string to a MooringError (detail = the raw string). */
export function lockdownError(error: string, ctx: LockdownErrorContext): MooringError {
  const info = LOCKDOWN_ERRORS[error];
  const where = ctx.service ? `${ctx.request} ${ctx.service}` : ctx.request;
  if (info === undefined) {
    return new MooringError('DEVICE_ERROR', `The device refused ${where}: ${error}`, {
      detail: error,
    });
  }
  const message = info.message.replace('{service}', ctx.service ?? 'this service');
  return new MooringError(info.code, `${message} (lockdownd ${where}: ${error})`, {
    detail: error,
  });
}

/** True when `e` is a lockdownd refusal carrying this Error string. */
export function isLockdownError(e: unknown, error: string): boolean {
  return e instanceof MooringError && e.detail === error;
}
