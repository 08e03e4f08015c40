/**
 * Running Debian's libimobiledevice tools against a simulator's usbmuxd, for the tests that use
 * them as independent reference clients.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `cmd args` with USBMUXD_SOCKET_ADDRESS pointing at the simulator; stdout + stderr. */
export async function realTool(
  usbmuxdAddress: string,
  cmd: string,
  args: string[],
): Promise<string> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      env: { ...process.env, USBMUXD_SOCKET_ADDRESS: usbmuxdAddress },
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout + stderr;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`,
    );
  }
}

/**
 * `idevicepair pair` until it succeeds: as with a real phone, the first Pair only shows "Trust This
 * Computer?" and idevicepair asks to be run again once the (scripted) user has answered.
 */
export async function pairWithIdevicepair(usbmuxdAddress: string, udid: string): Promise<void> {
  let out = '';
  for (let i = 0; i < 20 && !/SUCCESS: Paired/.test(out); i++) {
    out = await realTool(usbmuxdAddress, 'idevicepair', ['-u', udid, 'pair']).catch(
      (e: Error) => e.message,
    );
    if (!/SUCCESS: Paired/.test(out)) await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(out, /SUCCESS: Paired with device/);
}
