import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMooringError } from '../../../src/util/errors';
import { PlistReal, type PlistValue } from '../../../src/protocol/plist/types';
import {
  DL_EMPTY_PARAMETER,
  DL_MULTI_STATUS_CODE,
  dlCodeForErrno,
  dlContentsOfDirectory,
  dlCopyItem,
  dlCreateDirectory,
  dlDeviceReady,
  dlDisconnect,
  dlDownloadFiles,
  dlGetFreeDiskSpace,
  dlMoveItems,
  dlMultiStatusPayload,
  dlProcessMessage,
  dlPurgeDiskSpace,
  dlRemoveItems,
  dlStatusResponse,
  dlUploadFiles,
  dlVersionExchange,
  dlVersionsOk,
  MAX_DL_MESSAGE_ELEMENTS,
  MAX_DL_PATH_BYTES,
  normalizeDlStatusCode,
  parseDeviceDlMessage,
  parseDlMultiStatus,
  parseHostDlMessage,
  validateDlArray,
} from '../../../src/protocol/device-link';

const code = (c: string) => (e: unknown) => isMooringError(e) && e.code === c;

test('host builders produce the exact wire arrays', () => {
  assert.deepEqual(dlVersionsOk(300), ['DLMessageVersionExchange', 'DLVersionsOk', 300]);
  assert.deepEqual(dlDisconnect(), ['DLMessageDisconnect', DL_EMPTY_PARAMETER]);
  assert.deepEqual(dlDisconnect('bye'), ['DLMessageDisconnect', 'bye']);
  assert.deepEqual(dlStatusResponse(0), ['DLMessageStatusResponse', 0, DL_EMPTY_PARAMETER, {}]);
  assert.deepEqual(dlStatusResponse(-6, 'No such file', DL_EMPTY_PARAMETER), [
    'DLMessageStatusResponse',
    -6,
    'No such file',
    DL_EMPTY_PARAMETER,
  ]);
  assert.deepEqual(dlProcessMessage({ MessageName: 'Hello' }), [
    'DLMessageProcessMessage',
    { MessageName: 'Hello' },
  ]);
  assert.throws(() => dlStatusResponse(1.5), code('USAGE'));
});

test('multi-status payload and errno mapping', () => {
  const payload = dlMultiStatusPayload(
    new Map([['U/Status.plist', { code: -6, text: 'No such file or directory' }]]),
  );
  assert.deepEqual(payload, {
    'U/Status.plist': { DLFileErrorCode: -6, DLFileErrorString: 'No such file or directory' },
  });
  const reply = parseHostDlMessage(dlStatusResponse(DL_MULTI_STATUS_CODE, 'Multi status', payload));
  assert.equal(reply.type, 'StatusResponse');
  if (reply.type !== 'StatusResponse') return;
  assert.equal(reply.code, -13);
  assert.equal(reply.text, 'Multi status');
  assert.deepEqual(
    [...parseDlMultiStatus(reply.payload)],
    [['U/Status.plist', { code: -6, text: 'No such file or directory' }]],
  );
  assert.equal(dlCodeForErrno('ENOENT'), -6);
  assert.equal(dlCodeForErrno('ENOSPC'), -15);
  assert.equal(dlCodeForErrno('EACCES'), -1);
  assert.equal(dlCodeForErrno(undefined), -1);
});

test('status codes normalise to int64 whether sent signed or 2^64-wrapped', () => {
  assert.equal(normalizeDlStatusCode(-13), -13);
  assert.equal(normalizeDlStatusCode(0), 0);
  assert.equal(normalizeDlStatusCode((1n << 64n) - 13n), -13); // PMD3 style
  assert.equal(normalizeDlStatusCode(-13n), -13);
  assert.equal(normalizeDlStatusCode(4294967283), 4294967283); // 32-bit wrap is not a 64-bit wrap
  assert.throws(() => normalizeDlStatusCode(1n << 64n), code('MALFORMED'));
  assert.throws(() => normalizeDlStatusCode(1n << 62n), code('MALFORMED'));
  assert.throws(() => normalizeDlStatusCode('0'), code('MALFORMED'));
  assert.throws(() => normalizeDlStatusCode(0.5), code('MALFORMED'));
  assert.throws(() => normalizeDlStatusCode(undefined), code('MALFORMED'));
  const wrapped = parseHostDlMessage([
    'DLMessageStatusResponse',
    (1n << 64n) - 6n,
    DL_EMPTY_PARAMETER,
    {},
  ]);
  assert.equal(wrapped.type === 'StatusResponse' && wrapped.code, -6);
  assert.equal(wrapped.type === 'StatusResponse' && wrapped.text, undefined);
});

