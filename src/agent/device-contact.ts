/**
 * Talking to a device outside a backup: following its presence (seen times, the lock watcher),
 * the first contact that reads its values and proves the pairing, re-probing a pairing that looked
 * invalid, and the sessions the lock watcher and the backups open with the right pair record.
 */
import type { DevicePresence } from '../discovery/registry';
import { pairingInvalid } from '../history';
import { BACKUP_DOMAIN } from '../backup/change-password';
import {
  DeviceSession,
  findPairRecord,
  WIRELESS_LOCKDOWN_DOMAIN,
  type ValueQuery,
  type ValueReader,
} from '../lockdown';
import type { PairRecord } from '../pairing/pair-record';
import { isMooringError, MooringError } from '../util/errors';
import { errText, type AgentContext } from './agent-context';
import { deviceFacts } from './device-facts';

/** A device whose pairing looked invalid is probed again at most this often while reachable. */
export const PAIRING_REPROBE_MS = 10 * 60_000;
/** Deadline for each reply of the short sessions that read a device's values. */
export const PROBE_TIMEOUT_MS = 10_000;

export class DeviceContact {
  constructor(private readonly ctx: AgentContext) {}

  onPresence(p: DevicePresence, what: 'appeared' | 'changed' | 'disappeared'): void {
    const { ctx } = this;
    if (ctx.stopping) return;
    const udid = p.udid;
    const known = ctx.db.getDevice(udid) !== undefined;
    if (p.reachable && (p.paired || known)) {
      ctx.db.markSeen(udid, p.usb ? 'usb' : 'wifi', p.lastSeen.getTime());
    }
    if (!p.reachable && known) {
      // It was there until now: "not seen since" starts here, also after a restart.
      const row = ctx.db.getDevice(udid);
      ctx.db.markSeen(udid, row?.lastTransport ?? 'usb', p.lastSeen.getTime());
    }
    const rt = ctx.runtime(udid);
    if (p.reachable && p.paired) {
      if (what === 'appeared' || !known) this.probe(udid);
      if (!rt.watched) {
        rt.watched = true;
        ctx.lockWatcher.watch(udid, () => this.openSession(udid));
      }
    } else if (rt.watched) {
      rt.watched = false;
      ctx.lockWatcher.unwatch(udid);
    }
    ctx.emitDevice(udid);
    ctx.redecide();
  }

  onLockActivity(udid: string, at: number): void {
    const { ctx } = this;
    if (ctx.stopping) return;
    const rt = ctx.runtime(udid);
    rt.lastUnlockedAt = Math.max(rt.lastUnlockedAt ?? 0, at);
    ctx.emitDevice(udid);
    ctx.redecide();
  }

  maybeReprobe(udid: string, now: number): void {
    const rt = this.ctx.runtime(udid);
    if (rt.lastProbeAt !== undefined && now - rt.lastProbeAt < PAIRING_REPROBE_MS) return;
    this.probe(udid);
  }

  /** First contact: a short session that reads the device's values and proves the pairing. */
  probe(udid: string): void {
    const { ctx } = this;
    const rt = ctx.runtime(udid);
    if (rt.probing) return;
    rt.probing = true;
    rt.lastProbeAt = ctx.now();
    ctx.track(
      (async () => {
        let session: DeviceSession;
        try {
          session = await this.openSession(udid);
        } catch (e) {
          if (ctx.stopping) return;
          if (isMooringError(e, 'PAIRING')) this.pairingRefused(udid);
          else ctx.log(`first contact with ${udid} failed: ${errText(e)}`);
          return;
        }
        try {
          await this.readValues(udid, session);
        } catch (e) {
          ctx.log(`reading the values of ${udid} failed: ${errText(e)}`);
        } finally {
          await session.close();
        }
      })().finally(() => {
        rt.probing = false;
        ctx.redecide();
      }),
    );
  }

  /** A session to the device over its best transport; notes the successful contact. */
  async openSession(udid: string): Promise<DeviceSession> {
    const { ctx } = this;
    const endpoint = ctx.registry.endpoint(udid);
    if (!endpoint) throw new MooringError('USAGE', `${udid} is not reachable`);
    const record = await this.pairRecord(udid);
    const session = await DeviceSession.open(endpoint, record, {
      label: 'mooring',
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    if (!ctx.stopping) ctx.db.markContact(udid, ctx.now());
    return session;
  }

  async pairRecord(udid: string): Promise<PairRecord> {
    const { ctx } = this;
    const found = await findPairRecord(udid, {
      ...(ctx.usbmuxd ? { usbmuxd: ctx.usbmuxd } : {}),
      systemDir: ctx.systemDir,
      storeDir: ctx.pairRecordDir,
    });
    if (!found) {
      throw new MooringError(
        'PAIRING',
        `No pair record for ${udid}: connect it by USB, unlock it and run mooring pair --udid ${udid}`,
      );
    }
    return found.record;
  }

  /**
   * Lockdown values at contact: name, model, version, Wi-Fi MAC, whether backups ask for the
   * passcode, and whether Wi-Fi connections are on.
   */
  async readValues(udid: string, session: ValueReader): Promise<void> {
    const { ctx } = this;
    const values = await session.getDomain();
    let wifi: boolean | undefined;
    try {
      wifi = await readWifiConnections(session);
    } catch (e) {
      ctx.log(`reading the Wi-Fi switch of ${udid} failed: ${errText(e)}`);
    }
    if (ctx.stopping) return;
    // Recorded together, after both reads: any status that shows the device's name (another
    // event may send one meanwhile) shows its Wi-Fi switch too.
    const { info, passcodeRequired } = deviceFacts(udid, values);
    ctx.db.upsertDevice(info);
    ctx.db.markContact(udid, ctx.now());
    const rt = ctx.runtime(udid);
    rt.passcodeRequired = passcodeRequired;
    if (wifi !== undefined) rt.wifiBackups = wifi;
    await ctx.encryption?.readAtContact(udid, session); // H8c: WillEncrypt, password stored
    ctx.emitDevice(udid);
  }

  private pairingRefused(udid: string): void {
    const { ctx } = this;
    const rt = ctx.runtime(udid);
    rt.refusedAt = ctx.now();
    if (ctx.db.getDevice(udid) === undefined) ctx.db.upsertDevice({ udid });
    if (rt.lastReason !== 'PAIRING_INVALID')
      ctx.record({ ...pairingInvalid({ cause: 'refused' }), udid });
    rt.lastReason = 'PAIRING_INVALID';
    const n = pairingInvalid({ cause: 'refused' });
    ctx.setNext(udid, { code: n.reasonCode, message: n.message, at: null });
  }
}

/**
 * Every lockdown value readValues reads. A backup on its own thread reads these for it from the
 * backup's session (JobOptions.sessionReads); a read missing here fails there.
 */
export const CONTACT_READS: readonly ValueQuery[] = [
  {}, // the default domain: name, version, passcode (deviceFacts)
  { domain: WIRELESS_LOCKDOWN_DOMAIN, key: 'EnableWifiConnections' },
  { domain: BACKUP_DOMAIN, key: 'WillEncrypt' },
];

/** EnableWifiConnections as the device has it (a device that never had it set answers nothing: off). */
export async function readWifiConnections(session: ValueReader): Promise<boolean> {
  const v = await session.getValue(WIRELESS_LOCKDOWN_DOMAIN, 'EnableWifiConnections');
  return v === true;
}
