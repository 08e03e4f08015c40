/**
 * The webhook against a real HTTP server on 127.0.0.1: what is POSTed (body, ntfy and Mooring
 * headers), what is never sent (skips, info), the hourly rate limit, and how failures end
 * (timeout, redirect not followed, non-2xx, refused): false and onError, never a throw.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook, WEBHOOK_RATE_LIMIT_MS } from '../../src/agent/webhook';
import type { NotificationRow } from '../../src/history';
import { UDID_A, UDID_B } from '../history/fixture';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server;
let base: string;
const received: Received[] = [];
/** Requests left hanging (the timeout test); ended in after(). */
const hanging: http.ServerResponse[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (req.url === '/hang') {
        hanging.push(res);
        return;
      }
      if (req.url === '/redirect') {
        res.writeHead(302, { Location: `${base}/elsewhere` }).end();
        return;
      }
      if (req.url === '/fail') {
        res.writeHead(500).end('broken');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"id":"x"}');
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const r of hanging) r.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

let nextId = 1;
function row(over: Partial<NotificationRow> = {}): NotificationRow {
  return {
    id: nextId++,
    at: Date.UTC(2025, 2, 4, 10),
    udid: UDID_A,
    kind: 'backup',
    severity: 'warning',
    reasonCode: 'PASSCODE_NOT_ENTERED',
    message: 'Nobody entered the passcode on the device within 2 min 00 s',
    fixHint: 'When the device asks for its passcode during a backup, enter it',
    params: null,
    attemptId: null,
    read: false,
    ...over,
  };
}

function collect(): { errors: Error[]; onError: (e: Error) => void } {
  const errors: Error[] = [];
  return { errors, onError: (e) => errors.push(e) };
}

function decodeWord(v: string | string[] | undefined): string {
  const m = /^=\?UTF-8\?B\?(.*)\?=$/.exec(String(v));
  return m === null ? String(v) : Buffer.from(m[1]!, 'base64').toString('utf8');
}

test('a warning is POSTed as plain text with the ntfy and Mooring headers', async () => {
  received.length = 0;
  const { errors, onError } = collect();
  const hook = new Webhook({ url: `${base}/mooring-topic`, onError });
  const ok = await hook.notify({ deviceName: 'Anna’s iPhone', notification: row() });
  assert.equal(ok, true);
  assert.deepEqual(errors, []);
  assert.equal(received.length, 1);
  const r = received[0]!;
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/mooring-topic');
  assert.equal(
    r.body,
    'Anna’s iPhone: Nobody entered the passcode on the device within 2 min 00 s\nWhen the device asks for its passcode during a backup, enter it',
  );
  assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  // Not ASCII: sent as an RFC 2047 encoded word, which ntfy decodes.
  assert.equal(decodeWord(r.headers.title), 'Mooring: Anna’s iPhone');
  assert.equal(r.headers.priority, 'default');
  assert.equal(r.headers.tags, 'warning');
  assert.equal(r.headers['x-mooring-reason'], 'PASSCODE_NOT_ENTERED');
  assert.equal(r.headers['x-mooring-severity'], 'warning');
  assert.equal(r.headers['x-mooring-udid'], UDID_A);

  // An error, without a fix hint and without a device name.
  const ok2 = await hook.notify({
    deviceName: null,
    notification: row({
      udid: UDID_B,
      kind: 'pairing',
      severity: 'error',
      reasonCode: 'PAIRING_INVALID',
      message: 'Pairing no longer valid',
      fixHint: null,
    }),
  });
  assert.equal(ok2, true);
  const r2 = received[1]!;
  assert.equal(r2.body, `${UDID_B}: Pairing no longer valid`);
  assert.equal(r2.headers.title, `Mooring: ${UDID_B}`);
  assert.equal(r2.headers.priority, 'high');
  assert.equal(r2.headers.tags, 'rotating_light');
  assert.equal(r2.headers['x-mooring-severity'], 'error');
});

