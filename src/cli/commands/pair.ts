/** `mooring pair`: the "Trust This Computer?" exchange over USB, and storing the pair record. */
import { openLockdown, savePairRecord, UsbmuxEndpoint } from '../../lockdown';
import { type CliContext, resolveEndpoint, usbmuxd } from '../context';
import { pairRecordStoreDir } from '../../util/paths';

export async function pairCommand(ctx: CliContext, udid: string | undefined): Promise<number> {
  // Pairing is only possible over USB (devices answer PairingProhibitedOverThisConnection on Wi-Fi).
  const endpoint = await resolveEndpoint(ctx, udid, 'usb');
  const mux = usbmuxd(ctx);
  const systemBuid = await mux.readBuid();
  const lockdown = await openLockdown(endpoint, { label: 'mooring' });
  try {
    const name = await lockdown.getString(undefined, 'DeviceName');
    const record = await lockdown.pair({
      systemBuid,
      onDialog: () =>
        ctx.err(
          `On ${name ?? 'the device'}: tap "Trust" and enter its passcode (waiting up to 2 minutes)…`,
        ),
    });
    const saved = await savePairRecord(endpoint.udid, record, {
      usbmuxd: mux,
      deviceId: endpoint instanceof UsbmuxEndpoint ? endpoint.deviceId : undefined,
      storeDir: pairRecordStoreDir(ctx.dataDir),
    });
    const where = [saved.usbmuxd ? 'usbmuxd' : undefined, saved.storePath].filter(Boolean);
    ctx.out(
      `Paired with ${name ?? endpoint.udid} (${endpoint.udid}); record saved to ${where.join(' and ')}.`,
    );
    if (saved.usbmuxdError) {
      ctx.err(
        `usbmuxd did not take the record (${saved.usbmuxdError.message}); Mooring's copy is used.`,
      );
    }
  } finally {
    lockdown.close();
  }
  return 0;
}
