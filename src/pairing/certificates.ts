/**
 * The certificate material a host mints when it pairs with a device (reference §2.3): a
 * self-signed root CA, a host certificate, and a certificate over the device's own public key,
 * all signed by the root. These later authenticate both ends of every lockdownd/service TLS
 * connection: the device serves DeviceCertificate (with its own private key), the host presents
 * HostCertificate or RootCertificate as its client certificate.
 *
 * Built from node:crypto (keys, signatures) and our DER encoder (certificate bytes): no
 * certificate library. Choices, where implementations differ:
 * - serial number 1 for every certificate (LIMD/GnuTLS, LIMD/mbedTLS and pymobiledevice3 use 1;
 *   LIMD/OpenSSL uses 0, which RFC 5280 forbids);
 * - notBefore = now − 1 minute (pymobiledevice3's margin against clock skew), notAfter = now + 10
 *   calendar years; UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280);
 * - SHA-256 with RSA (reference §2.3: SHA-1 only for pre-iOS 4 devices, which we don't support);
 * - empty subject and issuer names, exactly as every pairing implementation writes them;
 * - device certificate extensions in LIMD's order: BasicConstraints, SubjectKeyIdentifier,
 *   KeyUsage.
 */
import {
  KeyObject,
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
} from 'node:crypto';
import { MooringError } from '../util/errors';
import {
  EMPTY_NAME,
  KeyUsageBit,
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  OID_SUBJECT_KEY_IDENTIFIER,
  basicConstraintsValue,
  decodeDer,
  decodePem,
  encodeCertificate,
  encodeExtension,
  encodePem,
  encodeTbsCertificate,
  keyUsageValue,
  looksLikePem,
  readRsaPublicKeyPkcs1,
  rsaPkcs1FromSpki,
  rsaSignatureAlgorithm,
  rsaSpkiFromPkcs1,
  subjectKeyIdentifierValue,
} from '../protocol/der';

export const PAIRING_RSA_BITS = 2048;
export const PAIRING_RSA_EXPONENT = 65537;
export const CERTIFICATE_SERIAL = 1n;
export const CERTIFICATE_VALIDITY_YEARS = 10;
export const NOT_BEFORE_BACKDATE_MS = 60_000;
/** Device keys outside this range are refused: too weak to matter, or too big to be real. */
export const DEVICE_KEY_MIN_BITS = 1024;
export const DEVICE_KEY_MAX_BITS = 4096;

export interface PairingCertificates {
  rootCertPem: string;
  rootKeyPem: string; // PKCS#8 ("BEGIN PRIVATE KEY")
  hostCertPem: string;
  hostKeyPem: string; // PKCS#8
  deviceCertPem: string;
}

export interface PairingCertificateOptions {
  /** Reuse this host key (PEM, PKCS#8 or PKCS#1) instead of generating one. */
  hostKeyPem?: string | Buffer;
  /** The issuing time; defaults to the current time. */
  now?: Date;
}

/**
 * Mints the root, host and device certificates for a pairing. `devicePublicKey` is the device's
 * `DevicePublicKey` value: PEM (PKCS#1 "RSA PUBLIC KEY" or SPKI "PUBLIC KEY") as text or bytes,
 * or raw DER of either. Throws MALFORMED when it is not a usable RSA key.
 */
export function generatePairingCertificates(
  devicePublicKey: string | Buffer,
  opts: PairingCertificateOptions = {},
): PairingCertificates {
  const device = normaliseDevicePublicKey(devicePublicKey);
  const now = opts.now ?? new Date();
  if (!Number.isFinite(now.getTime())) throw new MooringError('USAGE', 'invalid issuing time');
  const notBefore = new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS);
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CERTIFICATE_VALIDITY_YEARS);

  // Validate every input before the (slow) key generation.
  const givenHostKey = opts.hostKeyPem === undefined ? undefined : importHostKey(opts.hostKeyPem);
  const root = newRsaKey();
  const hostPrivate = givenHostKey ?? newRsaKey();
  const hostSpki = createPublicKey(hostPrivate).export({ type: 'spki', format: 'der' });
  const rootSpki = createPublicKey(root).export({ type: 'spki', format: 'der' });

  const keyUsage = encodeExtension(
    OID_KEY_USAGE,
    true,
    keyUsageValue([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment]),
  );
  const notCa = encodeExtension(OID_BASIC_CONSTRAINTS, true, basicConstraintsValue(false));
  const issue = (spki: Buffer, extensions: Buffer[]): string =>
    issueCertificate(root, { spki, extensions, notBefore, notAfter });

  return {
    rootCertPem: issue(rootSpki, [
      encodeExtension(OID_BASIC_CONSTRAINTS, true, basicConstraintsValue(true)),
    ]),
    rootKeyPem: exportPkcs8(root),
    hostCertPem: issue(hostSpki, [notCa, keyUsage]),
    hostKeyPem: exportPkcs8(hostPrivate),
    deviceCertPem: issue(device.spki, [
      notCa,
      encodeExtension(
        OID_SUBJECT_KEY_IDENTIFIER,
        false,
        subjectKeyIdentifierValue(device.subjectKeyId),
      ),
      keyUsage,
    ]),
  };
}

function issueCertificate(
  issuerKey: KeyObject,
  c: { spki: Buffer; extensions: Buffer[]; notBefore: Date; notAfter: Date },
): string {
  const alg = rsaSignatureAlgorithm();
  const tbs = encodeTbsCertificate({
    serial: CERTIFICATE_SERIAL,
    signatureAlgorithm: alg,
    issuer: EMPTY_NAME,
    subject: EMPTY_NAME,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    spki: c.spki,
    extensions: c.extensions,
  });
  // RSA keys sign with PKCS#1 v1.5 padding by default: what sha256WithRSAEncryption means.
  const signature = sign('sha256', tbs, issuerKey);
  return encodePem('CERTIFICATE', encodeCertificate(tbs, alg, signature));
}