test('skips and info notices are never sent', async () => {
  received.length = 0;
  const hook = new Webhook({ url: `${base}/t` });
  assert.equal(
    await hook.notify({
      deviceName: 'x',
      notification: row({ kind: 'skip', severity: 'warning', reasonCode: 'NOT_UNLOCKED_24H' }),
    }),
    false,
  );
  assert.equal(
    await hook.notify({
      deviceName: 'x',
      notification: row({ severity: 'info', reasonCode: 'BACKUP_SUCCEEDED' }),
    }),
    false,
  );
  assert.equal(received.length, 0);
});

test('at most one message per device and reason per hour', async () => {
  received.length = 0;
  const clock = { t: 1_000_000_000 };
  const hook = new Webhook({ url: `${base}/t`, now: () => clock.t });
  const send = (over: Partial<NotificationRow> = {}): Promise<boolean> =>
    hook.notify({ deviceName: 'Phone', notification: row(over) });

  assert.equal(await send(), true);
  clock.t += WEBHOOK_RATE_LIMIT_MS - 1;
  assert.equal(await send(), false, 'same device and reason within the hour');
  assert.equal(await send({ reasonCode: 'CONNECTION_LOST' }), true, 'another reason');
  assert.equal(await send({ udid: UDID_B }), true, 'another device');
  clock.t += 1;
  assert.equal(await send(), true, 'an hour later');
  assert.equal(received.length, 4);
  assert.deepEqual(
    received.map((r) => r.headers['x-mooring-reason']),
    ['PASSCODE_NOT_ENTERED', 'CONNECTION_LOST', 'PASSCODE_NOT_ENTERED', 'PASSCODE_NOT_ENTERED'],
  );
});

test('a receiver that does not answer: false after the timeout, reported', async () => {
  received.length = 0;
  const { errors, onError } = collect();
  const hook = new Webhook({ url: `${base}/hang`, timeoutMs: 200, onError });
  assert.equal(await hook.notify({ deviceName: 'Phone', notification: row() }), false);
  assert.equal(received.length, 1);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /did not answer within 200 ms/);
});

test('a redirect is not followed', async () => {
  received.length = 0;
  const { errors, onError } = collect();
  const hook = new Webhook({ url: `${base}/redirect`, onError });
  assert.equal(await hook.notify({ deviceName: 'Phone', notification: row() }), false);
  assert.deepEqual(
    received.map((r) => r.url),
    ['/redirect'],
  );
  assert.match(errors[0]!.message, /HTTP 302 \(a redirect, not followed\)/);
});

test('non-2xx and refused connections: false and onError, never a throw; the hour is not used up', async () => {
  received.length = 0;
  const { errors, onError } = collect();
  const failing = new Webhook({ url: `${base}/fail`, onError });
  assert.equal(await failing.notify({ deviceName: 'Phone', notification: row() }), false);
  assert.match(errors[0]!.message, /answered HTTP 500/);
  // A failed send does not count against the rate limit: the next notice is tried.
  assert.equal(await failing.notify({ deviceName: 'Phone', notification: row() }), false);
  assert.equal(received.length, 2);

  // Nothing listens on port 1 of 127.0.0.1.
  const refused = new Webhook({ url: 'http://127.0.0.1:1/t', onError });
  assert.equal(await refused.notify({ deviceName: 'Phone', notification: row() }), false);
  assert.match(errors[2]!.message, /failed: .*ECONNREFUSED/);

  // Even a reporter that throws is contained.
  const rude = new Webhook({
    url: `${base}/fail`,
    onError: () => {
      throw new Error('reporter broke');
    },
  });
  assert.equal(await rude.notify({ deviceName: 'Phone', notification: row() }), false);
});

test('header values stay on one line', async () => {
  received.length = 0;
  const hook = new Webhook({ url: `${base}/t` });
  assert.equal(
    await hook.notify({ deviceName: 'Evil\r\nX-Injected: yes', notification: row() }),
    true,
  );
  const r = received[0]!;
  assert.equal(r.headers['x-injected'], undefined);
  assert.equal(r.headers.title, 'Mooring: Evil X-Injected: yes');
});

test('only http and https URLs are accepted', () => {
  assert.throws(() => new Webhook({ url: 'file:///etc/passwd' }), /http:\/\/ or https:/);
  assert.throws(() => new Webhook({ url: 'nope' }), /not a URL/);
});
