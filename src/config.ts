/**
 * Configuration, read once from the environment into a frozen Config (12-factor). Nothing else in
 * raftkv reads process.env. A bad or missing value is one line naming the variable.
 */
import { accessSync, readFileSync, constants as fsConstants } from 'node:fs';
import { bool, cleanEnv, makeValidator, port, str } from 'envalid';
import { NODE_ID_RULE, formatHostPort, isHostPort, isNodeId, parseEndpoint, parseHostPort } from './net/address.js';

/** File paths of one TLS identity from the environment. */
export interface TlsFileConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | undefined;
}

export interface Config {
  readonly nodeId: string;
  readonly port: number;
  readonly host: string;
  readonly raftBindHost: string;
  readonly raftBindPort: number;
  readonly raftAdvertiseAddr: string;
  readonly apiAdvertiseAddr: string;
  /** Base URLs of members to join through, e.g. http://localhost:8081. */
  readonly joinAddrs: readonly string[];
  /** RocksDB root; undefined means in memory. */
  readonly dataDir: string | undefined;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatTicks: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxBodyBytes: number;
  readonly requestTimeoutMs: number;
  readonly logLevel: string;
  /** Entries applied since the last snapshot that trigger a new one (log compaction). */
  readonly snapshotThreshold: number;
  /** Bytes of entry data applied since the last snapshot that also trigger one (whichever comes first). */
  readonly snapshotThresholdBytes: number;
  /** MIN_FREE_DISK_BYTES: client writes are refused (507) while less is free on RAFT_DIR's disk; 0 = never. */
  readonly minFreeDiskBytes: number;
  /** TLS_*: serve the client API over HTTPS; null means plain HTTP. */
  readonly apiTls: TlsFileConfig | null;
  /** TLS_MIN_VERSION: the oldest TLS version both servers accept. */
  readonly tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
  /** TLS_CIPHERS: OpenSSL cipher list of both servers; empty means the default (ECDHE + AEAD on 1.2, TLS 1.3 suites). */
  readonly tlsCiphers: string;
  /** RAFT_TLS_*: mutual TLS between peers (caFile always set); null means plain HTTP. */
  readonly raftTls: TlsFileConfig | null;
  /** RAFT_CLUSTER_SECRET (or the contents of RAFT_CLUSTER_SECRET_FILE): peers and joiners sign requests with it; null means unsigned. */
  readonly clusterSecret: string | null;
  /** RAFT_CLUSTER_SECRET_FILE, when the secret came from a file (its permissions are checked at start-up). */
  readonly clusterSecretFile: string | null;
  /** CLIENT_CERT_AUTH: the client API requires a certificate signed by TLS_CA_FILE (etcd's --client-cert-auth). */
  readonly isClientCertRequired: boolean;
  /** AUTH_TOKENS_FILE: client tokens; null means no client authentication. */
  readonly authTokensFile: string | null;
  /** METRICS_AUTH: /metrics needs a token. */
  readonly isMetricsAuthRequired: boolean;
  readonly maxKeysPerRequest: number;
  /** MAX_TXN_OPS: most compares plus operations in one transaction. */
  readonly maxTxnOps: number;
  /** MAX_LIST_LIMIT: the largest `limit` of one GET /keys page. */
  readonly maxListLimit: number;
  /** WATCH_HISTORY_ENTRIES: most applied entries' effects kept in the watch history. */
  readonly watchHistoryEntries: number;
  /** WATCH_HISTORY_BYTES: most bytes (their JSON) of effects kept in the watch history. */
  readonly watchHistoryBytes: number;
  /** MAX_WATCHERS: most open GET /watch streams per node (429 beyond). */
  readonly maxWatchers: number;
  /** WATCH_PROGRESS_INTERVAL_MS: a watch stream without a matching change gets a progress event this often. */
  readonly watchProgressIntervalMs: number;
  /** LEASE_CHECKPOINT_INTERVAL_MS: how often the leader records each lease's remaining time in the log (capped at TTL/4 per lease). */
  readonly leaseCheckpointIntervalMs: number;
  readonly maxConcurrentRequests: number;
  /** MAX_CONNECTIONS: most open client API connections; more are closed on accept. */
  readonly maxConnections: number;
  readonly bodyTimeoutMs: number;
}

