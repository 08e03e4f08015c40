/**
 * A device's Settings: its Wi-Fi switch (acts at once), its own schedule and retention (interval,
 * time window, automatic backups on/off, how long old backups are kept, whether the oldest may go
 * when the device needs room), the settings all devices share (retries per day, passcode wait,
 * webhook, pause, retention), where backups go, and the agent's log. The agent validates: its message for a bad value appears under that field. After
 * saving, the next-run time the agent now plans is shown (it moves with the schedule).
 */
import type { ConfigValues } from '../../agent/types';
import { agentLogSection } from './agent-log.js';
import { backupFolderForm } from './backup-folder.js';
import { wifiSwitch } from './wifi-switch.js';
import { encryptionSection } from './encryption.js'; // H8c
import { announce, h, setText } from '../dom.js';
import { nextRunText } from '../format.js';
import type { AppState } from '../state.js';
import { changedSettings, fieldOfMessage, type Scope } from '../settings-logic.js';
import { BridgeError, errorMessage } from '../transport.js';

interface FieldSpec {
  key: string;
  scope: Scope;
  label: string;
  hint: string;
  kind: 'text' | 'checkbox';
  /** Checkbox fields: the setting is this checkbox's state, or its opposite. */
  inverted?: boolean;
  /** Left empty, the device's own value is removed (it follows all devices again). */
  resettable?: boolean;
}

const RETENTION_HINT = 'A period such as 14d, 8w, 6m (months) or 1y, or “forever”.';

/** How long old backups are kept (src/store/retention.ts), for one scope. */
function retention(scope: Scope): FieldSpec[] {
  const inherit = scope === 'device' ? ' Empty: as for all devices.' : '';
  return [
    {
      key: 'keep-all',
      scope,
      label: 'Keep every backup for',
      hint: `${RETENTION_HINT}${inherit}`,
      kind: 'text',
      resettable: scope === 'device',
    },
    {
      key: 'keep-daily',
      scope,
      label: 'Then one a day for',
      hint: `Counted from the backup’s date; at least as long as the line above.${inherit}`,
      kind: 'text',
      resettable: scope === 'device',
    },
    {
      key: 'keep-weekly',
      scope,
      label: 'Then one a week for',
      hint: `The newest backup is always kept.${inherit}`,
      kind: 'text',
      resettable: scope === 'device',
    },
  ];
}

export const SETTINGS_FIELDS: readonly FieldSpec[] = [
  {
    key: 'interval',
    scope: 'device',
    label: 'Back up every',
    hint: 'A duration such as 24h, 12h or 1h30m (at least 10s).',
    kind: 'text',
  },
  {
    key: 'window',
    scope: 'device',
    label: 'Time window',
    hint: 'HH:MM-HH:MM in this computer’s time, such as 01:00-06:00, or “any”.',
    kind: 'text',
  },
  {
    key: 'enabled',
    scope: 'device',
    label: 'Back up this device automatically',
    hint: 'Off: only Back Up Now backs it up.',
    kind: 'checkbox',
  },
  ...retention('device'),
  {
    key: 'make-room',
    scope: 'device',
    label: 'Make room when the disk is full',
    hint: 'When the device needs room for a backup, remove this device’s oldest backups until it fits (never pinned ones, never the newest). Off: only those the lines above no longer keep.',
    kind: 'checkbox',
  },
  {
    key: 'retries-per-day',
    scope: 'global',
    label: 'Retries per day',
    hint: 'How often a failed backup is tried again in one day (1–50).',
    kind: 'text',
  },
  {
    key: 'passcode-wait',
    scope: 'global',
    label: 'Wait for an unlock',
    hint: 'How long to wait for the device to be unlocked before starting anyway, such as 2h; 0s starts at once.',
    kind: 'text',
  },
  {
    key: 'webhook',
    scope: 'global',
    label: 'Webhook',
    hint: 'An http(s) URL (ntfy works) told about warnings and errors, or “off”.',
    kind: 'text',
  },
  {
    key: 'paused',
    scope: 'global',
    label: 'Pause automatic backups (all devices)',
    hint: 'Back Up Now still works while paused.',
    kind: 'checkbox',
  },
  ...retention('global'),
];

interface Field {
  spec: FieldSpec;
  input: HTMLInputElement;
  error: HTMLElement;
  value(): string;
  set(v: string): void;
}

