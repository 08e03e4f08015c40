/**
 * installation_proxy client: only Browse, which a backup host needs for Info.plist's app list.
 * The device answers in pages ({Status: "BrowsingApplications", CurrentList: [...]}) and ends
 * with {Status: "Complete"}; pages and entries are bounded (go-ios caps them the same way).
 */
import { MooringError } from '../../util/errors';
import { DEFAULT_READ_TIMEOUT_MS } from '../../util/stream-reader';
import { describePlistValue } from '../../protocol/plist/describe';
import { isPlistDict, type PlistDict } from '../../protocol/plist/types';
import type { PlistConnection } from '../../transport/plist-connection';

export const INSTALLATION_PROXY_SERVICE_NAME = 'com.apple.mobile.installation_proxy';

export const MAX_BROWSE_PAGES = 1000;
export const MAX_BROWSE_ENTRIES = 100_000;

export type ApplicationType = 'User' | 'System' | 'Any' | 'Internal' | (string & {});

export interface BrowseOptions {
  applicationType?: ApplicationType;
  /** Only these keys per app (e.g. CFBundleIdentifier, ApplicationSINF, iTunesMetadata). */
  returnAttributes?: string[];
  timeoutMs?: number;
}

export class InstallationProxyClient {
  constructor(readonly connection: PlistConnection) {}

  /** Every app dict the device lists. */
  async browse(opts: BrowseOptions = {}): Promise<PlistDict[]> {
    const clientOptions: PlistDict = {};
    if (opts.applicationType !== undefined) clientOptions.ApplicationType = opts.applicationType;
    if (opts.returnAttributes !== undefined)
      clientOptions.ReturnAttributes = [...opts.returnAttributes];
    await this.connection.send({ Command: 'Browse', ClientOptions: clientOptions }, 'xml');
    const apps: PlistDict[] = [];
    for (let page = 0; page < MAX_BROWSE_PAGES; page++) {
      const reply = await this.connection.receiveDict(opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS);
      if (reply.Error !== undefined) {
        const detail =
          typeof reply.Error === 'string' ? reply.Error : describePlistValue(reply.Error);
        const description =
          typeof reply.ErrorDescription === 'string' ? `: ${reply.ErrorDescription}` : '';
        throw new MooringError(
          'DEVICE_ERROR',
          `installation_proxy Browse failed with ${detail}${description}`,
          { detail },
        );
      }
      const list = reply.CurrentList;
      if (list !== undefined) {
        if (!Array.isArray(list))
          throw new MooringError('MALFORMED', 'installation_proxy CurrentList is not an array');
        if (apps.length + list.length > MAX_BROWSE_ENTRIES) {
          throw new MooringError(
            'LIMIT',
            `installation_proxy listed more than ${MAX_BROWSE_ENTRIES} apps`,
          );
        }
        for (const app of list) {
          if (!isPlistDict(app))
            throw new MooringError(
              'MALFORMED',
              'installation_proxy listed an app that is not a dict',
            );
          apps.push(app);
        }
      }
      if (reply.Status === 'Complete') return apps;
      if (reply.Status !== undefined && typeof reply.Status !== 'string') {
        throw new MooringError('MALFORMED', 'installation_proxy Status is not a string');
      }
    }
    throw new MooringError(
      'LIMIT',
      `installation_proxy Browse did not complete within ${MAX_BROWSE_PAGES} pages`,
    );
  }

  close(): void {
    this.connection.close();
  }
}
