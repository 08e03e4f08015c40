/**
 * The desktop app's first launch decision: the window opens on the setup guide only while
 * nothing is paired and nothing was ever attempted; an unpaired device that is merely connected
 * still counts as a first run, a device paired (or any history) does not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentStatus } from '../../src/agent/types';
import { FIRST_RUN_ROUTE, isFirstRun, launchRoute } from '../../src/electron/first-run';
import { device } from './fixtures';

type Facts = Pick<AgentStatus, 'devices' | 'summary'>;

function status(o: { devices?: AgentStatus['devices']; attempts?: number } = {}): Facts {
  return {
    devices: o.devices ?? [],
    summary: {
      devices: (o.devices ?? []).length,
      attempts: {
        running: 0,
        success: o.attempts ?? 0,
        failure: 0,
        cancelled: 0,
        interrupted: 0,
      },
      notifications: 0,
      unread: { info: 0, warning: 0, error: 0, total: 0 },
    },
  };
}

const unpaired = device({
  paired: false,
  name: null,
  lastContact: null,
  lastSuccess: null,
  latestSnapshot: null,
  wifiBackups: null,
  reachable: { usb: true, wifi: false },
  next: { code: 'NOT_PAIRED', message: 'connect it by USB, unlock it and pair it', at: null },
  pairing: { health: 'invalid', expiresAt: null, message: null },
});

describe('first launch of the desktop app', () => {
  it('opens the setup guide when nothing is known at all', () => {
    assert.equal(isFirstRun(status()), true);
    assert.equal(launchRoute(status()), FIRST_RUN_ROUTE);
    assert.equal(FIRST_RUN_ROUTE, '#/welcome');
  });

  it('still does while the only device is connected but not paired', () => {
    assert.equal(launchRoute(status({ devices: [unpaired] })), FIRST_RUN_ROUTE);
  });

  it('stays in the tray once a device is paired', () => {
    assert.equal(launchRoute(status({ devices: [device(), unpaired] })), undefined);
    assert.equal(
      isFirstRun(status({ devices: [device({ lastSuccess: null, latestSnapshot: null })] })),
      false,
    );
  });

  it('stays in the tray when there is history, even with no paired device left', () => {
    assert.equal(launchRoute(status({ attempts: 1 })), undefined);
    const failed = status({ devices: [unpaired] });
    failed.summary.attempts.failure = 2;
    assert.equal(isFirstRun(failed), false);
  });
});
