/**
 * The LAN password file (`mooring agent --lan-password-file FILE`): the one secret that lets the
 * API listen beyond loopback. Like any credential file it must be readable by its owner only.
 */
import { open } from 'node:fs/promises';
import { MooringError } from '../util/errors';
import { lanPasswordProblem, MAX_LAN_PASSWORD_LENGTH } from './browser-login';

/** Room for the longest password plus a line ending; anything larger is not a password file. */
const MAX_PASSWORD_FILE_BYTES = MAX_LAN_PASSWORD_LENGTH * 4 + 2;

export async function readLanPasswordFile(
  file: string,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  const usage = (why: string): MooringError =>
    new MooringError('USAGE', `--lan-password-file ${file}: ${why}`);
  let text: string;
  try {
    const h = await open(file, 'r');
    try {
      const st = await h.stat();
      if (!st.isFile()) throw usage('not a regular file');
      if (platform !== 'win32' && (st.mode & 0o077) !== 0) {
        throw usage(
          `other users can read it (mode ${(st.mode & 0o777).toString(8)}): run chmod 600 on it`,
        );
      }
      if (st.size > MAX_PASSWORD_FILE_BYTES) throw usage('too large for a password file');
      text = await h.readFile('utf8');
    } finally {
      await h.close();
    }
  } catch (e) {
    if (e instanceof MooringError) throw e;
    throw usage(`cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const password = text.replace(/\r?\n$/, '');
  const problem = lanPasswordProblem(password);
  if (problem !== undefined) throw usage(`the password is not usable: ${problem}`);
  return password;
}
