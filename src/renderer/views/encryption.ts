/**
 * H8c: a device's Encryption section in Settings: the state (on/off, whether Mooring keeps the
 * password, whether the latest backup opens with it), Turn on / Change password / Turn off (the
 * device shows its own passcode prompt), Store password, and the recovery sheet (a printable HTML
 * file saved through a download). Password fields are never pre-filled and are cleared after each
 * request; a generated password is shown once, right after it was set.
 */
import type { DeviceStatus, EncryptionChangeResult } from '../../agent/types';
import { announce, h, setText } from '../dom.js';
import { encryptionText, newPasswordOf } from '../encryption-logic.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

export interface EncryptionSection {
  root: HTMLElement;
  update(d: DeviceStatus): void;
}

function passwordField(
  id: string,
  label: string,
  hint: string,
  autocomplete: 'new-password' | 'current-password',
): { el: HTMLElement; input: HTMLInputElement } {
  const input = h('input', {
    id,
    type: 'password',
    autocomplete,
    spellcheck: 'false',
    'aria-describedby': `${id}-hint`,
  });
  const el = h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    input,
    h('p', { id: `${id}-hint`, class: 'hint' }, hint),
  );
  return { el, input };
}

/** Saves HTML as a file through the browser's (or Electron's) download. */
function download(fileName: string, html: string): void {
  const url = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
  const a = h('a', { href: url, download: fileName, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function encryptionSection(state: AppState, udid: string): EncryptionSection {
  const id = (s: string): string => `enc-${s}-${udid}`;
  const stateLine = h('p', { class: 'enc-state', 'data-testid': 'encryption-state' });
  const detail = h('p', { class: 'hint', 'data-testid': 'encryption-detail' });
  const result = h('p', {
    class: 'form-result',
    role: 'status',
    'data-testid': 'encryption-result',
  });
  const error = h('p', {
    class: 'error',
    role: 'alert',
    hidden: true,
    'data-testid': 'encryption-error',
  });
  const generated = h('output', {
    class: 'generated-password',
    'data-testid': 'generated-password',
  });
  const generatedBox = h(
    'div',
    { class: 'generated', hidden: true },
    h('p', {}, 'New backup password (shown once; write it down or save the recovery sheet):'),
    generated,
  );
  const saveNewSheet = h('button', { type: 'button', hidden: true }, 'Save recovery sheet');

  const current = passwordField(
    id('current'),
    'Current backup password',
    'Leave empty to use the password Mooring keeps.',
    'current-password',
  );
  const fresh = passwordField(
    id('new'),
    'New backup password',
    'Leave both empty and Mooring makes a strong one.',
    'new-password',
  );
  const again = passwordField(id('again'), 'New password again', '', 'new-password');
  const turnOn = h('button', { type: 'button', class: 'primary' }, 'Turn on encryption');
  const change = h('button', { type: 'button' }, 'Change password');
  const turnOff = h('button', { type: 'button', class: 'danger' }, 'Turn off encryption');
  const stored = passwordField(
    id('store'),
    'Backup password to keep',
    'Mooring checks it opens the latest backup before keeping it.',
    'current-password',
  );
  const storeButton = h('button', { type: 'button' }, 'Store password');
  const sheetButton = h('button', { type: 'button' }, 'Recovery sheet');
  const changeBox = h(
    'fieldset',
    {},
    h('legend', {}, 'Encryption'),
    current.el,
    fresh.el,
    again.el,
    h('div', { class: 'actions' }, turnOn, change, turnOff),
  );
  const storeBox = h(
    'fieldset',
    {},
    h('legend', {}, 'Password'),
    stored.el,
    h('div', { class: 'actions' }, storeButton, sheetButton),
  );
  const root = h(
    'div',
    { class: 'encryption', 'data-testid': 'encryption' },
    stateLine,
    detail,
    changeBox,
    storeBox,
    generatedBox,
    saveNewSheet,
    result,
    error,
  );

  let busy = false;
  let lastSheet: { html: string } | undefined;
  const buttons = [turnOn, change, turnOff, storeButton, sheetButton];

  const update = (d: DeviceStatus): void => {
    const e = d.encryption;
    const t = encryptionText(e);
    setText(stateLine, `Backup encryption: ${t.state}`);
    stateLine.className = `enc-state tone-${t.tone}`;
    setText(detail, t.detail);
    const reachable = d.paired && (d.reachable.usb || d.reachable.wifi);
    turnOn.hidden = e.on === true;
    change.hidden = e.on !== true;
    turnOff.hidden = e.on !== true;
    current.el.hidden = e.on !== true;
    for (const b of [turnOn, change, turnOff]) b.disabled = busy || !reachable || e.on === null;
    storeButton.disabled = busy || e.storeKind === null;
    sheetButton.disabled = busy || !e.passwordStored;
  };

  const refresh = (): void => {
    const d = state.devices.get(udid);
    if (d) update(d);
  };

  const run = async (what: string, work: () => Promise<void>): Promise<void> => {
    busy = true;
    for (const b of buttons) b.disabled = true;
    error.hidden = true;
    setText(result, what);
    try {
      await work();
    } catch (e) {
      setText(result, '');
      error.hidden = false;
      setText(error, errorMessage(e));
    } finally {
      busy = false;
      for (const f of [current, fresh, again, stored]) f.input.value = '';
      const d = await state.bridge.call('device', udid).catch(() => undefined);
      if (d) state.devices.set(udid, d);
      refresh();
    }
  };

  const showChange = (r: EncryptionChangeResult): void => {
    if (!r.ok) {
      setText(result, '');
      error.hidden = false;
      setText(error, r.message);
      return;
    }
    setText(result, r.message);
    announce(r.message);
    generatedBox.hidden = r.generatedPassword === null;
    setText(generated, r.generatedPassword ?? '');
    lastSheet = r.recoverySheet === null ? undefined : { html: r.recoverySheet };
    saveNewSheet.hidden = lastSheet === undefined;
  };

  const changeWith = (action: 'enable' | 'change' | 'disable'): void => {
    const next = newPasswordOf(fresh.input.value, again.input.value);
    if ('error' in next && action !== 'disable') {
      error.hidden = false;
      setText(error, next.error);
      return;
    }
    const oldPassword = current.input.value === '' ? undefined : current.input.value;
    const req = {
      action,
      ...(action !== 'disable' && 'password' in next && next.password !== undefined
        ? { password: next.password }
        : {}),
      ...(action !== 'enable' && oldPassword !== undefined ? { oldPassword } : {}),
    };
    generatedBox.hidden = true;
    saveNewSheet.hidden = true;
    void run('Asked the device; if it shows a prompt, enter the device passcode there…', async () =>
      showChange(await state.bridge.call('setEncryption', udid, req)),
    );
  };

  turnOn.addEventListener('click', () => changeWith('enable'));
  change.addEventListener('click', () => changeWith('change'));
  turnOff.addEventListener('click', () => changeWith('disable'));
  storeButton.addEventListener('click', () => {
    const password = stored.input.value;
    if (password === '') {
      error.hidden = false;
      setText(error, 'Type the backup password to keep.');
      return;
    }
    void run('Checking the password against the latest backup…', async () => {
      const r = await state.bridge.call('storeBackupPassword', udid, password);
      if (!r.stored) throw new Error(r.message);
      setText(result, r.message);
      announce(r.message);
    });
  });
  sheetButton.addEventListener('click', () => {
    void run('', async () => {
      const s = await state.bridge.call('recoverySheet', udid);
      download(s.fileName, s.html);
      setText(result, `Saved ${s.fileName}: open it and print it, then keep it somewhere safe.`);
    });
  });
  saveNewSheet.addEventListener('click', () => {
    if (lastSheet) download(`mooring-recovery-${udid}.html`, lastSheet.html);
  });

  refresh();
  return { root, update };
}
