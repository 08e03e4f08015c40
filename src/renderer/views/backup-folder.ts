/**
 * Where backups go (the global backup-dir setting): the current folder in a text field, "Use
 * This Folder" to move new backups there, "Use Default" for the agent's own folder. The agent
 * checks the folder (and refuses while a backup runs); its message is shown as it is. The old
 * folder's backups stay where they are, and the result line says so.
 */
import { announce, h, setText } from '../dom.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

/** The settable value that means the agent's own folder (src/agent/config.ts DEFAULT_DIR). */
export const DEFAULT_FOLDER = 'default';

export function backupFolderForm(
  state: AppState,
  idPrefix = 'backup-dir',
): { root: HTMLElement; dispose(): void } {
  const id = `${idPrefix}-input`;
  const input = h('input', {
    id,
    type: 'text',
    name: 'backup-dir',
    autocomplete: 'off',
    spellcheck: 'false',
    'aria-describedby': `${id}-hint ${id}-error`,
    'data-mask': 'path',
  });
  const hint = h(
    'p',
    { id: `${id}-hint`, class: 'hint' },
    `An absolute folder path for all devices, or “${DEFAULT_FOLDER}” for Mooring’s own folder. Backups already made stay in the old folder as they are.`,
  );
  const error = h('p', { id: `${id}-error`, class: 'field-error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Use This Folder');
  const reset = h('button', { type: 'button', class: 'secondary' }, 'Use Default');
  const result = h('p', { class: 'form-result', role: 'status', 'data-mask': 'path' });
  const root = h(
    'form',
    { class: 'backup-folder', novalidate: true },
    h(
      'div',
      { class: 'field' },
      h('label', { for: id }, 'Back up to this folder'),
      input,
      hint,
      error,
    ),
    h('div', { class: 'actions' }, save, reset, result),
  );
  let current: string | undefined;

  const apply = (value: string | null): void => {
    const from = current ?? state.backupDir;
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    setText(result, '');
    save.disabled = reset.disabled = true;
    state.bridge
      .call('setConfig', { 'backup-dir': value })
      .then((cfg) => {
        const to = cfg['backup-dir'] ?? '';
        current = to;
        input.value = to;
        state.setBackupDir(to);
        const text =
          to === from
            ? `Backups already go to ${to}.`
            : `New backups go to ${to}. The backups already in ${from} are left there as they are.`;
        setText(result, text);
        announce(text);
      })
      .catch((e: unknown) => {
        error.hidden = false;
        setText(error, errorMessage(e));
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      })
      .finally(() => (save.disabled = reset.disabled = false));
  };

  root.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    if (v === current) {
      setText(result, 'Nothing changed.');
      return;
    }
    apply(v);
  });
  reset.addEventListener('click', () => apply(null));

  let disposed = false;
  state.bridge
    .call('getConfig')
    .then((cfg) => {
      if (disposed) return;
      current = cfg['backup-dir'] ?? state.backupDir;
      input.value = current;
      root.dataset.loaded = 'true';
    })
    .catch((e: unknown) => {
      error.hidden = false;
      setText(error, `The backup folder could not be read: ${errorMessage(e)}`);
    });
  return { root, dispose: () => (disposed = true) };
}
