/**
 * The pure parts of pairing and the setup guide under node: which devices get a Pair (or Pair
 * Again) button, when the guide opens by itself, and the state of its steps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceStatus } from '../../src/agent/types';
import { guideSteps, pairAction, PAIR_WAIT_TEXT, showGuide } from '../../src/renderer/pairing';

type D = Pick<DeviceStatus, 'paired' | 'next' | 'pairing' | 'reachable' | 'wifiBackups'>;

const paired = (o: Partial<D> = {}): D => ({
  paired: true,
  next: { code: 'NOT_DUE', message: 'Not due yet', at: 1 },
  pairing: { health: 'ok', expiresAt: null, message: null },
  reachable: { usb: false, wifi: true },
  wifiBackups: true,
  ...o,
});
const unpaired = (): D =>
  paired({
    paired: false,
    next: { code: 'NOT_PAIRED', message: 'pair it', at: null },
    pairing: { health: 'invalid', expiresAt: null, message: null },
    reachable: { usb: true, wifi: false },
    wifiBackups: null,
  });
const refused = (usb: boolean): D =>
  paired({
    pairing: { health: 'invalid', expiresAt: null, message: 'no longer trusts' },
    reachable: { usb, wifi: !usb },
  });

describe('pairing buttons', () => {
  it('offers Pair to a device without a pair record', () => {
    assert.equal(pairAction(unpaired()), 'Pair');
    assert.equal(
      pairAction(paired({ next: { code: 'NOT_PAIRED', message: '', at: null } })),
      'Pair',
    );
  });

  it('offers Pair Again to one that refused this computer, only while on USB', () => {
    assert.equal(pairAction(refused(true)), 'Pair Again');
    assert.equal(pairAction(refused(false)), null);
  });

  it('offers nothing to a paired device in good standing', () => {
    assert.equal(pairAction(paired()), null);
    assert.equal(
      pairAction(paired({ pairing: { health: 'expiring', expiresAt: 5, message: 'soon' } })),
      null,
    );
  });

  it('says how long the wait for Trust may take', () => {
    assert.equal(PAIR_WAIT_TEXT, 'Unlock the device and tap Trust (this can take up to 2 minutes)');
  });
});

describe('the setup guide', () => {
  it('opens by itself while nothing is paired, unless dismissed', () => {
    assert.equal(showGuide([], false), true);
    assert.equal(showGuide([unpaired()], false), true);
    assert.equal(showGuide([unpaired()], true), false);
    assert.equal(showGuide([unpaired(), paired()], false), false);
  });

  it('marks each step waiting, to do or done', () => {
    assert.deepEqual(guideSteps([]), { pair: 'waiting', wifi: 'waiting' });
    assert.deepEqual(guideSteps([unpaired()]), { pair: 'todo', wifi: 'waiting' });
    // Paired, but the Wi-Fi switch not read yet.
    assert.deepEqual(guideSteps([paired({ wifiBackups: null })]), {
      pair: 'done',
      wifi: 'waiting',
    });
    assert.deepEqual(guideSteps([paired({ wifiBackups: false }), paired()]), {
      pair: 'done',
      wifi: 'todo',
    });
    assert.deepEqual(guideSteps([paired(), unpaired()]), { pair: 'done', wifi: 'done' });
  });
});
