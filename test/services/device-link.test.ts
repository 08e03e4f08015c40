/** DeviceLinkConnection and the mobilebackup2 Hello against a scripted device. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../src/util/errors';
import { PlistReal } from '../../src/protocol/plist/types';
import { encodeBinaryPlist } from '../../src/protocol/plist';
import {
  dlDeviceReady,
  dlMoveItems,
  dlProcessMessage,
  dlVersionExchange,
  DL_EMPTY_PARAMETER,
  encodeDlFile,
  encodeDlStreamEnd,
  DlFileStreamDecoder,
  type DeviceDlMessage,
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

// MoveItems frames (D51): read in place from the connection's one buffer, valid until the next
// message arrives; frames over 4 MiB are read where they came.

type Move = [from: string, to: string];

function movesOf(m: DeviceDlMessage): Iterable<Move> {
  assert.equal(m.type, 'MoveItems');
  return (m as Extract<DeviceDlMessage, { type: 'MoveItems' }>).moves;
}

const stale = (e: unknown): boolean =>
  e instanceof Error && !isMooringError(e) && /after the next message had arrived/.test(e.message);

function someMoves(n: number, tag: string, pathLength = 10): Move[] {
  return Array.from({ length: n }, (_, i) => {
    const from = `${tag}${i}/`.padEnd(pathLength, 'p');
    return [from, `${from}.moved`];
  });
}

test('MoveItems moves read until the next message arrives, then throw', async () => {
  const first = someMoves(300, 'first');
  const second = someMoves(20, 'second');
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlMoveItems(Object.fromEntries(first), 10), 'binary');
      await peer.send(dlMoveItems(Object.fromEntries(second), 20), 'binary');
      await peer.send(dlDeviceReady(), 'binary');
      await peer.send(dlMoveItems(Object.fromEntries(first), 30), 'xml');
      await peer.send(dlDeviceReady(), 'binary');
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
      const m1 = await dl.receive();
      assert.deepEqual([...movesOf(m1)], first);
      assert.deepEqual([...movesOf(m1)], first, 'read twice');
      // The second frame, smaller, is read into the connection's buffer over the first.
      const m2 = await dl.receive();
      assert.throws(() => [...movesOf(m1)], stale);
      assert.deepEqual([...movesOf(m2)], second);
      assert.deepEqual(await dl.receive(), { type: 'DeviceReady' });
      assert.throws(() => [...movesOf(m2)], stale);
      // An XML MoveItems is decoded whole: its moves outlive the next message.
      const xml = await dl.receive();
      assert.deepEqual(await dl.receive(), { type: 'DeviceReady' });
      assert.deepEqual([...movesOf(xml)], first);
    },
  );
});

/** A MoveItems frame of over 4 MiB (the connection's buffer is for frames up to 4 MiB). */
function bigMoves(): { moves: Move[]; frame: Buffer } {
  const moves = someMoves(560, 'big', 3800);
  const frame = encodeBinaryPlist(dlMoveItems(Object.fromEntries(moves), 50));
  assert.ok(frame.length > 4 << 20, `${frame.length} bytes`);
  return { moves, frame };
}

test('a MoveItems frame over 4 MiB parses and its moves read', async () => {
  const { moves } = bigMoves();
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlMoveItems(Object.fromEntries(moves), 50), 'binary');
      await peer.send(dlDeviceReady(), 'binary');
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
      const m = await dl.receive();
      assert.ok(m.type === 'MoveItems' && m.progress === 50);
      assert.ok(!Array.isArray(m.moves), 'read in place');
      assert.deepEqual([...m.moves], moves);
      assert.deepEqual(await dl.receive(), { type: 'DeviceReady' });
    },
  );
});

test('a MoveItems frame over 4 MiB, read where it came, still reads after a later receive', async () => {
  const { moves } = bigMoves();
  const small = someMoves(5, 'small');
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlMoveItems(Object.fromEntries(moves), 50), 'binary');
      await peer.send(dlMoveItems(Object.fromEntries(small), 60), 'binary');
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
      const big = await dl.receive();
      const next = await dl.receive();
      assert.deepEqual([...movesOf(next)], small);
      assert.deepEqual([...movesOf(big)], moves);
    },
  );
});

test('a message decoded whole keeps nothing of the buffer its frame was read into', async () => {
  const message = (fill: number) => ({
    MessageName: 'Blob',
    Data: Buffer.alloc(3000, fill),
    Text: 'é'.repeat(500),
  });
  await withPlistPeer(
    async (peer) => {
      await peer.send(dlProcessMessage(message(0xa5)), 'binary');
      // As long, laid out alike: read over the first frame's bytes in the connection's buffer.
      await peer.send(dlProcessMessage(message(0x5a)), 'binary');
    },
    async (conn) => {
      const dl = new DeviceLinkConnection(conn, { timeoutMs: 5000 });
      const first = await dl.receive();
      const second = await dl.receive();
      assert.ok(first.type === 'ProcessMessage' && second.type === 'ProcessMessage');
      assert.deepEqual(second.message, message(0x5a));
      assert.deepEqual(first.message, message(0xa5));
    },
  );
});
