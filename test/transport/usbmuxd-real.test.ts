/**
 * UsbmuxdClient against Debian's real usbmuxd (no USB hardware needed). usbmuxd has no option for
 * its socket (/var/run/usbmuxd) or record directory (/var/lib/lockdown), so daemon and a probe
 * script run together inside a private mount namespace with temp dirs bound over /var/run and
 * /var/lib; nothing outside the namespace is touched.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePlist, encodeXmlPlist } from '../../src/protocol/plist';

const USBMUXD = '/usr/sbin/usbmuxd';
const UNSHARE = '/usr/bin/unshare';
const skip =
  process.getuid?.() !== 0
    ? 'needs root (mount namespace with bind mounts)'
    : !existsSync(USBMUXD)
      ? 'usbmuxd is not installed (apt-get install usbmuxd)'
      : !existsSync(UNSHARE)
        ? 'unshare is not installed (util-linux)'
        : false;

const UDID = '00008120-001A2B3C4D5E6F70';
const SAVED_UDID = '00008030-001D29E20E62802E';
const SCRATCH_UDID = '00008101-000A11B22C33D44E';
const BUID = '0B1C2D3E-4F50-4617-8283-949596979899';
const RECORD = {
  DeviceCertificate: Buffer.from('device cert'),
  HostCertificate: Buffer.from('host cert'),
  HostID: 'A1B2C3D4-0000-4000-8000-000000000001',
  HostPrivateKey: Buffer.from('host key'),
  RootCertificate: Buffer.from('root cert'),
  RootPrivateKey: Buffer.from('root key'),
  SystemBUID: BUID,
  WiFiMACAddress: 'aa:bb:cc:dd:ee:ff',
};

const dir = mkdtempSync(join(tmpdir(), 'mooring-real-usbmuxd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Bind the temp dirs, start usbmuxd, wait for its socket, run the probe, stop usbmuxd. */
const NAMESPACE_SCRIPT = `
set -e
mount --bind "$1/run" /var/run
mount --bind "$1/varlib" /var/lib
"$2" -f -v -U root >"$1/usbmuxd.log" 2>&1 &
mux=$!
i=0
while [ ! -S /var/run/usbmuxd ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "usbmuxd did not create its socket" >&2; kill "$mux"; exit 3; fi
  sleep 0.05
done
set +e
"$3" --import tsx "$4" "$5" "$6" "$7"
rc=$?
kill "$mux"
wait "$mux"
exit $rc
`;

test(
  'UsbmuxdClient ⇄ Debian usbmuxd: BUID, pair records, list, listen, errors',
  { skip, timeout: 60_000 },
  async () => {
    const lockdown = join(dir, 'varlib', 'lockdown');
    mkdirSync(join(dir, 'run'), { recursive: true });
    mkdirSync(lockdown, { recursive: true, mode: 0o700 });
    writeFileSync(
      join(lockdown, 'SystemConfiguration.plist'),
      encodeXmlPlist({ SystemBUID: BUID }),
    );
    const recordXml = encodeXmlPlist(RECORD);
    writeFileSync(join(lockdown, `${UDID}.plist`), recordXml, { mode: 0o600 });

    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.USBMUXD_SOCKET_ADDRESS; // the probe must find usbmuxd at the platform default
    const child = spawn(
      UNSHARE,
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        NAMESPACE_SCRIPT,
        'sh',
        dir,
        USBMUXD,
        process.execPath,
        join(__dirname, 'helpers', 'real-usbmuxd-probe.ts'),
        UDID,
        SAVED_UDID,
        SCRATCH_UDID,
      ],
      // Own process group, so a hung run can be killed whole (usbmuxd included).
      { env, cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(killer);
    const log = existsSync(join(dir, 'usbmuxd.log'))
      ? readFileSync(join(dir, 'usbmuxd.log'), 'utf8')
      : '';
    assert.equal(code, 0, `probe failed (${code}):\n${stderr}\nusbmuxd log:\n${log}`);

    const out = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.deepEqual(out.address, { kind: 'unix', path: '/var/run/usbmuxd' });
    assert.equal(out.buid, BUID);
    // usbmuxd hands back the file's bytes unchanged.
    assert.equal(out.record, recordXml.toString('base64'));
    assert.equal(out.missingRecord, null);
    assert.deepEqual(out.devices, []);
    assert.equal(out.listening, true);
    assert.deepEqual(out.savedBack, { HostID: 'SAVED', SystemBUID: BUID });
    assert.equal(out.deleted, true);
    assert.equal(out.deletedAgain, false);
    // usbmuxd wrote what we saved (binary) as XML into its directory: our bind-mounted temp dir.
    const saved = readFileSync(join(lockdown, `${SAVED_UDID}.plist`));
    assert.match(saved.toString(), /^<\?xml/);
    assert.deepEqual(decodePlist(saved), { HostID: 'SAVED', SystemBUID: BUID });
    assert.equal(existsSync(join(lockdown, `${SCRATCH_UDID}.plist`)), false);
    assert.deepEqual(
      {
        code: (out.connectError as { code: string }).code,
        detail: (out.connectError as { detail: unknown }).detail,
      },
      { code: 'USBMUXD', detail: 2 },
    );
    assert.deepEqual(
      {
        code: (out.saveGarbageError as { code: string }).code,
        detail: (out.saveGarbageError as { detail: unknown }).detail,
      },
      { code: 'USBMUXD', detail: 22 },
    );
  },
);
