// Fuzzing UsbmuxdClient (src/transport/usbmuxd-client.ts) end to end over a real UNIX socket: a
// hostile "usbmuxd" answers each request with generated, mutated or truncated replies. Every call
// must settle (a value or a MooringError) and the process must survive: appium-ios-device parses
// ListDevices/ReadBUID/ReadPairRecord replies, our own codec the rest.
import { test, before, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isMooringError } from '../../src/util/errors';
import { encodeBinaryPlist, encodeXmlPlist, type PlistDict } from '../../src/protocol/plist';
import { buildAttached, encodeUsbmuxMessage, USBMUX_HEADER_BYTES } from '../../src/protocol/usbmux';
import { UsbmuxdClient } from '../../src/transport/usbmuxd-client';
import {
  anyPlistValue,
  dictOf,
  fuzzParams,
  onlyMooringErrorsAsync,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };

type Reply = { body: Buffer; mutate: (b: Buffer) => Buffer; end: boolean };
let current: Reply | undefined;
let dir: string;
let server: net.Server;
const sockets = new Set<net.Socket>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mooring-fuzz-mux-'));
  server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < USBMUX_HEADER_BYTES || !current) return;
      const tag = buf.readUInt32LE(12);
      buf = Buffer.alloc(0);
      const r = current;
      s.write(r.mutate(encodeUsbmuxMessage(1, 8, tag, r.body)));
      if (r.end) s.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(join(dir, 'usbmuxd.sock'), resolve));
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const USB = {
  DeviceID: 1,
  SerialNumber: '00008030001D2C3A0E8A802E',
  ConnectionType: 'USB',
  ProductID: 0x12a8,
};
const goodReplies: PlistDict[] = [
  { MessageType: 'Result', Number: 0 },
  { DeviceList: [buildAttached(1, USB)] },
  { BUID: 'A1B2C3D4-0000-0000-0000-000000000000' },
  { PairRecordData: Buffer.from('<plist><dict/></plist>') },
  buildAttached(1, USB),
];

const replyDict: fc.Arbitrary<PlistDict> = fc.oneof(
  fc.constantFrom(...goodReplies),
  fc
    .array(
      fc.tuple(
        fc.constantFrom(
          'MessageType',
          'Number',
          'DeviceList',
          'BUID',
          'PairRecordData',
          'DeviceID',
          'Properties',
        ),
        anyPlistValue,
      ),
      { maxLength: 4 },
    )
    .map((e) => dictOf(e)),
);

/** A reply body, framed with the request's tag, then maybe one byte changed and maybe cut there. */
const reply: fc.Arbitrary<Reply> = fc
  .tuple(replyDict, fc.boolean(), fc.option(fc.nat(), { nil: undefined }), fc.boolean())
  .map(([dict, binary, seed, end]) => {
    let body: Buffer;
    try {
      body = binary ? encodeBinaryPlist(dict) : encodeXmlPlist(dict);
    } catch {
      body = encodeBinaryPlist(dict); // XML refuses some generated dates
    }
    const mutate = (b: Buffer): Buffer => {
      if (seed === undefined) return b;
      const c = Buffer.from(b);
      const at = seed % c.length;
      c[at] = (c[at]! + 1 + (seed % 255)) & 0xff;
      return seed % 3 === 0 ? c.subarray(0, at) : c;
    };
    return { body, mutate, end };
  });

test('UsbmuxdClient: hostile replies end every call in a value or a MooringError', T, async () => {
  const client = new UsbmuxdClient({
    address: { kind: 'unix', path: join(dir, 'usbmuxd.sock') },
    timeoutMs: 300,
  });
  await fc.assert(
    fc.asyncProperty(
      reply,
      fc.constantFrom(
        'listDevices',
        'readBuid',
        'readPairRecord',
        'savePairRecord',
        'deletePairRecord',
        'listen',
      ),
      async (r, op) => {
        current = r;
        await onlyMooringErrorsAsync(async () => {
          switch (op) {
            case 'listDevices':
              return client.listDevices();
            case 'readBuid':
              return client.readBuid();
            case 'readPairRecord':
              return client.readPairRecord('00008030-001D2C3A0E8A802E');
            case 'savePairRecord':
              return client.savePairRecord('00008030-001D2C3A0E8A802E', Buffer.from('x'));
            case 'deletePairRecord':
              return client.deletePairRecord('00008030-001D2C3A0E8A802E');
            default: {
              const l = await client.listen();
              // Let it read what the mux sent after the Result (events, junk): it must end in a
              // 'close' with a MooringError, or keep listening until we close it.
              const ended = await new Promise<unknown>((resolve) => {
                const timer = setTimeout(() => resolve('open'), 100);
                l.once('close', (e) => {
                  clearTimeout(timer);
                  resolve(e);
                });
              });
              if (ended !== undefined && ended !== 'open') assert.ok(isMooringError(ended));
              l.close();
              return undefined;
            }
          }
        });
      },
    ),
    fuzzParams(0.1),
  );
});
