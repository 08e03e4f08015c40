// Never hangs: every stream parser, given a prefix of a valid message by a peer that then goes
// silent (the stream stays open), fails with TIMEOUT, and one given the prefix and then an end
// fails with CLOSED. The deadline is tiny so the property can run many cases; nothing here
// measures speed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { encodeAfcPacket, readAfcPacket } from '../../src/protocol/afc';
import {
  DlFileStreamDecoder,
  encodeDlFile,
  encodeDlStreamEnd,
} from '../../src/protocol/device-link';
import { encodeXmlPlist } from '../../src/protocol/plist';
import { encodeUsbmuxMessage, readUsbmuxFrame } from '../../src/protocol/usbmux';
import { PlistConnection } from '../../src/transport/plist-connection';
import { isMooringError } from '../../src/util/errors';
import { StreamReader } from '../../src/util/stream-reader';
import { fuzzParams, testTimeoutMs } from './harness';

const T = { timeout: testTimeoutMs() };
const DEADLINE_MS = 15;

type Target = { name: string; wire: Buffer; read: (s: Duplex) => Promise<unknown> };

const body = encodeXmlPlist({ Request: 'StartSession', HostID: 'X' });
const plistFrame = Buffer.concat([Buffer.alloc(4), body]);
plistFrame.writeUInt32BE(body.length, 0);

const TARGETS: Target[] = [
  {
    name: 'plist frame',
    wire: plistFrame,
    read: (s) => new PlistConnection(s, { readTimeoutMs: DEADLINE_MS }).receive(),
  },
  {
    name: 'usbmux message',
    wire: encodeUsbmuxMessage(1, 8, 1, body),
    read: (s) => readUsbmuxFrame(new StreamReader(s), DEADLINE_MS),
  },
  {
    name: 'AFC packet',
    wire: encodeAfcPacket({
      packetNum: 1,
      operation: 1,
      headerData: Buffer.alloc(8),
      payload: body,
    }),
    read: (s) => readAfcPacket(new StreamReader(s), { timeoutMs: DEADLINE_MS }),
  },
  {
    name: 'DL file stream',
    wire: Buffer.concat([...encodeDlFile('a/b', body, 100), encodeDlStreamEnd()]),
    read: async (s) => {
      const d = new DlFileStreamDecoder(new StreamReader(s), { timeoutMs: DEADLINE_MS });
      while ((await d.readPath()) !== null) {
        while ((await d.readBlock()).kind === 'data');
      }
    },
  },
];

function duplexOf(p: PassThrough): Duplex {
  return Duplex.from({ readable: p, writable: new PassThrough() });
}

test('a peer that stops mid-message: TIMEOUT while open, CLOSED once ended', T, async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...TARGETS), fc.nat(), fc.boolean(), async (t, cut, end) => {
      const at = cut % t.wire.length; // a strict prefix: the message never completes
      const p = new PassThrough();
      p.write(t.wire.subarray(0, at));
      if (end) p.end();
      await assert.rejects(t.read(duplexOf(p)), (e: unknown) => {
        assert.ok(isMooringError(e), `${t.name}: ${String(e)}`);
        assert.equal(e.code, end ? 'CLOSED' : 'TIMEOUT', `${t.name} cut at ${at}: ${e.message}`);
        return true;
      });
      p.destroy();
    }),
    fuzzParams(0.2),
  );
});
