/** Minimal ASN.1 DER: encoder, bounded decoder, PEM, RSA public keys, X.509 structure. */
export * from './encode';
export * from './decode';
export * from './pem';
export * from './rsa-key';
export * from './x509';
