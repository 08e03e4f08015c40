/** lockdownd's port on the device (0xF27E), over usbmuxd and over Wi-Fi alike. */
export const LOCKDOWN_PORT = 62078;
/** QueryType answer of a normally booted device (restore mode answers com.apple.mobile.restored). */
export const LOCKDOWN_TYPE = 'com.apple.mobile.lockdown';
export const DEFAULT_LOCKDOWN_LABEL = 'mooring';
/** The domain holding EnableWifiConnections ("Show this iPhone when on Wi-Fi"). */
export const WIRELESS_LOCKDOWN_DOMAIN = 'com.apple.mobile.wireless_lockdown';
