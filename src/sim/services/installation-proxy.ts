/**
 * com.apple.mobile.installation_proxy, device side: Browse (the app list a backup host copies
 * into Info.plist) answered in pages of `BrowsingApplications` then `Complete`, plus Lookup.
 */
import type { Duplex } from 'node:stream';
import { isPlistDict, type PlistDict, type PlistValue } from '../../protocol/plist';
import { PlistConnection } from '../../transport/plist-connection';
import type { ServiceHandler, SimDeviceApi } from '../contracts';

export const INSTPROXY_MAX_FRAME_BYTES = 1024 * 1024;
export const INSTPROXY_IDLE_TIMEOUT_MS = 60_000;
/** Apps per BrowsingApplications page. */
export const INSTPROXY_PAGE_SIZE = 10;
/** ReturnAttributes / BundleIDs entries accepted. */
const MAX_LIST_ITEMS = 1024;

export type AppRecord = { CFBundleIdentifier: string } & Record<string, unknown>;

function stringList(v: PlistValue | undefined): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter((x): x is string => typeof x === 'string').slice(0, MAX_LIST_ITEMS);
}

function project(app: AppRecord, attrs: string[] | undefined): PlistDict {
  const base = { ApplicationType: 'User', ...app } as PlistDict;
  if (!attrs) return base;
  const out: PlistDict = { CFBundleIdentifier: app.CFBundleIdentifier };
  for (const a of attrs) if (base[a] !== undefined) out[a] = base[a];
  return out;
}

/** `apps` is read on every request, so content mutations show up in the next Browse. */
export function installationProxyService(apps: () => AppRecord[]): ServiceHandler {
  return async (stream: Duplex, device: SimDeviceApi): Promise<void> => {
    const conn = new PlistConnection(stream, {
      maxFrameBytes: INSTPROXY_MAX_FRAME_BYTES,
      readTimeoutMs: INSTPROXY_IDLE_TIMEOUT_MS,
      format: 'xml',
    });
    while (true) {
      const req = await conn.receiveDict(INSTPROXY_IDLE_TIMEOUT_MS);
      const options = isPlistDict(req.ClientOptions) ? req.ClientOptions : {};
      const attrs = stringList(options.ReturnAttributes);
      if (req.Command === 'Browse') {
        const type = typeof options.ApplicationType === 'string' ? options.ApplicationType : 'Any';
        // Every simulated app is a user app; "System" lists none, "User"/"Any" list all.
        const list = type === 'System' || type === 'Internal' ? [] : apps();
        const total = list.length;
        for (let i = 0; i < total; i += INSTPROXY_PAGE_SIZE) {
          const page = list.slice(i, i + INSTPROXY_PAGE_SIZE).map((a) => project(a, attrs));
          await conn.send({
            Status: 'BrowsingApplications',
            CurrentIndex: i,
            CurrentAmount: page.length,
            Total: total,
            CurrentList: page,
          });
        }
        await conn.send({ Status: 'Complete' });
      } else if (req.Command === 'Lookup') {
        const ids = stringList(options.BundleIDs);
        const result: PlistDict = {};
        for (const a of apps()) {
          if (!ids || ids.includes(a.CFBundleIdentifier))
            result[a.CFBundleIdentifier] = project(a, attrs);
        }
        await conn.send({ LookupResult: result, Status: 'Complete' });
      } else {
        device.log('instproxy-unknown-command', { command: String(req.Command) });
        await conn.send({ Error: 'UnknownCommand', Status: 'Complete' });
      }
    }
  };
}
