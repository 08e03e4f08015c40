/** What waits for the links of the previous backup, and what goes ahead (D32). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkingGate } from '../../src/backup/linking-gate';
import type { DeviceDlMessage } from '../../src/protocol/device-link/messages';

const UDID = '00008030-001A2B3C4D5E6F70';

function gate(): { g: LinkingGate; finish: () => void; done: Promise<void> } {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return { g: new LinkingGate(UDID, new Set(['ab', 'Snapshot-Old']), done), finish, done };
}

test('a path inside a folder being filled waits; the top level, new folders and refused paths do not', () => {
  const { g } = gate();
  assert.equal(g.blocks(`${UDID}/ab/ab01`), true);
  assert.equal(g.blocks(`${UDID}/ab`), true);
  assert.equal(g.blocks(`${UDID}//./ab/cd`), true, 'the segments confine sees');
  assert.equal(g.blocks(`${UDID}/AB/ab01`), true, 'a case-insensitive disk would find ab/');
  assert.equal(g.blocks(`${UDID}/snapshot-old/x`, false), true);
  assert.equal(g.blocks(`${UDID}/Snapshot/ab/ab01`), false);
  assert.equal(g.blocks(`${UDID}/Status.plist`), false);
  assert.equal(g.blocks(`${UDID}/Manifest.db`, false), false);
  // The backup folder itself: listed as it is, but not moved, removed or replaced meanwhile.
  assert.equal(g.blocks(UDID, false), false);
  assert.equal(g.blocks(UDID), true);
  // Refused by confinement before anything touches the disk.
  assert.equal(g.blocks(`${UDID}/../${UDID}/ab/x`), false);
  assert.equal(g.blocks(`OTHER/ab/x`), false);
});

test('messages are held by the paths they touch, and none once the copy is complete', async () => {
  const { g, finish, done } = gate();
  const held = (m: DeviceDlMessage): boolean => g.holds(m);
  const cases: Array<[DeviceDlMessage, boolean]> = [
    [
      {
        type: 'DownloadFiles',
        paths: [`${UDID}/Status.plist`, `${UDID}/Manifest.db`],
        progress: 0,
      },
      false,
    ],
    [
      { type: 'DownloadFiles', paths: [`${UDID}/Manifest.db`, `${UDID}/ab/ab01`], progress: 0 },
      true,
    ],
    [{ type: 'ContentsOfDirectory', path: UDID }, false],
    [{ type: 'ContentsOfDirectory', path: `${UDID}/ab` }, true],
    [{ type: 'CreateDirectory', path: `${UDID}/Snapshot/ab` }, false],
    [{ type: 'CreateDirectory', path: `${UDID}/ab/cd` }, true],
    [
      {
        type: 'MoveItems',
        name: 'DLMessageMoveItems',
        moves: [[`${UDID}/Snapshot/a`, `${UDID}/Snapshot/b`]],
        progress: 0,
      },
      false,
    ],
    [
      {
        type: 'MoveItems',
        name: 'DLMessageMoveItems',
        moves: [
          [`${UDID}/Snapshot/a`, `${UDID}/b`],
          [`${UDID}/Snapshot/ab/ab01`, `${UDID}/ab/ab01`],
        ],
        progress: 0,
      },
      true,
    ],
    [
      {
        type: 'MoveItems',
        name: 'DLMessageMoveItems',
        moves: [[`${UDID}/ab/ab01`, `${UDID}/Snapshot/x`]],
        progress: 0,
      },
      true,
    ],
    [
      {
        type: 'RemoveItems',
        name: 'DLMessageRemoveItems',
        paths: [`${UDID}/Snapshot`],
        progress: 0,
      },
      false,
    ],
    [
      {
        type: 'RemoveItems',
        name: 'DLMessageRemoveItems',
        paths: [`${UDID}/ab/ab02`],
        progress: 0,
      },
      true,
    ],
    [{ type: 'RemoveItems', name: 'DLMessageRemoveItems', paths: [UDID], progress: 0 }, true],
    [{ type: 'CopyItem', source: `${UDID}/ab/ab01`, destination: `${UDID}/Snapshot/x` }, true],
    [{ type: 'CopyItem', source: `${UDID}/Snapshot/x`, destination: `${UDID}/Snapshot/y` }, false],
    [{ type: 'GetFreeDiskSpace' }, false],
    [{ type: 'UploadFiles', progress: 0, totalBytes: 0 }, false], // its files are held one by one
  ];
  for (const [m, want] of cases) assert.equal(held(m), want, JSON.stringify(m));
  finish();
  await done;
  await new Promise((r) => setImmediate(r));
  for (const [m] of cases) assert.equal(held(m), false, `after the links: ${JSON.stringify(m)}`);
  assert.equal(g.blocks(`${UDID}/ab/ab01`), false);
});

test('a copy with no folder left to fill holds only what would move the backup folder', () => {
  const g = new LinkingGate(UDID, new Set(), new Promise(() => undefined));
  assert.equal(g.blocks(`${UDID}/ab/ab01`), false);
  assert.equal(g.blocks(UDID), true);
});
