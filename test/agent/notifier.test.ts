/**
 * The notifier against a real history file and a real HTTP receiver on 127.0.0.1: a webhook that
 * fails is recorded as a WEBHOOK_FAILED warning (Mooring's own, no device), once, and again only
 * after it worked or an hour later; that notice is never sent to the broken webhook itself.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Notifier } from '../../src/agent/notifier';
import { WEBHOOK_RATE_LIMIT_MS } from '../../src/agent/webhook';
import { deviceError, openHistory, pairingInvalid, type History } from '../../src/history';
import { tempDirs, UDID_A, UDID_B } from '../history/fixture';

const dirs = tempDirs('mooring-notifier-');
let server: http.Server;
let base: string;
/** The receiver answers 500 while true. */
let broken = true;
const received: string[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['x-mooring-reason']));
      res.writeHead(broken ? 500 : 200).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/topic`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  dirs.cleanup();
});

test('a failing webhook is told once as WEBHOOK_FAILED, never sent to it, and told again after it worked', async () => {
  const h: History = openHistory(path.join(dirs.tmp(), 'history.db'));
  let now = Date.UTC(2026, 10, 25, 12, 0, 0);
  const sends: Promise<unknown>[] = [];
  const n = new Notifier({
    db: h,
    webhookUrl: () => base,
    log: () => undefined,
    track: (p) => sends.push(p),
    now: () => now,
  });
  const settle = async (): Promise<void> => {
    while (sends.length > 0) await sends.shift();
  };
  const failures = () =>
    h.listHistory({ limit: 100 }).items.filter((r) => r.reasonCode === 'WEBHOOK_FAILED');
  h.upsertDevice({ udid: UDID_A });
  h.upsertDevice({ udid: UDID_B });
  try {
    n.record({ ...deviceError({ code: 105 }), udid: UDID_A });
    await settle();
    assert.equal(failures().length, 1);
    const [told] = failures();
    assert.equal(told!.udid, null);
    assert.equal(told!.kind, 'agent');
    assert.equal(told!.severity, 'warning');
    assert.match(
      told!.message,
      /could not send its notices to the webhook: webhook .*answered HTTP 500/,
    );
    assert.match(told!.fixHint ?? '', /Check the webhook URL/);
    // Another failure within the hour: not told again. The failure notice itself was not sent.
    n.record({ ...pairingInvalid({ cause: 'refused' }), udid: UDID_B });
    await settle();
    assert.equal(failures().length, 1);
    assert.deepEqual(received, ['DEVICE_ERROR', 'PAIRING_INVALID']);

    // It works again, then fails again: told again at once.
    broken = false;
    n.record({ ...deviceError({ code: 104 }), udid: UDID_B });
    await settle();
    broken = true;
    n.record({ ...deviceError({ code: 106 }), udid: UDID_A });
    await settle();
    assert.equal(failures().length, 2);
    // Still failing an hour later: told again.
    now += WEBHOOK_RATE_LIMIT_MS + 1;
    n.record({ ...pairingInvalid({ cause: 'refused' }), udid: UDID_A });
    await settle();
    assert.equal(failures().length, 3);
    assert.ok(!received.includes('WEBHOOK_FAILED'));
  } finally {
    h.close();
  }
});
