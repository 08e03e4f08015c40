/**
 * Pairing from the agent, as `mooring pair` does it: over USB only (devices refuse Pair on
 * Wi-Fi), the device shows "Trust This Computer?", and Pair is re-sent until someone answers or
 * the bounded wait ends. The record is saved where `mooring pair` saves it (usbmuxd, and always
 * Mooring's own store), the pair records are read again, and a first contact follows, so the
 * device is backed up from then on. Every way it can go wrong ends in a message saying what to do.
 */
import { openLockdown, savePairRecord, UsbmuxEndpoint, type LockdownClient } from '../lockdown';
import type { PairRecord } from '../pairing/pair-record';
import { isMooringError, MooringError } from '../util/errors';
import { errText, type AgentContext } from './agent-context';
import type { DeviceContact } from './device-contact';
import { PROBE_TIMEOUT_MS } from './device-contact';
import type { PairResult } from './types';

/** How long the person gets to answer "Trust This Computer?" by default. */
export const DEFAULT_PAIR_WAIT_MS = 120_000;
/** Pair is re-sent this often while the dialog is up. */
const PAIR_POLL_MS = 500;

export interface PairingOptions {
  waitMs: number;
  /** Aborted when the agent stops: the wait ends at once. */
  signal: AbortSignal;
}

function waited(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0
    ? `${ms / 60_000} minute${ms === 60_000 ? '' : 's'}`
    : `${Math.round(ms / 1000)} seconds`;
}

export async function pairDevice(
  ctx: AgentContext,
  contact: Pick<DeviceContact, 'probe'>,
  udid: string,
  o: PairingOptions,
): Promise<PairResult> {
  const u = ctx.view.canonicalUdid(udid);
  if (u === undefined) {
    throw new MooringError(
      'USAGE',
      `No device ${udid} is connected: connect it by USB, unlock it and try again`,
    );
  }
  const rt = ctx.runtime(u);
  const presence = ctx.registry.get(u);
  if (ctx.stopping)
    return { paired: false, message: 'Mooring is stopping; try again after it restarts' };
  if (ctx.usbmuxd === null || presence?.usb === undefined) {
    return {
      paired: false,
      message: `${ctx.view.label(u)} is not connected by USB: pairing needs the cable. Connect it, unlock it and try again`,
    };
  }
  if (rt.pairing) {
    return {
      paired: false,
      message: `Already waiting for the answer on ${ctx.view.label(u)}: tap "Trust" on the device`,
    };
  }
  rt.pairing = true;
  const mux = ctx.usbmuxd;
  const endpoint = new UsbmuxEndpoint(mux, presence.usb.deviceId, u);
  let name: string | undefined;
  let record: PairRecord;
  try {
    const systemBuid = await mux.readBuid();
    let lockdown: LockdownClient | undefined;
    try {
      lockdown = await openLockdown(endpoint, { label: 'mooring', timeoutMs: PROBE_TIMEOUT_MS });
      name = await lockdown.getString(undefined, 'DeviceName').catch(() => undefined);
      record = await lockdown.pair({
        systemBuid,
        timeoutMs: o.waitMs,
        pollIntervalMs: PAIR_POLL_MS,
        signal: o.signal,
        onDialog: () => ctx.log(`pairing: ${u} shows "Trust This Computer?"`),
      });
    } finally {
      lockdown?.close();
    }
    const saved = await savePairRecord(u, record, {
      usbmuxd: mux,
      deviceId: presence.usb.deviceId,
      storeDir: ctx.pairRecordDir,
    });
    if (saved.usbmuxdError) {
      ctx.log(
        `pairing: usbmuxd did not take the record of ${u} (${saved.usbmuxdError.message}); Mooring's copy is used`,
      );
    }
  } catch (e) {
    return { paired: false, message: failureMessage(e, name ?? ctx.view.label(u), o) };
  } finally {
    rt.pairing = false;
  }
  // The device trusts us now: whatever refusal was remembered is over.
  rt.refusedAt = null;
  if (rt.lastReason === 'PAIRING_INVALID') rt.lastReason = undefined;
  try {
    await ctx.registry.refreshPairRecords();
  } catch (e) {
    ctx.log(`pairing: reading the pair records again failed: ${errText(e)}`);
  }
  if (!ctx.stopping) contact.probe(u);
  ctx.emitDevice(u);
  ctx.redecide();
  const who = name ?? ctx.view.label(u);
  return {
    paired: true,
    message: `Paired with ${who}: Mooring can back it up now${rt.wifiBackups === false ? '; switch on Wi-Fi backups to back it up without the cable' : ''}`,
  };
}

function failureMessage(e: unknown, who: string, o: PairingOptions): string {
  if (o.signal.aborted)
    return 'Mooring stopped before the device answered; pair again after it restarts';
  if (isMooringError(e)) {
    if (e.detail === 'UserDeniedPairing') {
      return `Someone tapped "Don't Trust" on ${who}. Unplug it and plug it back in, unlock it, pair again and tap "Trust"`;
    }
    if (e.code === 'TIMEOUT' && e.detail === 'PairingDialogResponsePending') {
      return `Nobody answered "Trust This Computer?" on ${who} within ${waited(o.waitMs)}: unlock it, pair again and tap "Trust"`;
    }
    if (e.detail === 'PasswordProtected') {
      return `${who} is locked: unlock it, pair again and tap "Trust"`;
    }
    return `Pairing with ${who} failed: ${e.message}`;
  }
  return `Pairing with ${who} failed: ${errText(e)}`;
}
