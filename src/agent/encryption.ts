/**
 * Backup encryption from the agent (issue 8): what Mooring knows of each device's encryption
 * (WillEncrypt at contact, whether its password is stored, whether the latest backup opened with
 * it), the passwords every encrypted backup is checked with after it is made, and the three
 * actions the front ends offer: turn on / change / turn off (mobilebackup2 ChangePassword, run
 * while holding the device's backup slot so no backup starts meanwhile), store a password (only
 * one that opens the latest encrypted backup), and the recovery sheet.
 *
 * The password is kept in the secret store BEFORE the device is asked (as the CLI does), so a
 * crash between the two never loses a password the device already uses; a refusal puts the store
 * back. Passwords are never logged; they reach the device inside the lockdown TLS session only.
 */
import type { ValueReader } from '../lockdown';
import { changeBackupPassword, readWillEncrypt } from '../backup/change-password';
import type { JobEncryption, JobOutcome } from '../job/backup-to-store';
import {
  checkPassword,
  generatePassphrase,
  passwordCandidates,
  recoverySheetHtml,
  type SecretStore,
} from '../secrets';
import { openStoreReadOnly } from '../store';
import {
  encryptedKeyBagsIn,
  learnPasswordEras,
  unlockKeyBagCached,
  type PasswordCandidates,
} from '../store/encrypted';
import { isMooringError, MooringError } from '../util/errors';
import { errText, type AgentContext } from './agent-context';
import { requireReachableDevice } from './reachable-device';
import type { DeviceContact } from './device-contact';
import type {
  EncryptionChangeResult,
  EncryptionRequest,
  EncryptionStatus,
  RecoverySheetResult,
  StorePasswordResult,
} from './types';

/** Coordinator label of the slot held while the device changes its password. */
const SLOT_LABEL = 'encryption';

interface Known {
  on: boolean | null;
  passwordStored: boolean;
  latestOpens: boolean | null;
}

export class AgentEncryption {
  private readonly known = new Map<string, Known>();

  constructor(
    private readonly ctx: AgentContext,
    private readonly contact: Pick<DeviceContact, 'openSession'>,
    /** null: `--no-store-passwords` (nothing kept; every action needs the passwords given). */
    readonly secrets: SecretStore | null,
  ) {}

  private entry(udid: string): Known {
    let k = this.known.get(udid);
    if (!k) {
      k = { on: null, passwordStored: false, latestOpens: null };
      this.known.set(udid, k);
    }
    return k;
  }

  status(udid: string): EncryptionStatus {
    const k = this.entry(udid);
    return { ...k, storeKind: this.secrets?.kind ?? null };
  }

  /** Re-reads whether the store holds the device's password (never the password itself). */
  async refreshStored(udid: string): Promise<void> {
    if (!this.secrets) return;
    try {
      const stored = (await this.secrets.get(udid)) !== undefined;
      const k = this.entry(udid);
      if (k.passwordStored !== stored) {
        k.passwordStored = stored;
        this.ctx.emitDevice(udid);
      }
    } catch (e) {
      this.ctx.log(`reading the stored backup password of ${udid} failed: ${errText(e)}`);
    }
  }

  /** At every contact (first contact and each backup's session): WillEncrypt as the device says. */
  async readAtContact(udid: string, session: ValueReader): Promise<void> {
    try {
      this.entry(udid).on = await readWillEncrypt(session);
    } catch (e) {
      this.ctx.log(`reading the backup encryption of ${udid} failed: ${errText(e)}`);
    }
    await this.refreshStored(udid);
  }

  /** The passwords that may open the device's encrypted snapshots (current first, then eras). */
  passwordsFor(udid: string): PasswordCandidates {
    return passwordCandidates(this.secrets ?? undefined, udid);
  }

  /** What the job checks every encrypted backup with, and remembers the password era with. */
  jobEncryption(udid: string): JobEncryption {
    const secrets = this.secrets;
    return {
      passwords: this.passwordsFor(udid),
      ...(secrets
        ? {
            onOpened: (keyBagId: string, password: string) =>
              secrets.rememberEra(udid, keyBagId, password),
          }
        : {}),
    };
  }

  /** After a backup: whether the new latest backup opened (null: it is not encrypted). */
  afterJob(udid: string, outcome: JobOutcome): void {
    if (!outcome.ok || !outcome.snapshot) return;
    const k = this.entry(udid);
    k.latestOpens = outcome.encryption ? outcome.encryption.opened : null;
    if (outcome.encryption) k.on = true;
  }

