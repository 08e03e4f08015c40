/**
 * X.509 v3 certificate structure (RFC 5280 §4.1): building the pieces of a TBSCertificate and
 * the signed Certificate around it, and reading a certificate back into its parts. No crypto
 * here: signing and verifying are the caller's (node:crypto), this module only shapes bytes.
 */
import { MooringError } from '../../util/errors';
import {
  DerLimits,
  DerNode,
  decodeDer,
  expectSequence,
  expectTag,
  readBitString,
  readBoolean,
  readInteger,
  readOctetString,
  readOid,
  readTime,
} from './decode';
import {
  DerTag,
  derBitString,
  derBoolean,
  derExplicit,
  derInteger,
  derNamedBits,
  derNull,
  derOctetString,
  derOid,
  derSequence,
  derTime,
} from './encode';

export const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
export const OID_SHA1_WITH_RSA = '1.2.840.113549.1.1.5';
export const OID_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
export const OID_KEY_USAGE = '2.5.29.15';
export const OID_BASIC_CONSTRAINTS = '2.5.29.19';

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KeyUsageBit = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

/** A certificate is a few KiB; bounds for reading one. */
export const CERTIFICATE_DER_LIMITS: DerLimits = {
  maxDepth: 16,
  maxNodes: 4096,
  maxInputBytes: 64 * 1024,
};

/** The empty distinguished name (an empty RDNSequence) that pairing certificates use. */
export const EMPTY_NAME: Buffer = derSequence();

