/** pairingHealth: the four states, the expiry date and the warning boundary, and the messages. */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PAIRING_LIFETIME_MS,
  PAIRING_WARN_MS,
  pairingHealth,
} from '../../src/agent/pairing-health';

const NOW = Date.UTC(2025, 2, 4, 10, 0);
const DAY = 24 * 3_600_000;

test('lifetime and warning period', () => {
  assert.equal(PAIRING_LIFETIME_MS, 30 * DAY);
  assert.equal(PAIRING_WARN_MS, 7 * DAY);
});

test('no pair record: invalid, with the fix', () => {
  const r = pairingHealth({ paired: false, lastContact: NOW - DAY, refusedAt: null, now: NOW });
  assert.equal(r.health, 'invalid');
  assert.equal(r.expiresAt, NOW - DAY + PAIRING_LIFETIME_MS);
  assert.match(r.message ?? '', /^Pairing no longer valid: this computer has no pairing record/);
  assert.match(r.message ?? '', /connect the device by USB, unlock it and tap "Trust"/);
});

test('refused after the last contact: invalid; a later contact clears it', () => {
  const refused = pairingHealth({
    paired: true,
    lastContact: NOW - 2 * DAY,
    refusedAt: NOW - DAY,
    now: NOW,
  });
  assert.equal(refused.health, 'invalid');
  assert.match(refused.message ?? '', /no longer trusts this computer/);

  const neverContacted = pairingHealth({
    paired: true,
    lastContact: null,
    refusedAt: NOW - DAY,
    now: NOW,
  });
  assert.equal(neverContacted.health, 'invalid');
  assert.equal(neverContacted.expiresAt, null);

  const trustedAgain = pairingHealth({
    paired: true,
    lastContact: NOW - DAY,
    refusedAt: NOW - 2 * DAY,
    now: NOW,
  });
  assert.equal(trustedAgain.health, 'ok');
  assert.equal(trustedAgain.message, null);
});

test('never contacted: unknown', () => {
  const r = pairingHealth({ paired: true, lastContact: null, refusedAt: null, now: NOW });
  assert.deepEqual(
    { health: r.health, expiresAt: r.expiresAt },
    { health: 'unknown', expiresAt: null },
  );
  assert.match(r.message ?? '', /No successful contact/);
});

test('ok until a week before the expiry, then expiring (also after it)', () => {
  const expiresAt = NOW + 8 * DAY;
  const lastContact = expiresAt - PAIRING_LIFETIME_MS;
  const ok = pairingHealth({ paired: true, lastContact, refusedAt: null, now: NOW });
  assert.deepEqual(ok, { health: 'ok', expiresAt, message: null });

  const edge = pairingHealth({
    paired: true,
    lastContact,
    refusedAt: null,
    now: expiresAt - PAIRING_WARN_MS - 1,
  });
  assert.equal(edge.health, 'ok');
  const warn = pairingHealth({
    paired: true,
    lastContact,
    refusedAt: null,
    now: expiresAt - PAIRING_WARN_MS,
  });
  assert.equal(warn.health, 'expiring');
  assert.equal(warn.expiresAt, expiresAt);
  assert.match(
    warn.message ?? '',
    /its pairing may expire on 2025-03-12 at 10:00: connect the device by USB/,
  );

  const past = pairingHealth({ paired: true, lastContact, refusedAt: null, now: expiresAt + DAY });
  assert.equal(past.health, 'expiring');
  assert.match(past.message ?? '', /may have expired yesterday at 10:00/);
});