test('device builders round-trip through the host-side parser', () => {
  assert.deepEqual(parseDeviceDlMessage(dlVersionExchange(300, 0)), {
    type: 'VersionExchange',
    major: 300,
    minor: 0,
  });
  assert.deepEqual(parseDeviceDlMessage(dlDeviceReady()), { type: 'DeviceReady' });
  const dl = dlDownloadFiles(['U/Status.plist', 'U/Manifest.db'], 0);
  assert.ok(dl[3] instanceof PlistReal, 'progress is real-typed even when integral');
  assert.deepEqual(parseDeviceDlMessage(dl), {
    type: 'DownloadFiles',
    paths: ['U/Status.plist', 'U/Manifest.db'],
    progress: 0,
  });
  assert.deepEqual(parseDeviceDlMessage(dlUploadFiles(12.5, 4096)), {
    type: 'UploadFiles',
    progress: 12.5,
    totalBytes: 4096,
  });
  assert.deepEqual(parseDeviceDlMessage(dlGetFreeDiskSpace()), { type: 'GetFreeDiskSpace' });
  assert.deepEqual(parseDeviceDlMessage(dlPurgeDiskSpace(1000, 4)), {
    type: 'PurgeDiskSpace',
    bytesToFree: 1000,
    urgency: 4,
  });
  assert.deepEqual(parseDeviceDlMessage(dlContentsOfDirectory('U/Snapshot')), {
    type: 'ContentsOfDirectory',
    path: 'U/Snapshot',
  });
  assert.deepEqual(parseDeviceDlMessage(dlCreateDirectory('U')), {
    type: 'CreateDirectory',
    path: 'U',
  });
  assert.deepEqual(parseDeviceDlMessage(dlMoveItems({ 'U/Snapshot/a': 'U/a' }, 100)), {
    type: 'MoveItems',
    name: 'DLMessageMoveItems',
    moves: [['U/Snapshot/a', 'U/a']],
    progress: 100,
  });
  assert.deepEqual(parseDeviceDlMessage(dlRemoveItems(['U/Snapshot'], 50)), {
    type: 'RemoveItems',
    name: 'DLMessageRemoveItems',
    paths: ['U/Snapshot'],
    progress: 50,
  });
  assert.deepEqual(parseDeviceDlMessage(dlCopyItem('a', 'b')), {
    type: 'CopyItem',
    source: 'a',
    destination: 'b',
  });
  assert.deepEqual(parseDeviceDlMessage(['DLMessageDisconnect', DL_EMPTY_PARAMETER]), {
    type: 'Disconnect',
    reason: undefined,
  });
  assert.deepEqual(parseDeviceDlMessage(['DLMessageProcessMessage', { ErrorCode: 0 }]), {
    type: 'ProcessMessage',
    message: { ErrorCode: 0 },
  });
  assert.equal(parseDeviceDlMessage(['DLMessageSomethingNew', 1]).type, 'Unknown');
});

test('host messages parse on the device side', () => {
  assert.deepEqual(parseHostDlMessage(dlVersionsOk(400)), {
    type: 'VersionExchange',
    status: 'DLVersionsOk',
    major: 400,
  });
  assert.deepEqual(parseHostDlMessage(dlDisconnect()), { type: 'Disconnect', reason: undefined });
  assert.deepEqual(parseHostDlMessage(['DLMessagePing', 'x']), { type: 'Ping', message: 'x' });
});

