/**
 * Builds this node's security pieces from the Config (TLS identities, tokens, the cluster secret)
 * and re-reads their files on SIGHUP. main.ts calls it once and wires the results; with no
 * security variables set everything here is inert and the node behaves as before.
 */
import { statSync } from 'node:fs';
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Config, TlsFileConfig } from '../config.js';
import type { ApiSecurity } from './auth.js';
import { answerClientErrors } from '../http/client-error.js';
import { signRequest } from './hmac.js';
import { DEFAULT_TLS_CIPHERS, ReloadableTls, type TlsPolicy } from './tls.js';
import { TokenStore } from './tokens.js';
import type { PeerClientTls } from '../transport/http/client.js';

function load<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new Error(`raftkv: invalid configuration: ${name}: ${(err as Error).message}`);
  }
}

function tlsFrom(prefix: string, files: TlsFileConfig | null, policy: TlsPolicy): ReloadableTls | null {
  if (files === null) return null;
  return load(`${prefix}CERT_FILE/${prefix}KEY_FILE (or TLS_MIN_VERSION/TLS_CIPHERS)`, () => new ReloadableTls({ certFile: files.certFile, keyFile: files.keyFile, caFile: files.caFile }, policy));
}

/**
 * The secret files (tokens, private keys, the cluster secret) that others may read: any readable by
 * others, or by a group other than this process's own (group-readable keys for the container's
 * group, as `make certs` writes them, are fine). Called once at start-up to warn.
 */
export function looselyReadableSecretFiles(cfg: Config, myGid: number | null = typeof process.getgid === 'function' ? process.getgid() : null): string[] {
  const files = [cfg.authTokensFile, cfg.apiTls?.keyFile, cfg.raftTls?.keyFile, cfg.clusterSecretFile].filter((f): f is string => typeof f === 'string');
  return [...new Set(files)].filter((f) => {
    try {
      const st = statSync(f);
      return (st.mode & 0o004) !== 0 || ((st.mode & 0o040) !== 0 && st.gid !== myGid);
    } catch {
      return false;
    }
  });
}

/** The node's security state; one instance per process. */
export class NodeSecurity {
  /** TLS for the client API (HTTPS), or null. */
  readonly apiTls: ReloadableTls | null;
  /** Mutual TLS for peer RPC, or null. */
  readonly raftTls: ReloadableTls | null;
  private tokens: TokenStore | null;
  private apiAgent: Agent | null = null;
  private readonly reloaders: (() => void)[] = [];

  constructor(
    private readonly cfg: Config,
    private readonly logger: Logger,
  ) {
    const policy: TlsPolicy = { minVersion: cfg.tlsMinVersion, ciphers: cfg.tlsCiphers === '' ? DEFAULT_TLS_CIPHERS : cfg.tlsCiphers };
    this.apiTls = tlsFrom('TLS_', cfg.apiTls, policy);
    this.raftTls = tlsFrom('RAFT_TLS_', cfg.raftTls, policy);
    this.tokens = cfg.authTokensFile === null ? null : load('AUTH_TOKENS_FILE', () => TokenStore.load(cfg.authTokensFile as string));
    if (this.apiTls !== null) this.apiAgent = this.newApiAgent();
    const loose = looselyReadableSecretFiles(cfg);
    if (loose.length > 0) logger.warn({ files: loose }, `security: ${loose.join(', ')} readable by other users; chmod 600 (or 640 for the node's own group)`);
  }

  /** A one-line summary for the start-up log (never a secret or a token). */
  summary(): Record<string, unknown> {
    return {
      apiTls: this.apiTls !== null,
      peerMutualTls: this.raftTls !== null,
      clusterSecret: this.cfg.clusterSecret !== null,
      clientTokens: this.tokens?.size ?? 0,
      metricsAuth: this.cfg.isMetricsAuthRequired,
      clientCertAuth: this.cfg.isClientCertRequired,
    };
  }

  /** What the API's auth middleware needs. */
  apiSecurity(): ApiSecurity | undefined {
    if (this.tokens === null && this.cfg.clusterSecret === null && this.apiTls === null && this.raftTls === null) return undefined;
    return {
      tokens: () => this.tokens,
      clusterSecret: this.cfg.clusterSecret,
      isMetricsAuthRequired: this.cfg.isMetricsAuthRequired,
      reload: () => this.reload(),
      certExpirySeconds: () => ({ ...(this.apiTls ? { api: this.apiTls.expirySeconds } : {}), ...(this.raftTls ? { peer: this.raftTls.expirySeconds } : {}) }),
    };
  }

