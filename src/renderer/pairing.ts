/**
 * The pure parts of pairing and first-run setup: which devices need pairing (and what the button
 * says), when the setup guide shows, and how far each of its steps is. No DOM here, so node's
 * test runner imports them as they are.
 */
import type { DeviceStatus } from '../agent/types';

/** Shown while the agent waits for the answer to "Trust This Computer?" (its wait is 2 minutes). */
export const PAIR_WAIT_TEXT = 'Unlock the device and tap Trust (this can take up to 2 minutes)';

/** Where the setup guide's "dismissed" mark is kept (the agent has no setting for it). */
export const GUIDE_DISMISSED_KEY = 'mooring.setup-guide.dismissed';

/**
 * The pairing button a device needs: "Pair" for one the agent has no pair record of, "Pair
 * Again" for one that no longer trusts this computer while it is on USB (pairing needs the
 * cable); null when it needs none.
 */
export function pairAction(
  d: Pick<DeviceStatus, 'paired' | 'next' | 'pairing' | 'reachable'>,
): 'Pair' | 'Pair Again' | null {
  if (!d.paired || d.next.code === 'NOT_PAIRED') return 'Pair';
  if (d.pairing.health === 'invalid' && d.reachable.usb) return 'Pair Again';
  return null;
}

/** The setup guide opens by itself while nothing is paired, unless it was dismissed. */
export function showGuide(
  devices: readonly Pick<DeviceStatus, 'paired'>[],
  dismissed: boolean,
): boolean {
  return !dismissed && !devices.some((d) => d.paired);
}

export type StepState = 'done' | 'todo' | 'waiting';

export interface GuideSteps {
  /** A device is paired ('done'), one waits to be paired ('todo'), or none is connected. */
  pair: StepState;
  /** Every paired device has Wi-Fi on ('done'), one has it off ('todo'), else not known yet. */
  wifi: StepState;
}

export function guideSteps(
  devices: readonly Pick<
    DeviceStatus,
    'paired' | 'next' | 'pairing' | 'reachable' | 'wifiBackups'
  >[],
): GuideSteps {
  const paired = devices.filter((d) => d.paired);
  const pair: StepState =
    paired.length > 0 ? 'done' : devices.some((d) => pairAction(d) !== null) ? 'todo' : 'waiting';
  const known = paired.filter((d) => d.wifiBackups !== null);
  const wifi: StepState = known.some((d) => d.wifiBackups === false)
    ? 'todo'
    : known.length > 0 && known.length === paired.length
      ? 'done'
      : 'waiting';
  return { pair, wifi };
}