test('hostile envelopes are refused', () => {
  const bad: PlistValue[] = [
    {},
    'DLMessageDeviceReady',
    [],
    [42],
    ['XXMessageDeviceReady'],
    ['DLShort'],
    ['DL' + 'x'.repeat(100)],
  ];
  for (const v of bad)
    assert.throws(() => validateDlArray(v), code('MALFORMED'), JSON.stringify(v));
  assert.throws(
    () => validateDlArray(['DLMessagePing', ...new Array<number>(MAX_DL_MESSAGE_ELEMENTS).fill(0)]),
    code('LIMIT'),
  );
});

test('hostile message bodies are refused with typed errors', () => {
  assert.throws(() => parseDeviceDlMessage(['DLMessageVersionExchange', 300]), code('MALFORMED'));
  assert.throws(() => parseDeviceDlMessage(['DLMessageVersionExchange', -1, 0]), code('MALFORMED'));
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageVersionExchange', '300', 0]),
    code('MALFORMED'),
  );
  assert.throws(() => parseDeviceDlMessage(['DLMessageProcessMessage', 'x']), code('MALFORMED'));
  assert.throws(() => parseDeviceDlMessage(['DLMessageProcessMessage']), code('MALFORMED'));
  assert.throws(() => parseDeviceDlMessage(['DLMessageDownloadFiles', ['a']]), code('MALFORMED')); // too short
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageDownloadFiles', 'a', {}, 0, 0]),
    code('MALFORMED'),
  );
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageDownloadFiles', [1], {}, 0, 0]),
    code('MALFORMED'),
  );
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageDownloadFiles', [''], {}, 0, 0]),
    code('MALFORMED'),
  );
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageDownloadFiles', ['a\0b'], {}, 0, 0]),
    code('MALFORMED'),
  );
  assert.throws(
    () =>
      parseDeviceDlMessage([
        'DLMessageDownloadFiles',
        ['x'.repeat(MAX_DL_PATH_BYTES + 1)],
        {},
        0,
        0,
      ]),
    code('LIMIT'),
  );
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageMoveItems', { a: 5 }, {}, 0]),
    code('MALFORMED'),
  );
  assert.throws(
    () => parseDeviceDlMessage(['DLMessageMoveItems', ['a'], {}, 0]),
    code('MALFORMED'),
  );
  assert.throws(() => parseDeviceDlMessage(['DLContentsOfDirectory']), code('MALFORMED'));
  assert.throws(() => parseDeviceDlMessage(['DLMessageCopyItem', 'a']), code('MALFORMED'));
  assert.throws(() => parseHostDlMessage(['DLMessageStatusResponse', 'zero']), code('MALFORMED'));
  // Non-numeric progress is tolerated (reported as undefined), out-of-range is clamped
  const weird = parseDeviceDlMessage(['DLMessageRemoveItems', ['a'], {}, 'fast']);
  assert.equal(weird.type === 'RemoveItems' && weird.progress, undefined);
  const over = parseDeviceDlMessage(['DLMessageRemoveItems', ['a'], {}, new PlistReal(1e9)]);
  assert.equal(over.type === 'RemoveItems' && over.progress, 100);
});

test('multi-status parser rejects non-dict entries', () => {
  assert.throws(() => parseDlMultiStatus({ a: 'x' }), code('MALFORMED'));
  assert.equal(parseDlMultiStatus(DL_EMPTY_PARAMETER).size, 0);
});

// H7z fuzz regression: a path named "__proto__" must be an entry of the multi-status payload,
// not the payload's prototype (its error was silently dropped).
test('multi-status payload keeps a path named __proto__', () => {
  const errors = new Map([
    ['__proto__', { code: -6, text: 'gone' }],
    ['a/b', { code: -7, text: 'exists' }],
  ]);
  const payload = dlMultiStatusPayload(errors);
  assert.deepEqual(Object.keys(payload), ['__proto__', 'a/b']);
  assert.equal(Object.getPrototypeOf(payload), Object.prototype);
  assert.deepEqual(parseDlMultiStatus(payload), errors);
});
