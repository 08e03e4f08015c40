/** Errors across a thread: what callers decide on (code, detail, the cause chain) survives. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDiskFull } from '../../src/job';
import { fromWireError, toWireError } from '../../src/util/error-wire';
import { isMooringError, MooringError } from '../../src/util/errors';

/** As a worker's message arrives: a structured clone. */
const across = (e: unknown): Error => fromWireError(structuredClone(toWireError(e)));

test('a MooringError keeps its class, code, detail, message and stack', () => {
  const e = new MooringError('DEVICE_ERROR', 'lockdownd said no', { detail: 'InvalidHostID' });
  const back = across(e);
  assert.ok(isMooringError(back, 'DEVICE_ERROR'));
  assert.equal(back.detail, 'InvalidHostID');
  assert.equal(back.message, 'lockdownd said no');
  assert.equal(back.stack, e.stack);
});

test('a system error in the cause chain still reads as a full disk', () => {
  const sys = Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
  });
  const e = new MooringError('IO', 'cannot write the backup', { cause: sys });
  assert.equal(isDiskFull(structuredClone(e)), false, 'a plain clone loses the code');
  const back = across(e);
  assert.equal(isDiskFull(back), true);
  assert.equal((back.cause as NodeJS.ErrnoException).code, 'ENOSPC');
  assert.equal((back.cause as Error).message, sys.message);
});

test('a plain Error keeps its name; a thrown non-Error becomes one; a cycle is cut', () => {
  const t = new TypeError('bad');
  const back = across(t);
  assert.equal(back.name, 'TypeError');
  assert.equal(back.message, 'bad');
  assert.equal(isMooringError(back), false);
  assert.equal(across('just a string').message, 'just a string');
  const a = new Error('a');
  const b = new Error('b', { cause: a });
  (a as { cause?: unknown }).cause = b;
  let depth = 0;
  for (let x: unknown = across(a); x instanceof Error; x = x.cause) depth++;
  assert.equal(depth, 9, 'the error and at most eight causes');
});
