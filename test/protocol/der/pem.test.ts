import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PEM_BYTES, decodePem, encodePem, looksLikePem } from '../../../src/protocol/der/pem';
import { isMooringError } from '../../../src/util/errors';

const malformed = (e: unknown): boolean => isMooringError(e, 'MALFORMED');

test('encodes with 64-column lines and decodes back', () => {
  const der = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
  const pem = encodePem('CERTIFICATE', der);
  const lines = pem.trimEnd().split('\n');
  assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
  assert.equal(lines.at(-1), '-----END CERTIFICATE-----');
  assert.ok(lines.slice(1, -1).every((l) => l.length <= 64));
  assert.equal(lines[1]?.length, 64);
  assert.ok(pem.endsWith('\n'));
  assert.deepEqual(decodePem(pem), { label: 'CERTIFICATE', der });
  assert.deepEqual(decodePem(Buffer.from(pem)), { label: 'CERTIFICATE', der });
  assert.ok(looksLikePem(pem) && looksLikePem(Buffer.from(pem)) && !looksLikePem(der));
});

test('tolerates surrounding text, CRLF and a trailing NUL; checks the label', () => {
  const der = Buffer.from('3000', 'hex');
  const pem = encodePem('RSA PUBLIC KEY', der).replace(/\n/g, '\r\n');
  const wrapped = Buffer.concat([Buffer.from('junk before\n'), Buffer.from(pem), Buffer.from([0])]);
  assert.deepEqual(decodePem(wrapped, ['PUBLIC KEY', 'RSA PUBLIC KEY']), {
    label: 'RSA PUBLIC KEY',
    der,
  });
  assert.throws(
    () => decodePem(wrapped, ['CERTIFICATE']),
    (e) => malformed(e) && /expected "CERTIFICATE"/.test(String(e)),
  );
});

test('rejects text that is not a usable PEM block', () => {
  const good = encodePem('PRIVATE KEY', Buffer.from('hello world'));
  const cases = [
    '',
    'hello',
    '-----BEGIN CERTIFICATE-----\nAAAA\n', // no END
    '-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n', // mismatched END
    '-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n', // empty
    '-----BEGIN CERTIFICATE-----\nA*AA\n-----END CERTIFICATE-----\n', // not base64
    '-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n', // bad padding length
    '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n',
    good.replace('aGVs', 'a=Vs'),
  ];
  for (const c of cases) assert.throws(() => decodePem(c), malformed, JSON.stringify(c));
  const huge = good + ' '.repeat(MAX_PEM_BYTES);
  assert.throws(
    () => decodePem(huge),
    (e) => isMooringError(e, 'LIMIT'),
  );
  assert.throws(
    () => encodePem('bad label', Buffer.alloc(1)),
    (e) => isMooringError(e, 'PROTOCOL'),
  );
});
