/** `mooring devices`: every device usbmuxd lists, what it is, and whether we are paired with it. */
import { findPairRecord, openLockdown, UsbmuxEndpoint } from '../../lockdown';
import { type CliContext, usbmuxd } from '../context';
import { pairRecordStoreDir } from '../../util/paths';

export interface DeviceRow {
  udid: string;
  connection: 'USB' | 'Network';
  name?: string;
  productType?: string;
  iosVersion?: string;
  paired: boolean;
  problem?: string;
}

export async function listDevices(ctx: CliContext): Promise<DeviceRow[]> {
  const mux = usbmuxd(ctx);
  const rows: DeviceRow[] = [];
  for (const d of await mux.listDevices()) {
    const row: DeviceRow = { udid: d.udid, connection: d.connectionType, paired: false };
    const found = await findPairRecord(d.udid, {
      usbmuxd: mux,
      storeDir: pairRecordStoreDir(ctx.dataDir),
    }).catch(() => undefined);
    row.paired = found !== undefined;
    if (d.connectionType === 'USB') {
      // These values are readable without a session, so an unpaired device can be named too.
      try {
        const lockdown = await openLockdown(new UsbmuxEndpoint(mux, d.deviceId, d.udid));
        try {
          row.name = await lockdown.getString(undefined, 'DeviceName');
          row.productType = await lockdown.getString(undefined, 'ProductType');
          row.iosVersion = await lockdown.getString(undefined, 'ProductVersion');
        } finally {
          lockdown.close();
        }
      } catch (e) {
        row.problem = e instanceof Error ? e.message : String(e);
      }
    }
    rows.push(row);
  }
  return rows;
}

export async function devicesCommand(ctx: CliContext, json: boolean): Promise<number> {
  const rows = await listDevices(ctx);
  if (json) {
    ctx.out(JSON.stringify(rows, null, 2));
    return 0;
  }
  if (rows.length === 0) {
    ctx.out('No devices. Connect an iPhone or iPad by USB and unlock it.');
    return 0;
  }
  for (const r of rows) {
    const what = [r.name, r.productType, r.iosVersion && `iOS ${r.iosVersion}`]
      .filter(Boolean)
      .join(', ');
    ctx.out(
      `${r.udid}  ${r.connection.padEnd(7)}  ${r.paired ? 'paired    ' : 'not paired'}  ${what}` +
        (r.problem ? `  (${r.problem})` : ''),
    );
  }
  return 0;
}
