// Interoperability with libplist (Debian's plistutil): our output must parse there, and its output here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PlistUid,
  decodePlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  type PlistDict,
} from '../../../src/protocol/plist';
import { expected, richSample } from './samples';

const PLISTUTIL = '/usr/bin/plistutil';
let dir = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mooring-plist-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs plistutil on `input`, forcing output format `format`; returns its output bytes. */
function plistutil(input: Buffer, format: 'bin' | 'xml'): Buffer {
  const inFile = join(dir, 'in.plist');
  const outFile = join(dir, 'out.plist');
  writeFileSync(inFile, input);
  execFileSync(PLISTUTIL, ['-i', inFile, '-o', outFile, '-f', format], { stdio: 'pipe' });
  return readFileSync(outFile);
}

test('our binary → plistutil → XML and binary → ours', () => {
  const ours = encodeBinaryPlist(richSample());
  const xml = plistutil(ours, 'xml');
  assert.ok(xml.toString().startsWith('<?xml'));
  assert.deepEqual(decodePlist(xml), expected(richSample()));
  const bin = plistutil(ours, 'bin');
  assert.ok(bin.subarray(0, 8).equals(Buffer.from('bplist00')));
  assert.deepEqual(decodePlist(bin), expected(richSample()));
});

test('our XML → plistutil → binary and XML → ours', () => {
  const ours = encodeXmlPlist(richSample());
  const bin = plistutil(ours, 'bin');
  assert.deepEqual(decodePlist(bin), expected(richSample()));
  const xml = plistutil(ours, 'xml');
  assert.deepEqual(decodePlist(xml), expected(richSample()));
});

test('libplist re-serializes our XML byte-for-byte for common values', () => {
  const v = {
    a: [1, 'x', true, false],
    d: { e: {}, f: [] },
    s: '',
    n: -7,
    data: Buffer.from('hello'),
    when: new Date('2020-01-02T03:04:05Z'),
  };
  const ours = encodeXmlPlist(v);
  assert.equal(plistutil(ours, 'xml').toString(), ours.toString());
});

test('UIDs survive our binary → plistutil binary → ours', () => {
  const v = {
    $version: 100000,
    $objects: ['$null', new PlistUid(1), new PlistUid(300), new PlistUid(70000)],
    $top: { root: new PlistUid(1) },
  };
  const bin = plistutil(encodeBinaryPlist(v), 'bin');
  assert.deepEqual(decodePlist(bin), v);
});

test('100k-entry dict: ours → plistutil → ours', () => {
  const dict: PlistDict = {};
  for (let i = 0; i < 100_000; i++) dict[`k${i}`] = i % 3 === 0 ? `v${i}` : i;
  assert.deepEqual(decodePlist(plistutil(encodeBinaryPlist(dict), 'bin')), dict);
});