const hostPort = makeValidator<string>((v) => {
  if (!isHostPort(v)) throw new Error('must be host:port');
  return v;
});

const positiveInt = makeValidator<number>((v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error('must be a positive integer');
  return n;
});

const nonNegativeInt = makeValidator<number>((v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error('must be a non-negative integer');
  return n;
});

const nodeIdValidator = makeValidator<string>((v) => {
  if (!isNodeId(v)) throw new Error(`must be ${NODE_ID_RULE}`);
  return v;
});

/** Normalises RAFT_JOIN_ADDR (host:port or URLs, comma-separated) into base URLs. */
export function parseJoinAddrs(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const u = parseEndpoint(s);
      if (u === null) throw new Error(`not host:port or an http(s) URL: ${s}`);
      return `${u.protocol}//${u.host}`;
    });
}

/** host and port of an address the hostPort validator accepted. */
function splitHostPort(addr: string): [string, number] {
  const hp = parseHostPort(addr);
  if (hp === null) throw new Error(`not host:port: ${addr}`);
  return [hp.host, hp.port];
}

/** Reads and validates the configuration; in 'exit' mode a bad value prints one line per variable and exits 1. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: { reporter?: 'exit' | 'throw' } = {}): Config {
  const fail = (msg: string): never => {
    if ((opts.reporter ?? 'exit') === 'throw') throw new Error(msg);
    process.stderr.write(`${msg}\n`);
    process.exit(1);
  };
  const e = cleanEnv(
    env,
    {
      NODE_ID: nodeIdValidator(),
      PORT: port({ default: 8080 }),
      HOST: str({ default: '0.0.0.0' }),
      RAFT_BIND_ADDR: hostPort({ default: '127.0.0.1:7000' }),
      RAFT_ADVERTISE_ADDR: hostPort({ default: undefined }),
      API_ADVERTISE_ADDR: hostPort({ default: undefined }),
      RAFT_JOIN_ADDR: str({ default: '' }),
      RAFT_DIR: str({ default: '' }),
      TICK_MS: positiveInt({ default: 50 }),
      ELECTION_TIMEOUT_TICKS: positiveInt({ default: 20 }),
      HEARTBEAT_TICKS: positiveInt({ default: 2 }),
      MAX_KEY_BYTES: positiveInt({ default: 1024 }),
      MAX_VALUE_BYTES: positiveInt({ default: 1048576 }),
      MAX_BODY_BYTES: positiveInt({ default: 2097152 }),
      REQUEST_TIMEOUT_MS: positiveInt({ default: 5000 }),
      SNAPSHOT_THRESHOLD: positiveInt({ default: 10000 }),
      SNAPSHOT_THRESHOLD_BYTES: positiveInt({ default: 64 * 1024 * 1024 }),
      MIN_FREE_DISK_BYTES: nonNegativeInt({ default: 64 * 1024 * 1024 }),
      TLS_CERT_FILE: str({ default: '' }),
      TLS_KEY_FILE: str({ default: '' }),
      TLS_CA_FILE: str({ default: '' }),
      TLS_MIN_VERSION: str({ default: 'TLSv1.2', choices: ['TLSv1.2', 'TLSv1.3'] }),
      TLS_CIPHERS: str({ default: '' }),
      RAFT_TLS_CERT_FILE: str({ default: '' }),
      RAFT_TLS_KEY_FILE: str({ default: '' }),
      RAFT_TLS_CA_FILE: str({ default: '' }),
      RAFT_CLUSTER_SECRET: str({ default: '' }),
      RAFT_CLUSTER_SECRET_FILE: str({ default: '' }),
      AUTH_TOKENS_FILE: str({ default: '' }),
      METRICS_AUTH: bool({ default: false }),
      CLIENT_CERT_AUTH: bool({ default: false }),
      MAX_KEYS_PER_REQUEST: positiveInt({ default: 1000 }),
      MAX_TXN_OPS: positiveInt({ default: 128 }),
      MAX_LIST_LIMIT: positiveInt({ default: 1000 }),
      WATCH_HISTORY_ENTRIES: positiveInt({ default: 100_000 }),
      WATCH_HISTORY_BYTES: positiveInt({ default: 64 * 1024 * 1024 }),
      MAX_WATCHERS: positiveInt({ default: 1000 }),
      WATCH_PROGRESS_INTERVAL_MS: positiveInt({ default: 5000 }),
      LEASE_CHECKPOINT_INTERVAL_MS: positiveInt({ default: 5000 }),
      MAX_CONCURRENT_REQUESTS: positiveInt({ default: 1024 }),
      MAX_CONNECTIONS: positiveInt({ default: 2048 }),
      BODY_TIMEOUT_MS: positiveInt({ default: 10000 }),
      LOG_LEVEL: str({ default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }),
    },
    {
      reporter: ({ errors }) => {
        const names = Object.keys(errors);
        if (names.length === 0) return;
        const errs = errors as Record<string, Error | undefined>;
        const lines = names.map((k) => `raftkv: invalid configuration: ${k}: ${errs[k]?.message ?? 'missing'}`);
        fail(lines.join('\n'));
      },
    },
  );
  const [bindHost, bindPort] = splitHostPort(e.RAFT_BIND_ADDR);
  const isWildcard = bindHost === '0.0.0.0' || bindHost === '::';
  if (isWildcard && !e.RAFT_ADVERTISE_ADDR) fail('raftkv: invalid configuration: RAFT_ADVERTISE_ADDR: required when RAFT_BIND_ADDR binds all interfaces');
  const raftAdvertiseAddr = e.RAFT_ADVERTISE_ADDR ?? e.RAFT_BIND_ADDR;
  let joinAddrs: string[] = [];
  try {
    joinAddrs = parseJoinAddrs(e.RAFT_JOIN_ADDR);
  } catch {
    fail('raftkv: invalid configuration: RAFT_JOIN_ADDR: must be host:port or URLs, comma-separated');
  }
  const readable = (name: string, file: string): void => {
    try {
      accessSync(file, fsConstants.R_OK);
    } catch {
      fail(`raftkv: invalid configuration: ${name}: cannot read ${file}`);
    }
  };
  const tlsFiles = (prefix: string, isCaRequired: boolean): TlsFileConfig | null => {
    const cert = e[`${prefix}CERT_FILE` as 'TLS_CERT_FILE'];
    const key = e[`${prefix}KEY_FILE` as 'TLS_KEY_FILE'];
    const ca = e[`${prefix}CA_FILE` as 'TLS_CA_FILE'];
    if (cert === '' && key === '' && ca === '') return null;
    if (cert === '') fail(`raftkv: invalid configuration: ${prefix}CERT_FILE: required when ${key !== '' ? `${prefix}KEY_FILE` : `${prefix}CA_FILE`} is set`);
    if (key === '') fail(`raftkv: invalid configuration: ${prefix}KEY_FILE: required when ${prefix}CERT_FILE is set`);
    if (isCaRequired && ca === '') fail(`raftkv: invalid configuration: ${prefix}CA_FILE: required for mutual TLS between peers`);
    readable(`${prefix}CERT_FILE`, cert);
    readable(`${prefix}KEY_FILE`, key);
    if (ca !== '') readable(`${prefix}CA_FILE`, ca);
    return Object.freeze({ certFile: cert, keyFile: key, caFile: ca === '' ? undefined : ca });
  };
  const apiTls = tlsFiles('TLS_', false);
  const raftTls = tlsFiles('RAFT_TLS_', true);
  if (e.CLIENT_CERT_AUTH && (apiTls === null || apiTls.caFile === undefined)) fail('raftkv: invalid configuration: CLIENT_CERT_AUTH: needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE (the CA that signs client certificates)');
  let clusterSecret = e.RAFT_CLUSTER_SECRET;
  let secretVar = 'RAFT_CLUSTER_SECRET';
  if (e.RAFT_CLUSTER_SECRET_FILE !== '') {
    if (e.RAFT_CLUSTER_SECRET !== '') fail('raftkv: invalid configuration: RAFT_CLUSTER_SECRET_FILE: set either RAFT_CLUSTER_SECRET or RAFT_CLUSTER_SECRET_FILE, not both');
    readable('RAFT_CLUSTER_SECRET_FILE', e.RAFT_CLUSTER_SECRET_FILE);
    // One trailing newline (as `echo` and editors leave) is not part of the secret.
    clusterSecret = readFileSync(e.RAFT_CLUSTER_SECRET_FILE, 'utf8').replace(/\r?\n$/, '');
    secretVar = 'RAFT_CLUSTER_SECRET_FILE';
    if (clusterSecret === '') fail(`raftkv: invalid configuration: RAFT_CLUSTER_SECRET_FILE: ${e.RAFT_CLUSTER_SECRET_FILE} is empty`);
  }
  if (clusterSecret !== '' && clusterSecret.length < 16) fail(`raftkv: invalid configuration: ${secretVar}: must be at least 16 characters`);
  if (e.AUTH_TOKENS_FILE !== '') readable('AUTH_TOKENS_FILE', e.AUTH_TOKENS_FILE);
  // A member's API speaks HTTPS when ours does, so host:port join addresses default to https.
  if (apiTls !== null) joinAddrs = joinAddrs.map((u) => (e.RAFT_JOIN_ADDR.includes(`http://${new URL(u).host}`) ? u : u.replace(/^http:/, 'https:')));
  return Object.freeze({
    nodeId: e.NODE_ID,
    port: e.PORT,
    host: e.HOST,
    raftBindHost: bindHost,
    raftBindPort: bindPort,
    raftAdvertiseAddr,
    apiAdvertiseAddr: e.API_ADVERTISE_ADDR ?? formatHostPort(splitHostPort(raftAdvertiseAddr)[0], e.PORT),
    joinAddrs: Object.freeze(joinAddrs),
    dataDir: e.RAFT_DIR === '' ? undefined : e.RAFT_DIR,
    tickMs: e.TICK_MS,
    electionTimeoutTicks: e.ELECTION_TIMEOUT_TICKS,
    heartbeatTicks: e.HEARTBEAT_TICKS,
    maxKeyBytes: e.MAX_KEY_BYTES,
    maxValueBytes: e.MAX_VALUE_BYTES,
    maxBodyBytes: e.MAX_BODY_BYTES,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    snapshotThreshold: e.SNAPSHOT_THRESHOLD,
    snapshotThresholdBytes: e.SNAPSHOT_THRESHOLD_BYTES,
    minFreeDiskBytes: e.MIN_FREE_DISK_BYTES,
    apiTls,
    raftTls,
    tlsMinVersion: e.TLS_MIN_VERSION as 'TLSv1.2' | 'TLSv1.3',
    tlsCiphers: e.TLS_CIPHERS,
    clusterSecret: clusterSecret === '' ? null : clusterSecret,
    clusterSecretFile: e.RAFT_CLUSTER_SECRET_FILE === '' ? null : e.RAFT_CLUSTER_SECRET_FILE,
    authTokensFile: e.AUTH_TOKENS_FILE === '' ? null : e.AUTH_TOKENS_FILE,
    isClientCertRequired: e.CLIENT_CERT_AUTH,
    isMetricsAuthRequired: e.METRICS_AUTH,
    maxKeysPerRequest: e.MAX_KEYS_PER_REQUEST,
    maxTxnOps: e.MAX_TXN_OPS,
    maxListLimit: e.MAX_LIST_LIMIT,
    watchHistoryEntries: e.WATCH_HISTORY_ENTRIES,
    watchHistoryBytes: e.WATCH_HISTORY_BYTES,
    maxWatchers: e.MAX_WATCHERS,
    watchProgressIntervalMs: e.WATCH_PROGRESS_INTERVAL_MS,
    leaseCheckpointIntervalMs: e.LEASE_CHECKPOINT_INTERVAL_MS,
    maxConcurrentRequests: e.MAX_CONCURRENT_REQUESTS,
    maxConnections: e.MAX_CONNECTIONS,
    bodyTimeoutMs: e.BODY_TIMEOUT_MS,
  });
}