function field(spec: FieldSpec, udid: string): { el: HTMLElement; field: Field } {
  const id = `set-${spec.scope}-${spec.key}-${udid}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const input = h('input', {
    id,
    name: spec.key,
    type: spec.kind === 'checkbox' ? 'checkbox' : 'text',
    'aria-describedby': `${hintId} ${errorId}`,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  const hint = h('p', { id: hintId, class: 'hint' }, spec.hint);
  const label = h('label', { for: id }, spec.label);
  const el =
    spec.kind === 'checkbox'
      ? h('div', { class: 'field checkbox' }, input, label, hint, error)
      : h('div', { class: 'field' }, label, input, hint, error);
  return {
    el,
    field: {
      spec,
      input,
      error,
      value: () => (spec.kind === 'checkbox' ? String(input.checked) : input.value.trim()),
      set: (v) => {
        if (spec.kind === 'checkbox') input.checked = v === 'true';
        else input.value = v;
      },
    },
  };
}

export function settingsPanel(
  state: AppState,
  udid: string,
): { root: HTMLElement; dispose(): void } {
  const fields: Field[] = [];
  const group = (scope: Scope, legend: string): HTMLElement => {
    const set = h('fieldset', {}, h('legend', {}, legend));
    for (const spec of SETTINGS_FIELDS.filter((s) => s.scope === scope)) {
      if (spec.key === 'keep-all') set.append(h('h4', { class: 'subhead' }, 'Keep old backups'));
      const f = field(spec, udid);
      fields.push(f.field);
      set.append(f.el);
    }
    return set;
  };
  const nextLine = h('p', { class: 'next-run', 'data-testid': 'next-run' });
  const nextWhy = h('p', { class: 'why' });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const result = h('p', { class: 'form-result', role: 'status' });
  const formError = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'settings', novalidate: true },
    h('div', { class: 'next-box' }, nextLine, nextWhy),
    h('div', { class: 'groups' }, group('device', 'This device'), group('global', 'All devices')),
    formError,
    h('div', { class: 'actions' }, save, result),
  );
  const wifi = wifiSwitch(state, udid, 'set-wifi');
  const folder = backupFolderForm(state, `set-backup-dir-${udid}`);
  const encryption = encryptionSection(state, udid); // H8c
  const root = h(
    'div',
    { class: 'settings-page' },
    h(
      'section',
      { class: 'settings-block', 'aria-labelledby': 'wifi-title' },
      h('h3', { id: 'wifi-title' }, 'Wi-Fi'),
      wifi.root,
    ),
    // H8c: backup encryption of this device
    h(
      'section',
      { class: 'settings-block', 'aria-labelledby': 'encryption-title' },
      h('h3', { id: 'encryption-title' }, 'Encryption'),
      encryption.root,
    ),
    form,
    h(
      'section',
      { class: 'settings-block', 'aria-labelledby': 'folder-title' },
      h('h3', { id: 'folder-title' }, 'Where backups go'),
      folder.root,
    ),
    h(
      'section',
      { class: 'settings-block', 'aria-labelledby': 'log-title' },
      h('h3', { id: 'log-title' }, 'Agent log'),
      agentLogSection(state).root,
    ),
  );
  let loaded: { device: ConfigValues; global: ConfigValues } | undefined;

  const showNext = (): void => {
    const d = state.devices.get(udid);
    if (!d) return;
    const n = nextRunText(d, Date.now());
    setText(nextLine, n.headline);
    setText(nextWhy, n.why);
  };

  const clearErrors = (): void => {
    formError.hidden = true;
    for (const f of fields) {
      f.error.hidden = true;
      f.input.removeAttribute('aria-invalid');
    }
  };

  const load = async (): Promise<void> => {
    try {
      const [device, global] = await Promise.all([
        state.bridge.call('getConfig', udid),
        state.bridge.call('getConfig'),
      ]);
      loaded = { device, global };
      for (const f of fields) f.set(loaded[f.spec.scope][f.spec.key] ?? '');
      form.dataset.loaded = 'true';
    } catch (e) {
      formError.hidden = false;
      setText(formError, `The settings could not be loaded: ${errorMessage(e)}`);
    }
  };

  const showError = (scope: Scope, message: string): void => {
    const key = fieldOfMessage(
      message,
      fields.filter((f) => f.spec.scope === scope).map((f) => f.spec.key),
    );
    const f = fields.find((x) => x.spec.scope === scope && x.spec.key === key);
    if (!f) {
      formError.hidden = false;
      setText(formError, message);
      return;
    }
    f.error.hidden = false;
    setText(f.error, message);
    f.input.setAttribute('aria-invalid', 'true');
    f.input.focus();
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!loaded) return;
    clearErrors();
    setText(result, '');
    const changes = changedSettings(
      loaded,
      fields.map((f) => ({
        key: f.spec.key,
        scope: f.spec.scope,
        value: f.value(),
        resettable: f.spec.resettable === true,
      })),
    );
    const nothing = Object.keys(changes.device).length + Object.keys(changes.global).length === 0;
    if (nothing) {
      setText(result, 'Nothing changed.');
      return;
    }
    save.disabled = true;
    void (async () => {
      let scope: Scope = 'device';
      try {
        if (Object.keys(changes.device).length) {
          loaded!.device = await state.bridge.call('setConfig', changes.device, udid);
        }
        scope = 'global';
        if (Object.keys(changes.global).length) {
          loaded!.global = await state.bridge.call('setConfig', changes.global);
          // Global values reach the device's effective settings too.
          loaded!.device = await state.bridge.call('getConfig', udid);
        }
        for (const f of fields) f.set(loaded![f.spec.scope][f.spec.key] ?? '');
        // The agent re-plans at once; read its new plan rather than wait for the event.
        const d = await state.bridge.call('device', udid);
        if (d) state.devices.set(udid, d);
        showNext();
        const n = d ? nextRunText(d, Date.now()).headline : '';
        setText(result, `Saved. ${n}`.trim());
        announce(`Settings saved. ${n}`);
      } catch (e) {
        if (e instanceof BridgeError && e.code !== 'UNREACHABLE') showError(scope, e.message);
        else {
          formError.hidden = false;
          setText(formError, errorMessage(e));
        }
      } finally {
        save.disabled = false;
        if (document.activeElement === document.body) save.focus();
      }
    })();
  });

  showNext();
  void load();
  const unsubscribe = state.subscribe((c) => {
    if ((c.type === 'device' && c.device.udid === udid) || c.type === 'reloaded') {
      showNext();
      const d = state.devices.get(udid);
      if (d) wifi.update(d);
      if (d) encryption.update(d); // H8c
    }
  });
  const timer = setInterval(showNext, 30_000);
  return {
    root,
    dispose: () => {
      unsubscribe();
      folder.dispose();
      clearInterval(timer);
    },
  };
}