function newRsaKey(): KeyObject {
  return generateKeyPairSync('rsa', {
    modulusLength: PAIRING_RSA_BITS,
    publicExponent: PAIRING_RSA_EXPONENT,
  }).privateKey;
}

function exportPkcs8(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function importHostKey(pem: string | Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new MooringError(
      'USAGE',
      'the host key given for pairing is not a readable private key',
      {
        cause: e,
      },
    );
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new MooringError('USAGE', `the host key must be RSA, not ${key.asymmetricKeyType}`);
  }
  return key;
}

export interface DevicePublicKeyInfo {
  /** Canonical SubjectPublicKeyInfo DER, as embedded in the device certificate. */
  spki: Buffer;
  /** PKCS#1 RSAPublicKey DER (the SPKI's key bits). */
  pkcs1: Buffer;
  /** SHA-1 of the key bits (RFC 5280 §4.2.1.2 method 1, OpenSSL's "hash"). */
  subjectKeyId: Buffer;
  bits: number;
}

/** Validates and normalises a device public key (untrusted: it comes from the device). */
export function normaliseDevicePublicKey(input: string | Buffer): DevicePublicKeyInfo {
  try {
    let pkcs1: Buffer;
    if (looksLikePem(input)) {
      const block = decodePem(input, ['RSA PUBLIC KEY', 'PUBLIC KEY']);
      pkcs1 = block.label === 'RSA PUBLIC KEY' ? block.der : rsaPkcs1FromSpki(block.der);
    } else if (Buffer.isBuffer(input)) {
      // Raw DER: SPKI starts with a SEQUENCE (AlgorithmIdentifier), PKCS#1 with an INTEGER.
      const top = decodeDer(input, { maxDepth: 4, maxNodes: 16, maxInputBytes: 4096 });
      pkcs1 = top.children[0]?.tag === 0x30 ? rsaPkcs1FromSpki(input) : input;
    } else {
      throw new MooringError('MALFORMED', 'not PEM text');
    }
    const key = readRsaPublicKeyPkcs1(pkcs1);
    if (key.bits < DEVICE_KEY_MIN_BITS || key.bits > DEVICE_KEY_MAX_BITS) {
      throw new MooringError('MALFORMED', `RSA modulus of ${key.bits} bits is out of range`);
    }
    const e = key.exponent;
    if (
      e.length > 8 ||
      ((e[e.length - 1] as number) & 1) === 0 ||
      (e.length === 1 && (e[0] as number) < 3)
    ) {
      throw new MooringError('MALFORMED', 'RSA public exponent is not an odd number ≥ 3');
    }
    const spki = rsaSpkiFromPkcs1(pkcs1);
    const canonicalPkcs1 = rsaPkcs1FromSpki(spki);
    createPublicKey({ key: spki, format: 'der', type: 'spki' }); // OpenSSL must accept it too
    return {
      spki,
      pkcs1: canonicalPkcs1,
      subjectKeyId: createHash('sha1').update(canonicalPkcs1).digest(),
      bits: key.bits,
    };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new MooringError('MALFORMED', `DevicePublicKey is not a usable RSA public key: ${why}`, {
      cause: e,
    });
  }
}

export interface DeviceKeyPair {
  /** PKCS#1 PEM ("BEGIN RSA PUBLIC KEY"), the form lockdownd publishes as DevicePublicKey. */
  publicKeyPkcs1Pem: string;
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"). */
  privateKeyPem: string;
}

/** A device identity key, for the simulator. */
export function generateDeviceKeyPair(): DeviceKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: PAIRING_RSA_BITS,
    publicExponent: PAIRING_RSA_EXPONENT,
  });
  return {
    publicKeyPkcs1Pem: publicKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    privateKeyPem: exportPkcs8(privateKey),
  };
}

/** DER bytes of the first PEM block (optionally requiring one of `labels`). */
export function pemToDer(pem: string | Buffer, labels?: readonly string[]): Buffer {
  return decodePem(pem, labels).der;
}

/** A certificate's DER from PEM text/bytes, or the bytes themselves when already DER. */
export function certificateDer(pemOrDer: string | Buffer): Buffer {
  if (looksLikePem(pemOrDer)) return decodePem(pemOrDer, ['CERTIFICATE']).der;
  if (typeof pemOrDer === 'string') {
    throw new MooringError('MALFORMED', 'certificate text is not PEM');
  }
  return pemOrDer;
}

/** SHA-256 of the certificate's DER, lowercase hex. */
export function certificateFingerprint(pemOrDer: string | Buffer): string {
  return createHash('sha256').update(certificateDer(pemOrDer)).digest('hex');
}

/** Whether two certificates (PEM or DER, in any mix) are the same bytes. */
export function sameCertificate(a: string | Buffer, b: string | Buffer): boolean {
  return certificateDer(a).equals(certificateDer(b));
}

/**
 * Whether `cert`'s signature verifies with `issuerCert`'s public key. Names are not compared:
 * pairing certificates all have empty names, so the signature is the only real link.
 */
export function verifyIssuedBy(cert: string | Buffer, issuerCert: string | Buffer): boolean {
  const subject = parseX509(cert, 'certificate');
  const issuer = parseX509(issuerCert, 'issuer certificate');
  return subject.verify(issuer.publicKey);
}

function parseX509(pemOrDer: string | Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(certificateDer(pemOrDer));
  } catch (e) {
    throw new MooringError('MALFORMED', `${what} cannot be parsed`, { cause: e });
  }
}
