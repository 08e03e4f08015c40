/**
 * The error vocabulary shared by every layer. Each error carries a stable `code` so callers
 * (the CLI, the agent, the tests) decide on the code, never on the message text.
 */
export type MooringErrorCode =
  | 'TIMEOUT' // a read waited longer than its deadline
  | 'CLOSED' // the peer closed the stream (possibly mid-message: truncated input)
  | 'FRAME_TOO_LARGE' // a length prefix exceeded its named limit
  | 'MALFORMED' // bytes that do not parse as the protocol says
  | 'LIMIT' // a structural bound (nesting, element count, path length) was exceeded
  | 'PROTOCOL' // well-formed, but not what the protocol allows at this point
  | 'DEVICE_ERROR' // the device answered with an error (lockdownd Error string, AFC status, …)
  | 'USBMUXD' // usbmuxd refused or is unreachable
  | 'PAIRING' // no pair record, or the device no longer trusts us
  | 'TLS' // the TLS handshake failed
  | 'UNSAFE_PATH' // a device-supplied path would leave its confinement
  | 'USAGE' // the user asked for something impossible; the message says what to do
  | 'IO' // local filesystem failure
  | 'WRONG_PASSWORD'; // H8a: a backup password that does not unlock the keybag (or a device refusing the old one)

export class MooringError extends Error {
  readonly code: MooringErrorCode;
  /** Protocol-level detail, e.g. lockdownd's `Error` string or an AFC status number. */
  readonly detail: string | number | undefined;

  constructor(
    code: MooringErrorCode,
    message: string,
    options: { detail?: string | number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MooringError';
    this.code = code;
    this.detail = options.detail;
  }
}

export function isMooringError(e: unknown, code?: MooringErrorCode): e is MooringError {
  return e instanceof MooringError && (code === undefined || e.code === code);
}

/** The errno name of a Node filesystem error, if it is one. */
export function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}
