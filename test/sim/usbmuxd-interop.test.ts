/**
 * The simulator's usbmuxd as Debian's libimobiledevice tools (libusbmuxd 2.0) see it, through
 * USBMUXD_SOCKET_ADDRESS in both its UNIX: and host:port forms.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { encodeXmlPlist } from '../../src/protocol/plist';
import { UsbmuxdServer } from '../../src/sim/usbmuxd-server';
import { formatUsbmuxdAddress } from '../../src/transport/usbmuxd-address';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';

const run = promisify(execFile);
const IDEVICE_ID = '/usr/bin/idevice_id';
const IDEVICEPAIR = '/usr/bin/idevicepair';
const missing = !existsSync(IDEVICE_ID) || !existsSync(IDEVICEPAIR);
const skip = missing
  ? 'libimobiledevice-utils is not installed (apt-get install libimobiledevice-utils)'
  : false;

const USB_UDID = '00008120-001A2B3C4D5E6F70';
const WIFI_UDID = '00008030-001D29E20E62802E';

const dir = mkdtempSync(join(tmpdir(), 'mooring-mux-interop-'));
const unixServer = new UsbmuxdServer({
  address: { kind: 'unix', path: join(dir, 'usbmuxd.sock') },
  pairRecordDir: join(dir, 'lockdown'),
  connect: () => undefined,
});
const tcpServer = new UsbmuxdServer({
  address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
  pairRecordDir: join(dir, 'lockdown-tcp'),
  connect: () => undefined,
});

before(async () => {
  await unixServer.start();
  await tcpServer.start();
  for (const s of [unixServer, tcpServer]) {
    s.attach({ serialNumber: USB_UDID.replace('-', ''), connectionType: 'USB' });
    s.attach({
      serialNumber: WIFI_UDID.replace('-', ''),
      connectionType: 'Network',
      networkAddress: { family: 4, address: '127.0.0.2' },
    });
  }
});
after(async () => {
  await unixServer.stop();
  await tcpServer.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a tool against one of our servers (async: the server lives in this process). */
async function tool(server: UsbmuxdServer, file: string, args: string[]): Promise<string> {
  const env = { ...process.env, USBMUXD_SOCKET_ADDRESS: formatUsbmuxdAddress(server.address) };
  const { stdout } = await run(file, args, { env, timeout: 10_000 });
  return stdout;
}

test(
  'idevice_id -l lists the USB device (dash restored by libusbmuxd), over UNIX: and TCP',
  { skip },
  async () => {
    for (const server of [unixServer, tcpServer]) {
      assert.deepEqual((await tool(server, IDEVICE_ID, ['-l'])).trim().split('\n'), [USB_UDID]);
    }
  },
);

test('idevice_id -n lists the network device from its NetworkAddress', { skip }, async () => {
  assert.deepEqual((await tool(unixServer, IDEVICE_ID, ['-n'])).trim().split('\n'), [WIFI_UDID]);
});

test(
  'idevicepair reads our SystemBUID (ReadBUID) and a stored pair record (ReadPairRecord)',
  { skip },
  async () => {
    const buid = (await tool(unixServer, IDEVICEPAIR, ['systembuid'])).trim();
    assert.equal(buid, await unixServer.systemBuid());
    await new UsbmuxdClient({ address: unixServer.address }).savePairRecord(
      USB_UDID,
      encodeXmlPlist({ HostID: '5F1F3A2B-0000-4000-8000-0123456789AB', SystemBUID: buid }),
    );
    const hostId = (await tool(unixServer, IDEVICEPAIR, ['-u', USB_UDID, 'hostid'])).trim();
    assert.equal(hostId, '5F1F3A2B-0000-4000-8000-0123456789AB');
  },
);
