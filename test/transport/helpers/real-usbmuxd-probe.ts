/**
 * Run by usbmuxd-real.test.ts inside a private mount namespace where Debian's usbmuxd listens on
 * /var/run/usbmuxd. Exercises UsbmuxdClient with its default address and prints one JSON line.
 * Not a test file on its own.
 */
import { decodePlist, encodeBinaryPlist } from '../../../src/protocol/plist';
import { UsbmuxdClient } from '../../../src/transport/usbmuxd-client';
import { isMooringError } from '../../../src/util/errors';

async function failure(
  p: Promise<unknown>,
): Promise<{ code: string; detail: unknown; message: string } | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (!isMooringError(e)) throw e;
    return { code: e.code, detail: e.detail ?? null, message: e.message };
  }
}

async function main(): Promise<void> {
  const [udid, savedUdid, scratchUdid] = process.argv.slice(2) as [string, string, string];
  const client = new UsbmuxdClient();
  const out: Record<string, unknown> = { address: client.address };
  out.buid = await client.readBuid();
  out.record = (await client.readPairRecord(udid))?.toString('base64') ?? null;
  out.missingRecord =
    (await client.readPairRecord('0000000000000000000000000000000000000000')) ?? null;
  out.devices = await client.listDevices();
  const listener = await client.listen();
  out.listening = !listener.closed;
  listener.close();

  await client.savePairRecord(
    savedUdid,
    encodeBinaryPlist({ HostID: 'SAVED', SystemBUID: String(out.buid) }),
  );
  const back = await client.readPairRecord(savedUdid);
  out.savedBack = back ? decodePlist(back) : null;
  await client.savePairRecord(scratchUdid, encodeBinaryPlist({ HostID: 'SCRATCH' }));
  out.deleted = await client.deletePairRecord(scratchUdid);
  out.deletedAgain = await client.deletePairRecord(scratchUdid);

  out.connectError = await failure(client.connect(1, 62078));
  out.saveGarbageError = await failure(
    client.savePairRecord(savedUdid, Buffer.from('not a plist at all')),
  );
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`probe failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
