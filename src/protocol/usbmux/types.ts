import type { PlistDict } from '../plist/types';
import type { NetworkAddress } from './network-address';

/** One device as usbmuxd lists it (an `Attached` event or a `DeviceList` element). */
export interface MuxDevice {
  /** usbmuxd's handle for this attachment; changes on every re-attach. */
  deviceId: number;
  /** Lockdown-style UDID (dash after the 8th digit for 24-character serials). */
  udid: string;
  /** `SerialNumber` exactly as usbmuxd sent it. */
  serialNumber: string;
  connectionType: 'USB' | 'Network';
  /** Network devices: where the device is (from the sockaddr in `NetworkAddress`). */
  networkAddress?: NetworkAddress;
  productId?: number;
  locationId?: number;
  /** The raw `Properties` dict, for anything not lifted out above. */
  properties: PlistDict;
}

/** What usbmuxd pushes on a Listen connection. */
export type MuxEvent =
  | { type: 'attached'; device: MuxDevice }
  | { type: 'detached'; deviceId: number }
  | { type: 'paired'; deviceId: number };
