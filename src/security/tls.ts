/**
 * TLS material read from files (certificate, key, optional CA) and re-read on demand (SIGHUP), so
 * servers can swap their secure context and clients can rebuild their dispatchers without a restart.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

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
 * change. Created by main.ts for the client API and for peer RPC.
 */
export class ReloadableTls {
  private pem: TlsPem;
  private readonly listeners: ((pem: TlsPem) => void)[] = [];

  constructor(readonly files: TlsFiles) {
    this.pem = readTls(files);
    createSecureContext({ cert: this.pem.cert, key: this.pem.key, ...(this.pem.ca ? { ca: this.pem.ca } : {}) });
  }

  /** The current PEMs. */
  get current(): TlsPem {
    return this.pem;
  }

  /** Secure-context options for a server (the CA, when present, verifies client certificates). */
  serverOptions(): SecureContextOptions {
    return { cert: this.pem.cert, key: this.pem.key, ...(this.pem.ca ? { ca: this.pem.ca } : {}) };
  }

  /** Calls `fn` after every successful reload. */
  onReload(fn: (pem: TlsPem) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Re-reads the files. On a read error the old material stays in force and the error is thrown;
   * listeners run only when all files were read.
   */
  reload(): void {
    const next = readTls(this.files);
    // Throws on a key that does not match its certificate, before anything is swapped.
    createSecureContext({ cert: next.cert, key: next.key, ...(next.ca ? { ca: next.ca } : {}) });
    this.pem = next;
    for (const fn of this.listeners) fn(next);
  }
}
