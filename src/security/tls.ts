/**
 * TLS material read from files (certificate, key, optional CA) and re-read on demand (SIGHUP), so
 * servers can swap their secure context and clients can rebuild their dispatchers without a restart.
 * Also the protocol policy both servers use (minimum version, cipher suites) and the refusal of an
 * expired certificate.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

/**
 * Default cipher suites: on TLS 1.2 only ECDHE key exchange (forward secrecy) with AEAD ciphers;
 * the TLS 1.3 suites (all AEAD with ephemeral keys) are listed too, since a list without them would
 * turn TLS 1.3 off.
 */
export const DEFAULT_TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** The protocol policy of a TLS server (TLS_MIN_VERSION, TLS_CIPHERS). */
export interface TlsPolicy {
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  ciphers: string;
}

/** TLS 1.2 or later with the default suites. */
export const DEFAULT_TLS_POLICY: TlsPolicy = Object.freeze({ minVersion: 'TLSv1.2', ciphers: DEFAULT_TLS_CIPHERS });

/**
 * Throws when `pem`'s first certificate has expired (or is not valid yet) at `nowMs`, naming the
 * file and the date: a node refuses such a certificate at start and on reload.
 */
export function checkValidity(pem: Buffer, file: string, nowMs: number = Date.now()): X509Certificate {
  const cert = new X509Certificate(pem);
  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  if (notAfter <= nowMs) throw new Error(`the certificate in ${file} expired on ${new Date(notAfter).toISOString()}; renew it (e.g. make certs)`);
  if (notBefore > nowMs) throw new Error(`the certificate in ${file} is not valid before ${new Date(notBefore).toISOString()}`);
  return cert;
}

/** File paths of one TLS identity. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

/** The PEM contents of one TLS identity. */
export interface TlsPem {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

/** Reads the files of one identity; throws on an unreadable file. */
export function readTls(files: TlsFiles): TlsPem {
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ...(files.caFile ? { ca: readFileSync(files.caFile) } : {}),
  };
}

/**
 * One TLS identity that can be reloaded: holds the current PEMs and tells listeners when they
 * change. Created by main.ts for the client API and for peer RPC. An expired certificate is refused
 * at construction and on reload (the old one stays).
 */
export class ReloadableTls {
  private pem: TlsPem;
  private notAfterMs: number;
  private readonly listeners: ((pem: TlsPem) => void)[] = [];

  constructor(
    readonly files: TlsFiles,
    readonly policy: TlsPolicy = DEFAULT_TLS_POLICY,
  ) {
    this.pem = readTls(files);
    this.notAfterMs = this.validate(this.pem);
  }

  /** The current PEMs. */
  get current(): TlsPem {
    return this.pem;
  }

  /** When the current certificate expires, in seconds since the epoch (for the expiry metric). */
  get expirySeconds(): number {
    return this.notAfterMs / 1000;
  }

  /** Secure-context options for a server (the CA, when present, verifies client certificates), with the policy. */
  serverOptions(): SecureContextOptions {
    return { cert: this.pem.cert, key: this.pem.key, ...(this.pem.ca ? { ca: this.pem.ca } : {}), minVersion: this.policy.minVersion, ciphers: this.policy.ciphers, honorCipherOrder: true };
  }

  /** Calls `fn` after every successful reload. */
  onReload(fn: (pem: TlsPem) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Re-reads the files. On a read error, a key that does not match, or an expired certificate the
   * old material stays in force and the error is thrown; listeners run only when all files were read.
   */
  reload(): void {
    const next = readTls(this.files);
    const notAfterMs = this.validate(next);
    this.pem = next;
    this.notAfterMs = notAfterMs;
    for (const fn of this.listeners) fn(next);
  }

  /** Throws on an expired certificate, a key that does not match it, or a bad policy; returns the expiry. */
  private validate(pem: TlsPem): number {
    const cert = checkValidity(pem.cert, this.files.certFile);
    createSecureContext({ cert: pem.cert, key: pem.key, ...(pem.ca ? { ca: pem.ca } : {}), minVersion: this.policy.minVersion, ciphers: this.policy.ciphers });
    return Date.parse(cert.validTo);
  }
}
