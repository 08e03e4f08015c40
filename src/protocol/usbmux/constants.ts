/**
 * Numbers of the usbmuxd socket protocol (reference §1.2). Shared by our client and by the
 * simulator's usbmuxd, so both sides agree by construction and the tests compare against Debian's.
 */

/** Every message starts with four little-endian u32: length (incl. header), version, message type, tag. */
export const USBMUX_HEADER_BYTES = 16;

/**
 * Upper bound for one control message in either direction. Real usbmuxd caps requests at 64 KiB
 * (`CMD_BUF_SIZE`); replies (a DeviceList, a pair record of a few KiB) stay far below 1 MiB.
 */
export const MAX_USBMUX_MESSAGE_BYTES = 1 << 20;

/** Header `version` field. */
export const USBMUX_VERSION_BINARY = 0;
export const USBMUX_VERSION_PLIST = 1;

/** Header `message` field. */
export const UsbmuxMessageType = {
  RESULT: 1,
  CONNECT: 2,
  LISTEN: 3,
  DEVICE_ADD: 4,
  DEVICE_REMOVE: 5,
  DEVICE_PAIRED: 6,
  PLIST: 8,
} as const;

/** `Number` of a Result message for the mux commands (reference §1.2). */
export const UsbmuxResult = {
  OK: 0,
  BADCOMMAND: 1,
  BADDEV: 2,
  CONNREFUSED: 3,
  NOSUCHSERVICE: 4,
  BADVERSION: 6,
} as const;

/**
 * Pair-record commands reuse `Number` for plain errno values, which overlap the table above.
 * These are the same on Linux, macOS and Windows' CRT for the values usbmuxd uses.
 */
export const UsbmuxErrno = {
  ENOENT: 2,
  EIO: 5,
  EACCES: 13,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
} as const;

/** What libusbmuxd announces in every plist request (`kLibUSBMuxVersion`). */
export const LIBUSBMUX_VERSION = 3;

/** Size of a binary-protocol DEVICE_ADD payload: u32 id, u16 pid, char serial[256], u16 pad, u32 location. */
export const BINARY_DEVICE_RECORD_BYTES = 268;

/** The `NetworkAddress` sockaddr buffer size produced by usbmuxd2/netmuxd (reference §1.5). */
export const NETWORK_ADDRESS_BYTES = 128;
