/**
 * What the device is told when a file operation fails: the DL status code for the errno (the table
 * libimobiledevice and pymobiledevice3 share, via dlCodeForErrno) and strerror-style text. The text
 * is generic on purpose: host paths (user names, folder layout) are none of the device's business.
 */
import { dlCodeForErrno } from '../protocol/device-link';
import { errnoOf, isMooringError } from '../util/errors';

export interface DlErrorStatus {
  code: number;
  text: string;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EIO: 'Input/output error',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  EMFILE: 'Too many open files',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  ENAMETOOLONG: 'File name too long',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EDQUOT: 'Disk quota exceeded',
};

/** The status says our disk (or quota: mapped to ENOSPC above) is full. */
export function isDiskFullStatus(s: DlErrorStatus): boolean {
  return s.code === dlCodeForErrno('ENOSPC');
}

/** An error thrown by our own checks that should reach the device as this errno. */
export function errnoError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

export function dlStatusForError(e: unknown): DlErrorStatus {
  // Refused paths: EPERM, which the DL table maps to the generic −1.
  if (isMooringError(e, 'UNSAFE_PATH'))
    return { code: dlCodeForErrno('EPERM'), text: ERRNO_TEXT.EPERM! };
  const errno = errnoOf(e);
  // A full quota is a full disk to the device: give it the code it acts on.
  const code = dlCodeForErrno(errno === 'EDQUOT' ? 'ENOSPC' : errno);
  const text = (errno && ERRNO_TEXT[errno]) ?? (errno ? `Error ${errno}` : 'Operation failed');
  return { code, text };
}
