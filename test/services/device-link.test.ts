/** DeviceLinkConnection and the mobilebackup2 Hello against a scripted device. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../src/util/errors';
import { PlistReal } from '../../src/protocol/plist/types';
import { encodeBinaryPlist } from '../../src/protocol/plist';
import {
  dlDeviceReady,
  dlProcessMessage,
  dlVersionExchange,
  DL_EMPTY_PARAMETER,
  encodeDlFile,
  encodeDlStreamEnd,
  DlFileStreamDecoder,
} from '../../src/protocol/device-link';
import { DeviceLinkConnection } from '../../src/services/device-link';
import { MobileBackup2Client } from '../../src/services/mobilebackup2/client';
import { withPlistPeer } from './plist-peer';

const code = (c: string) => (e: unknown) => isMooringError(e, c as never);

test('version exchange echoes the device major, then waits for DeviceReady', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlVersionExchange(300, 0), 'binary');
      assert.deepEqual(await peer.receive(), ['DLMessageVersionExchange', 'DLVersionsOk', 300]);
      await peer.send(dlDeviceReady(), 'binary');
      assert.deepEqual(await peer.receive(), [
        'DLMessageStatusResponse',
        -13,
        'Multi status',
        { a: { DLFileErrorCode: -6, DLFileErrorString: 'x' } },
      ]);
      assert.deepEqual(await peer.receive(), ['DLMessageDisconnect', DL_EMPTY_PARAMETER]);
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
      assert.deepEqual(await dl.versionExchange(), { major: 300, minor: 0 });
      await dl.sendStatusResponse(-13, 'Multi status', {
        a: { DLFileErrorCode: -6, DLFileErrorString: 'x' },
      });
      await dl.disconnect();
    },
  );
});

test('a device that skips the exchange or sends junk is refused', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlDeviceReady(), 'binary');
    },
    async (conn) => {
      await assert.rejects(new DeviceLinkConnection(conn).versionExchange(), code('PROTOCOL'));
    },
  );
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlVersionExchange(300, 0));
      await peer.receive();
      await peer.send(dlProcessMessage({}));
    },
    async (conn) => {
      await assert.rejects(new DeviceLinkConnection(conn).versionExchange(), code('PROTOCOL'));
    },
  );
  await withPlistPeer(
    async (peer) => {
      await peer.send({ MessageName: 'not an array' });
      await peer.send(['DLMessageVersionExchange', 'three hundred', 0]);
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn);
      await assert.rejects(dl.receive(), code('MALFORMED'));
      await assert.rejects(dl.versionExchange(), code('MALFORMED'));
    },
  );
});

test('receiveProcessMessage reports a device Disconnect as CLOSED', async () => {
  await withPlistPeer(
    async (peer) => {
      await peer.send(['DLMessageDisconnect', 'bye']);
    },
    async (conn) => {
      await assert.rejects(
        new DeviceLinkConnection(conn).receiveProcessMessage(),
        (e) => isMooringError(e, 'CLOSED') && /bye/.test(e.message),
      );
    },
  );
});

test('the raw file stream runs on the same connection between DL messages', async () => {
  await withPlistPeer(
    async (peer) => {
      const d = new DlFileStreamDecoder(peer.reader, { timeoutMs: 5000 });
      assert.equal(await d.readPath(), 'U/Status.plist');
      assert.deepEqual(await d.readBlock(), { kind: 'data', data: Buffer.from('status') });
      assert.deepEqual(await d.readBlock(), { kind: 'success' });
      assert.equal(await d.readPath(), null);
      assert.deepEqual(await peer.receive(), [
        'DLMessageStatusResponse',
        0,
        DL_EMPTY_PARAMETER,
        {},
      ]);
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn);
      for (const b of encodeDlFile('U/Status.plist', Buffer.from('status'))) await dl.writeRaw(b);
      await dl.writeRaw(encodeDlStreamEnd());
      await dl.sendStatusResponse(0);
    },
  );
});

function helloPeer(response: Record<string, unknown>, check?: (frame: Buffer) => void) {
  return async (peer: import('../../src/transport/plist-connection').PlistConnection) => {
    await peer.send(dlVersionExchange(300, 0), 'binary');
    await peer.receive();
    await peer.send(dlDeviceReady(), 'binary');
    // Read the Hello frame raw, to check the versions travel as reals.
    const len = (await peer.reader.read(4, 5000)).readUInt32BE(0);
    const frame = await peer.reader.read(len, 5000);
    check?.(frame);
    await peer.send(dlProcessMessage(response as never), 'binary');
  };
}

test('Hello sends real-typed [2.0, 2.1] and accepts Response 2.1', async () => {
  let helloFrame: Buffer | undefined;
  await withPlistPeer(
    helloPeer(
      { MessageName: 'Response', ErrorCode: 0, ProtocolVersion: new PlistReal(2.1) },
      (f) => (helloFrame = f),
    ),
    async (conn) => {
      const mb2 = new MobileBackup2Client(new DeviceLinkConnection(conn, { timeoutMs: 5000 }));
      await mb2.deviceLink.versionExchange();
      assert.equal(await mb2.hello(), 2.1);
      assert.equal(mb2.protocolVersion, 2.1);
    },
  );
  const asReals = encodeBinaryPlist(
    dlProcessMessage({
      MessageName: 'Hello',
      SupportedProtocolVersions: [new PlistReal(2), new PlistReal(2.1)],
    }),
  );
  const asInteger = encodeBinaryPlist(
    dlProcessMessage({ MessageName: 'Hello', SupportedProtocolVersions: [2, 2.1] }),
  );
  assert.deepEqual(helloFrame, asReals);
  assert.notDeepEqual(helloFrame, asInteger);
});

test('Hello failures: no common version, other error, unoffered version', async () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ MessageName: 'Response', ErrorCode: 1 }, 'PROTOCOL'],
    [{ MessageName: 'Response', ErrorCode: 7, ErrorDescription: 'nope' }, 'DEVICE_ERROR'],
    [{ MessageName: 'Response', ErrorCode: 0, ProtocolVersion: new PlistReal(3) }, 'PROTOCOL'],
    [{ MessageName: 'Response', ProtocolVersion: new PlistReal(2.1) }, 'MALFORMED'],
    [{ MessageName: 'Surprise', ErrorCode: 0 }, 'PROTOCOL'],
  ];
  for (const [response, expected] of cases) {
    await withPlistPeer(helloPeer(response), async (conn) => {
      const mb2 = new MobileBackup2Client(new DeviceLinkConnection(conn, { timeoutMs: 5000 }));
      await mb2.deviceLink.versionExchange();
      await assert.rejects(mb2.hello(), code(expected), JSON.stringify(response));
    });
  }
});