  // ---- actions ------------------------------------------------------------------------------

  async setEncryption(udid: string, req: EncryptionRequest): Promise<EncryptionChangeResult> {
    const { ctx } = this;
    checkRequest(req);
    const u = requireReachableDevice(this.ctx, udid, ' to change its backup encryption');
    const slot = ctx.coordinator.tryAcquire(u, SLOT_LABEL);
    if (!slot.ok) {
      return {
        ok: false,
        action: req.action,
        on: this.entry(u).on === true,
        failure: 'busy',
        message:
          slot.reasonCode === 'ALREADY_RUNNING'
            ? `A backup of ${ctx.view.label(u)} is running: change its encryption when it has finished (or cancel it)`
            : 'The limit of backups running at the same time is reached: try again when one has finished',
        stored: false,
        generatedPassword: null,
        recoverySheet: null,
      };
    }
    ctx.emitDevice(u);
    try {
      return await this.changeHoldingSlot(u, req, slot.job.signal);
    } finally {
      slot.job.release();
      ctx.emitDevice(u);
      ctx.redecide();
    }
  }

  private async changeHoldingSlot(
    udid: string,
    req: EncryptionRequest,
    signal: AbortSignal,
  ): Promise<EncryptionChangeResult> {
    const { ctx, secrets } = this;
    const action = req.action;
    const generated = action !== 'disable' && req.password === undefined;
    const newPassword = action === 'disable' ? undefined : (req.password ?? generatePassphrase());
    const oldPassword = action === 'enable' ? undefined : await this.currentPassword(udid, req);
    const session = await this.contact.openSession(udid);
    let stored = false;
    let before: string | undefined;
    try {
      if (secrets && oldPassword !== undefined) {
        // The old password keeps opening the snapshots it made, whatever happens next.
        await this.learnEras(udid, oldPassword).catch((e: unknown) =>
          ctx.log(`remembering earlier passwords of ${udid} failed: ${errText(e)}`),
        );
      }
      if (secrets && newPassword !== undefined) {
        before = await secrets.get(udid);
        await secrets.set(udid, newPassword);
        stored = true;
      }
      const r = await changeBackupPassword({
        session,
        action,
        signal,
        ...(oldPassword === undefined ? {} : { oldPassword }),
        ...(newPassword === undefined ? {} : { newPassword }),
        onPrompt: (shown) =>
          ctx.log(
            `${udid} ${shown ? 'shows' : 'took down'} its passcode prompt for the password change`,
          ),
      });
      const k = this.entry(udid);
      k.on = r.willEncrypt;
      if (!r.ok) {
        if (secrets && stored) {
          if (before === undefined) await secrets.delete(udid);
          else await secrets.set(udid, before);
        }
        await this.refreshStored(udid);
        ctx.log(`backup encryption change of ${udid} refused: ${r.failure ?? 'unknown'}`);
        return {
          ok: false,
          action,
          on: r.willEncrypt,
          failure: r.failure ?? 'device-error',
          message: r.message,
          stored: false,
          generatedPassword: null,
          recoverySheet: null,
        };
      }
      if (action === 'disable' && secrets) await secrets.delete(udid);
      // The next backup is full and made with another keybag: nothing is known of it yet.
      k.latestOpens = null;
      await this.refreshStored(udid);
      ctx.log(`backup encryption of ${udid}: ${action} done`);
      const sheet =
        newPassword === undefined ? null : recoverySheetHtml(this.sheetFacts(udid, newPassword));
      return {
        ok: true,
        action,
        on: r.willEncrypt,
        failure: null,
        message:
          r.message +
          (newPassword === undefined
            ? ''
            : secrets
              ? ` Mooring keeps the password in ${describeStore(secrets)}.`
              : ' Mooring does not keep it: save the recovery sheet.'),
        stored,
        generatedPassword: generated ? (newPassword ?? null) : null,
        recoverySheet: sheet,
      };
    } catch (e) {
      if (secrets && stored) {
        // The device did not answer: it may or may not use the new password. Keep both
        // reachable: the old one as an era is already remembered; restore the current one.
        if (before !== undefined) await secrets.set(udid, before).catch(() => undefined);
        await this.refreshStored(udid);
      }
      throw e;
    } finally {
      await session.close();
    }
  }

