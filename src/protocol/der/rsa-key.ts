/**
 * RSA public keys in their two DER shapes: PKCS#1 `RSAPublicKey` (what lockdownd sends as
 * DevicePublicKey, PEM label "RSA PUBLIC KEY") and X.509 `SubjectPublicKeyInfo` (what a
 * certificate embeds, PEM label "PUBLIC KEY"). RFC 8017 §A.1.1, RFC 5280 §4.1.2.7.
 */
import { MooringError } from '../../util/errors';
import { DerLimits, decodeDer, expectSequence, readBitString, readNull, readOid } from './decode';
import { readUnsignedIntegerBytes } from './decode';
import { derBitString, derInteger, derNull, derOid, derSequence } from './encode';

export const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';

/** Keys are small; anything bigger than this is not an RSA public key. */
const KEY_DER_LIMITS: Partial<DerLimits> = { maxDepth: 4, maxNodes: 16, maxInputBytes: 4096 };

export interface RsaPublicKey {
  /** Big-endian magnitude, no leading zero byte. */
  modulus: Buffer;
  /** Big-endian magnitude, no leading zero byte. */
  exponent: Buffer;
  /** Bit length of the modulus. */
  bits: number;
}

export interface SubjectPublicKeyInfo {
  algorithm: string; // OID
  /** The subjectPublicKey BIT STRING's bytes: for RSA, the PKCS#1 RSAPublicKey DER. */
  publicKey: Buffer;
}

/** Parses a PKCS#1 RSAPublicKey: SEQUENCE { modulus INTEGER, publicExponent INTEGER }. */
export function readRsaPublicKeyPkcs1(der: Buffer): RsaPublicKey {
  const [n, e] = expectSequence(decodeDer(der, KEY_DER_LIMITS), 'RSAPublicKey', 2, 2);
  const modulus = readUnsignedIntegerBytes(n, 'RSAPublicKey.modulus');
  const exponent = readUnsignedIntegerBytes(e, 'RSAPublicKey.publicExponent');
  const top = modulus[0] as number;
  if (top === 0) throw new MooringError('MALFORMED', 'RSAPublicKey.modulus is zero');
  const bits = (modulus.length - 1) * 8 + (32 - Math.clz32(top));
  return { modulus, exponent, bits };
}

/** Parses SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING }. */
export function readSubjectPublicKeyInfo(der: Buffer): SubjectPublicKeyInfo {
  const [alg, key] = expectSequence(decodeDer(der, KEY_DER_LIMITS), 'SubjectPublicKeyInfo', 2, 2);
  const [oid] = expectSequence(alg, 'SubjectPublicKeyInfo.algorithm', 1, 2);
  const bits = readBitString(key, 'SubjectPublicKeyInfo.subjectPublicKey');
  if (bits.unusedBits !== 0) {
    throw new MooringError('MALFORMED', 'SubjectPublicKeyInfo.subjectPublicKey is not whole bytes');
  }
  return { algorithm: readOid(oid, 'SubjectPublicKeyInfo.algorithm'), publicKey: bits.bytes };
}

/** The PKCS#1 RSAPublicKey inside an RSA SubjectPublicKeyInfo. */
export function rsaPkcs1FromSpki(spkiDer: Buffer): Buffer {
  const spki = readSubjectPublicKeyInfo(spkiDer);
  if (spki.algorithm !== OID_RSA_ENCRYPTION) {
    throw new MooringError('MALFORMED', `public key algorithm ${spki.algorithm} is not RSA`);
  }
  const [alg] = expectSequence(decodeDer(spkiDer, KEY_DER_LIMITS), 'SubjectPublicKeyInfo');
  const params = expectSequence(alg, 'SubjectPublicKeyInfo.algorithm')[1];
  if (params !== undefined) readNull(params, 'rsaEncryption parameters');
  readRsaPublicKeyPkcs1(spki.publicKey); // validates the inner structure
  return spki.publicKey;
}

/** Wraps a PKCS#1 RSAPublicKey in SubjectPublicKeyInfo (rsaEncryption with NULL parameters). */
export function rsaSpkiFromPkcs1(pkcs1Der: Buffer): Buffer {
  const key = readRsaPublicKeyPkcs1(pkcs1Der);
  // Re-encode from the parsed numbers so the output is canonical DER whatever came in.
  const canonical = derSequence(derInteger(key.modulus), derInteger(key.exponent));
  return derSequence(derSequence(derOid(OID_RSA_ENCRYPTION), derNull()), derBitString(canonical));
}
