// Shared fixtures for the format tests.
import { S_IFREG, type MbFileRecord } from '../../src/format/mbfile';

/** An ordinary file's MBFile record (the Messages database), digest included. */
export const SAMPLE_MBFILE: MbFileRecord = {
  relativePath: 'Library/SMS/sms.db',
  lastModified: 1_710_000_000,
  lastStatusChange: 1_710_000_001,
  birth: 1_700_000_000,
  size: 40960,
  mode: S_IFREG | 0o644,
  userId: 501,
  groupId: 501,
  inode: 123456,
  protectionClass: 4,
  flags: 0,
  digest: Buffer.alloc(20, 7),
};
