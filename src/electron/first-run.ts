/**
 * The desktop app's first launch: nothing paired and nothing ever attempted, so instead of
 * starting silently in the tray it opens its window on the setup guide (the renderer's
 * #/welcome), which walks through connecting and trusting, Wi-Fi backups and the backup folder.
 */
import type { AgentStatus } from '../agent/types';

/** The renderer route of the setup guide (src/renderer/main.ts). */
export const FIRST_RUN_ROUTE = '#/welcome';

export function isFirstRun(s: Pick<AgentStatus, 'devices' | 'summary'>): boolean {
  if (s.devices.some((d) => d.paired)) return false;
  const attempts = Object.values(s.summary.attempts).reduce((n, x) => n + x, 0);
  return attempts === 0;
}

/** The route to open the window on at launch, or undefined to stay in the tray. */
export function launchRoute(s: Pick<AgentStatus, 'devices' | 'summary'>): string | undefined {
  return isFirstRun(s) ? FIRST_RUN_ROUTE : undefined;
}