  /** Client-side TLS for the peer transport, or null. */
  peerClientTls(): PeerClientTls | null {
    if (this.raftTls === null) return null;
    const pem = this.raftTls.current;
    return { cert: pem.cert, key: pem.key, ca: pem.ca as Buffer };
  }

  /**
   * Creates the client API server: HTTPS with the API identity when configured, else HTTP. Headers
   * must arrive within BODY_TIMEOUT_MS of the connection (or of the previous response), idle
   * keep-alive connections close after BODY_TIMEOUT_MS, and at most MAX_CONNECTIONS are open.
   */
  createApiServer(listener: RequestListener): Server {
    const server = this.newApiServer(listener);
    server.headersTimeout = this.cfg.bodyTimeoutMs;
    // The body has its own 408 with the error body at BODY_TIMEOUT_MS (src/http/body.ts); this is the backstop.
    server.requestTimeout = this.cfg.bodyTimeoutMs + 2000;
    server.keepAliveTimeout = this.cfg.bodyTimeoutMs;
    server.maxConnections = this.cfg.maxConnections;
    return server;
  }

  private newApiServer(listener: RequestListener): Server {
    // Node checks header and request timeouts only every connectionsCheckingInterval (30 s by
    // default), which made a 10 s timeout close connections after up to 40 s.
    const timing = { connectionsCheckingInterval: Math.min(1000, this.cfg.bodyTimeoutMs) };
    if (this.apiTls === null) {
      const plain = createHttpServer(timing, listener);
      answerClientErrors(plain);
      return plain;
    }
    // CLIENT_CERT_AUTH: the handshake itself refuses a client without a certificate from TLS_CA_FILE.
    const clientCert = this.cfg.isClientCertRequired ? { requestCert: true, rejectUnauthorized: true } : {};
    const server = createHttpsServer({ ...this.apiTls.serverOptions(), ...clientCert, ...timing }, listener);
    answerClientErrors(server);
    this.apiTls.onReload(() => (server as HttpsServer).setSecureContext(this.apiTls?.serverOptions() ?? {}));
    return server;
  }

  /** The scheme and dispatcher for calls to other members' APIs (forwarding, join). */
  apiClient(): { scheme: 'http' | 'https'; dispatcher: () => Dispatcher | undefined } {
    return { scheme: this.apiTls === null ? 'http' : 'https', dispatcher: () => this.apiAgent ?? undefined };
  }

  /** Headers that prove the cluster secret for a join request (none without a secret). */
  joinHeaders(path: string, body: string): Record<string, string> {
    return this.cfg.clusterSecret === null ? {} : signRequest(this.cfg.clusterSecret, 'POST', path, body);
  }

  /** Registers work to do after a successful reload (e.g. swapping the peer server's context). */
  onReload(fn: () => void): void {
    this.reloaders.push(fn);
  }

  /**
   * Re-reads certificate, key, CA and token files (SIGHUP, or POST /admin/reload). Each part is
   * all-or-nothing: a file that cannot be read or parsed leaves that part unchanged and is logged.
   */
  reload(): { isOk: boolean; errors: string[] } {
    let isOk = true;
    const errors: string[] = [];
    for (const [what, tls] of [['client API TLS', this.apiTls], ['peer TLS', this.raftTls]] as const) {
      if (tls === null) continue;
      try {
        tls.reload();
      } catch (err) {
        isOk = false;
        errors.push(`${what}: ${(err as Error).message}`);
        this.logger.error({ err: (err as Error).message }, `SIGHUP: ${what} not reloaded; keeping the old certificate`);
      }
    }
    if (this.apiTls !== null) {
      const old = this.apiAgent;
      this.apiAgent = this.newApiAgent();
      old?.close().catch(() => undefined);
    }
    if (this.cfg.authTokensFile !== null) {
      try {
        this.tokens = TokenStore.load(this.cfg.authTokensFile);
      } catch (err) {
        isOk = false;
        errors.push(`AUTH_TOKENS_FILE: ${(err as Error).message}`);
        this.logger.error({ err: (err as Error).message }, 'SIGHUP: AUTH_TOKENS_FILE not reloaded; keeping the old tokens');
      }
    }
    for (const fn of this.reloaders) fn();
    this.logger.info({ ...this.summary(), isOk }, 'SIGHUP: security files re-read');
    return { isOk, errors };
  }

  private newApiAgent(): Agent {
    const pem = this.apiTls?.current;
    const ca = pem?.ca;
    // With CLIENT_CERT_AUTH members call each other's APIs (forwarding, join) with their own certificate.
    const own = this.cfg.isClientCertRequired && pem ? { cert: pem.cert, key: pem.key } : {};
    return new Agent({ connect: { ...(ca ? { ca } : {}), ...own } });
  }
}
