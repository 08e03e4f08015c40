/**
 * The agent's log (`DATA/logs/agent.log`), for whoever is asked "what does the log say": the
 * desktop app has no console, and a headless agent's may be a service manager's. Shown on
 * request, newest lines last, as plain text; Refresh reads it again.
 */
import { h, setText } from '../dom.js';
import type { AppState } from '../state.js';
import { errorMessage } from '../transport.js';

/** As much of the log's end as the page shows. */
export const LOG_VIEW_BYTES = 64 * 1024;

export function agentLogSection(state: AppState): { root: HTMLElement } {
  const where = h('p', { class: 'hint', 'data-mask': 'path' });
  const show = h('button', { type: 'button', class: 'secondary' }, 'Show Log');
  const result = h('p', { class: 'form-result', role: 'status' });
  const text = h('pre', {
    class: 'agent-log',
    tabindex: '0',
    'aria-label': 'The end of the agent’s log, newest last',
    hidden: true,
  });
  const root = h(
    'div',
    { class: 'agent-log-box' },
    h(
      'p',
      { class: 'hint' },
      'What Mooring did and why, line by line: useful when a backup keeps failing, or to send with a report. ',
      'The same lines: ',
      h('code', {}, 'mooring log'),
      '.',
    ),
    where,
    h('div', { class: 'actions' }, show, result),
    text,
  );

  const load = async (): Promise<void> => {
    show.disabled = true;
    setText(result, 'Reading…');
    try {
      const tail = await state.bridge.call('readLog', { maxBytes: LOG_VIEW_BYTES });
      setText(where, `In ${tail.file}`);
      text.hidden = tail.text === '';
      setText(text, tail.text);
      setText(
        result,
        tail.text === ''
          ? 'Nothing logged yet.'
          : tail.truncated
            ? 'The newest lines; older ones are in the file.'
            : '',
      );
      setText(show, 'Refresh');
      text.scrollTop = text.scrollHeight;
    } catch (e) {
      setText(result, `The log could not be read: ${errorMessage(e)}`);
    } finally {
      show.disabled = false;
    }
  };
  show.addEventListener('click', () => void load());
  return { root };
}