  async storeBackupPassword(udid: string, password: string): Promise<StorePasswordResult> {
    const { ctx, secrets } = this;
    checkPassword(password);
    const u = ctx.view.requireKnown(udid);
    if (!secrets) {
      throw new MooringError(
        'USAGE',
        'Mooring runs without a password store (--no-store-passwords): restart it without that option to keep passwords',
      );
    }
    const latest = await this.latestKeyBag(u);
    if (latest === undefined) {
      await secrets.set(u, password);
      await this.refreshStored(u);
      return {
        stored: true,
        checked: false,
        message: `Stored the backup password of ${ctx.view.label(u)}; there is no encrypted backup yet to check it with (the next one is checked)`,
      };
    }
    try {
      await unlockKeyBagCached(latest.keyBag, password);
    } catch (e) {
      if (!isMooringError(e, 'WRONG_PASSWORD')) throw e;
      return {
        stored: false,
        checked: true,
        message:
          'This password does not open the latest backup, so it was not stored: give the password set when encryption was turned on (or last changed)',
      };
    }
    await secrets.rememberEra(u, latest.keyBagId, password);
    await secrets.set(u, password);
    const k = this.entry(u);
    k.latestOpens = true;
    await this.refreshStored(u);
    ctx.emitDevice(u);
    return {
      stored: true,
      checked: true,
      message: `Stored the backup password of ${ctx.view.label(u)}: it opens the latest backup`,
    };
  }

  async recoverySheet(udid: string): Promise<RecoverySheetResult> {
    const u = this.ctx.view.requireKnown(udid);
    const password = await this.secrets?.get(u);
    if (password === undefined) {
      throw new MooringError(
        'USAGE',
        `Mooring does not keep a backup password for ${this.ctx.view.label(u)}: store it first (Store password)`,
      );
    }
    return {
      fileName: `mooring-recovery-${u}.html`,
      html: recoverySheetHtml(this.sheetFacts(u, password)),
    };
  }

  // ---- helpers ------------------------------------------------------------------------------

  private async currentPassword(udid: string, req: EncryptionRequest): Promise<string> {
    if (req.oldPassword !== undefined) return req.oldPassword;
    const stored = await this.secrets?.get(udid);
    if (stored !== undefined) return stored;
    throw new MooringError(
      'USAGE',
      `Mooring does not know the current backup password of ${this.ctx.view.label(udid)}: type it in (current password)`,
    );
  }

  /** The keybag of the latest snapshot, when it is encrypted. */
  private async latestKeyBag(
    udid: string,
  ): Promise<{ keyBagId: string; keyBag: Buffer } | undefined> {
    const ro = openStoreReadOnly(this.ctx.backupDir, udid);
    const bags = await encryptedKeyBagsIn(ro.latestDir, ro.snapshotsDir);
    return bags.find((b) => b.dirs.includes(ro.latestDir));
  }

  /** Remembers `password` for every keybag of the stored snapshots it opens (not yet known). */
  private async learnEras(udid: string, password: string): Promise<void> {
    if (this.secrets) await learnPasswordEras(this.secrets, this.ctx.backupDir, udid, password);
  }

  private sheetFacts(udid: string, password: string): Parameters<typeof recoverySheetHtml>[0] {
    const name = this.ctx.db.getDevice(udid)?.name ?? 'iPhone';
    return {
      deviceName: name,
      udid,
      password,
      date: new Date(this.ctx.now()),
      backupDir: this.ctx.backupDir,
      ...(this.secrets ? { storedAt: describeStore(this.secrets) } : {}),
    };
  }
}

function describeStore(s: SecretStore): string {
  return s.kind === 'file'
    ? `a file readable only by you in ${s.location}`
    : `the system keychain (sealed files in ${s.location})`;
}

const ACTIONS = ['enable', 'change', 'disable'] as const;

/** Shape and sense of a request, before any device is bothered. Never echoes a password. */
function checkRequest(req: EncryptionRequest): void {
  if (!ACTIONS.includes(req.action)) {
    throw new MooringError('USAGE', 'action: expected enable, change or disable');
  }
  if (req.password !== undefined) {
    if (req.action === 'disable') {
      throw new MooringError(
        'USAGE',
        'password: turning encryption off takes the current password only (oldPassword)',
      );
    }
    checkPassword(req.password, 'the new password');
  }
  if (req.oldPassword !== undefined) {
    if (req.action === 'enable') {
      throw new MooringError(
        'USAGE',
        'oldPassword: turning encryption on takes a new password only',
      );
    }
    checkPassword(req.oldPassword, 'the current password');
  }
}
