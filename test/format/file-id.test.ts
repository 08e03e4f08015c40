import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import {
  fileIdFor,
  isFileId,
  pathProblem,
  payloadRelPath,
  targetStaysInDomain,
} from '../../src/format/file-id';
import { isBucketName, payloadPath } from '../../src/format/layout';

test('fileID is SHA-1(domain-relativePath): the reference examples', () => {
  assert.equal(
    fileIdFor('HomeDomain', 'Library/SMS/sms.db'),
    '3d0d7e5fb2ce288813306e4d4636395e047a3d28',
  );
  assert.equal(
    fileIdFor('CameraRollDomain', 'Media/PhotoData/Thumbnails/V2/DCIM/102APPLE'),
    'ae94e0607ca39a88c18aca095cb5b4f8471291a0',
  );
});

test('fileID hashes the UTF-8 of non-ASCII paths', () => {
  // 'é' is two bytes in UTF-8 (one in Latin-1), '履' three, '😀' four (a surrogate pair in UTF-16).
  for (const rel of ['Documents/Résumé.pdf', 'Documents/履歴書.pdf', 'Media/😀.jpg']) {
    const bytes = Buffer.from(`AppDomain-com.example-${rel}`, 'utf8');
    assert.equal(
      fileIdFor('AppDomain-com.example', rel),
      createHash('sha1').update(bytes).digest('hex'),
      rel,
    );
  }
});

test('pathProblem refuses what could escape or confuse', () => {
  assert.equal(pathProblem('HomeDomain', 'Library/SMS/sms.db'), undefined);
  assert.equal(pathProblem('HomeDomain', ''), undefined);
  for (const bad of [
    '../x',
    'a/../b',
    '/etc/passwd',
    'a//b',
    'a/./b',
    'a\u0000b',
    'x'.repeat(2000),
    'a/',
  ]) {
    assert.ok(pathProblem('HomeDomain', bad), JSON.stringify(bad));
  }
  for (const bad of ['', 'a/b', '..', 'x\u0000', 'd'.repeat(300)])
    assert.ok(pathProblem(bad, 'f'), JSON.stringify(bad));
});

test('targetStaysInDomain resolves relative to the link folder', () => {
  assert.ok(targetStaysInDomain('Library/Caches/prefs', '../Preferences'));
  assert.ok(targetStaysInDomain('Media/DCIM/latest', '100APPLE'));
  assert.ok(!targetStaysInDomain('Library/x', '../../etc'));
  assert.ok(!targetStaysInDomain('x', '/etc/passwd'));
  assert.ok(!targetStaysInDomain('x', ''));
});

test('payload paths are bucketed by the first two hex digits, and only for fileIDs', () => {
  const id = fileIdFor('HomeDomain', 'Library/SMS/sms.db');
  assert.ok(isFileId(id));
  assert.equal(payloadRelPath(id), `3d/${id}`);
  assert.equal(payloadPath('/b/UDID', id), `/b/UDID/3d/${id}`);
  for (const bad of ['', '../x', id.toUpperCase(), `${id}0`, `3d/${id.slice(3)}`])
    assert.throws(() => payloadRelPath(bad), RangeError, bad);
  assert.ok(isBucketName('3d') && !isBucketName('3D') && !isBucketName('Snapshot'));
});