/** AlgorithmIdentifier for an RSA PKCS#1 v1.5 signature (parameters NULL, RFC 4055 §5). */
export function rsaSignatureAlgorithm(oid: string = OID_SHA256_WITH_RSA): Buffer {
  return derSequence(derOid(oid), derNull());
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export function encodeExtension(oid: string, critical: boolean, valueDer: Buffer): Buffer {
  // DER omits a BOOLEAN equal to its DEFAULT, so `critical` appears only when true.
  return critical
    ? derSequence(derOid(oid), derBoolean(true), derOctetString(valueDer))
    : derSequence(derOid(oid), derOctetString(valueDer));
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }: CA:FALSE is an empty SEQUENCE. */
export function basicConstraintsValue(ca: boolean): Buffer {
  return ca ? derSequence(derBoolean(true)) : derSequence();
}

export function keyUsageValue(bits: number[]): Buffer {
  return derNamedBits(bits);
}

export function subjectKeyIdentifierValue(keyId: Buffer): Buffer {
  return derOctetString(keyId);
}

export interface TbsCertificateInput {
  serial: bigint | number;
  /** AlgorithmIdentifier DER; must equal the outer signatureAlgorithm. */
  signatureAlgorithm: Buffer;
  issuer: Buffer; // Name DER
  subject: Buffer; // Name DER
  notBefore: Date;
  notAfter: Date;
  spki: Buffer; // SubjectPublicKeyInfo DER
  extensions: Buffer[]; // Extension DERs, in order
}

/** TBSCertificate, version v3 (INTEGER 2 under [0] EXPLICIT). */
export function encodeTbsCertificate(t: TbsCertificateInput): Buffer {
  const fields = [
    derExplicit(0, derInteger(2)),
    derInteger(t.serial),
    t.signatureAlgorithm,
    t.issuer,
    derSequence(derTime(t.notBefore), derTime(t.notAfter)),
    t.subject,
    t.spki,
  ];
  if (t.extensions.length > 0) fields.push(derExplicit(3, derSequence(...t.extensions)));
  return derSequence(...fields);
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }. */
export function encodeCertificate(
  tbs: Buffer,
  signatureAlgorithm: Buffer,
  signature: Buffer,
): Buffer {
  return derSequence(tbs, signatureAlgorithm, derBitString(signature));
}

export interface CertificateExtension {
  oid: string;
  critical: boolean;
  /** extnValue's content: the DER of the extension-specific structure. */
  value: Buffer;
}

export interface CertificateParts {
  /** The whole TBSCertificate TLV: the bytes the signature covers. */
  tbs: Buffer;
  version: number; // 1, 2 or 3
  serial: bigint;
  signatureAlgorithm: string; // OID of the outer signatureAlgorithm
  issuer: Buffer; // Name DER
  subject: Buffer; // Name DER
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  extensions: CertificateExtension[];
  signature: Buffer;
}

/** Reads a certificate's structure. Checks shape, not signatures or validity dates. */
export function readCertificate(der: Buffer): CertificateParts {
  const root = decodeDer(der, CERTIFICATE_DER_LIMITS);
  const [tbsNode, sigAlg, sigValue] = expectSequence(root, 'Certificate', 3, 3);
  const tbsFields = expectSequence(tbsNode, 'TBSCertificate', 6, 10);
  let i = 0;
  let version = 1;
  const first = tbsFields[0] as DerNode;
  if (first.tag === 0xa0) {
    if (first.children.length !== 1) {
      throw new MooringError('MALFORMED', 'TBSCertificate.version: [0] must hold one INTEGER');
    }
    const v = readInteger(first.children[0], 'TBSCertificate.version');
    if (v < 0n || v > 2n) throw new MooringError('MALFORMED', `certificate version ${v} unknown`);
    version = Number(v) + 1;
    i++;
  }
  const serial = readInteger(tbsFields[i++], 'TBSCertificate.serialNumber');
  const innerAlg = tbsFields[i++];
  expectSequence(innerAlg, 'TBSCertificate.signature', 1, 2);
  const issuer = expectTag(tbsFields[i++], DerTag.SEQUENCE, 'TBSCertificate.issuer').raw;
  const [nb, na] = expectSequence(tbsFields[i++], 'TBSCertificate.validity', 2, 2);
  const subject = expectTag(tbsFields[i++], DerTag.SEQUENCE, 'TBSCertificate.subject').raw;
  const spki = expectTag(tbsFields[i++], DerTag.SEQUENCE, 'TBSCertificate.subjectPublicKeyInfo');
  const extensions: CertificateExtension[] = [];
  for (const node of tbsFields.slice(i)) {
    if (node.tag === 0xa1 || node.tag === 0x81 || node.tag === 0xa2 || node.tag === 0x82) {
      continue; // issuerUniqueID / subjectUniqueID: allowed, unused
    }
    if (node.tag !== 0xa3 || node.children.length !== 1) {
      throw new MooringError(
        'MALFORMED',
        `TBSCertificate: unexpected field tag 0x${node.tag.toString(16)}`,
      );
    }
    for (const ext of expectSequence(node.children[0], 'TBSCertificate.extensions', 1)) {
      const parts = expectSequence(ext, 'Extension', 2, 3);
      const critical = parts.length === 3 ? readBoolean(parts[1], 'Extension.critical') : false;
      extensions.push({
        oid: readOid(parts[0], 'Extension.extnID'),
        critical,
        value: readOctetString(parts[parts.length - 1], 'Extension.extnValue'),
      });
    }
  }
  const outerAlgNodes = expectSequence(sigAlg, 'Certificate.signatureAlgorithm', 1, 2);
  if (!(sigAlg as DerNode).raw.equals((innerAlg as DerNode).raw)) {
    throw new MooringError('MALFORMED', 'Certificate: inner and outer signature algorithms differ');
  }
  const signature = readBitString(sigValue, 'Certificate.signatureValue');
  if (signature.unusedBits !== 0) {
    throw new MooringError('MALFORMED', 'Certificate.signatureValue is not whole bytes');
  }
  return {
    tbs: (tbsNode as DerNode).raw,
    version,
    serial,
    signatureAlgorithm: readOid(outerAlgNodes[0], 'Certificate.signatureAlgorithm'),
    issuer,
    subject,
    notBefore: readTime(nb, 'Validity.notBefore'),
    notAfter: readTime(na, 'Validity.notAfter'),
    spki: spki.raw,
    extensions,
    signature: signature.bytes,
  };
}
