#!/usr/bin/env node
/**
 * The `raftkv` command: get, set, cas, del, ls, txn, cluster, cluster remove, watch-cluster and reload
 * against a raftkv cluster through RaftKvClient. Exit codes: 0 ok, 1 not found, 2 usage or rejected
 * input, 3 cluster unavailable (or a write whose outcome is unknown), 4 a precondition did not hold
 * (cas, conditional del, a transaction whose compares failed). Installed as the package's `bin`.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { pathToFileURL } from 'node:url';
import { BadRequestError, KeyNotFoundError, NodeNotFoundError, PayloadTooLargeError, PreconditionFailedError, RaftKvClient, RaftKvClientError, type ClusterInfo, type ListItem, type TxnRequest, type WriteConditions } from '../client/index.js';
import { parseInterval, renderCluster } from './format.js';
import { parseEndpoint, withScheme } from '../net/address.js';
import { BACKUP_HELP, RESTORE_HELP, runBackupCommand } from './backup.js';

/** Exit codes of the command. */
export const EXIT = { ok: 0, notFound: 1, usage: 2, unavailable: 3, preconditionFailed: 4 } as const;

const DEFAULT_ENDPOINT = 'http://127.0.0.1:8080';

const COMMON = `Options for every command:
  --endpoints URLS   comma-separated API endpoints (default: $RAFTKV_ENDPOINTS, else ${DEFAULT_ENDPOINT});
                     "host:port" means http://host:port
  --json             machine-readable output (errors too, on stderr)
  --timeout MS       per-request deadline in milliseconds (default 10000)
  --retries N        extra attempts on transient failures (default 6)
  -h, --help         show help
Environment: RAFTKV_ENDPOINTS, RAFTKV_TOKEN (sent as "Authorization: Bearer <token>").
Exit codes: 0 ok, 1 not found, 2 usage or rejected input, 3 cluster unavailable or outcome unknown,
4 precondition failed (cas, del --if-index, a transaction whose compares did not hold).`;

const HELP: Record<string, string> = {
  backup: BACKUP_HELP,
  restore: RESTORE_HELP,
  main: `Usage: raftkv <command> [options]

Commands:
  get KEY                 print the value of KEY
  set KEY VALUE           set KEY to VALUE
  set --file PAIRS.json   set every pair of a JSON object atomically ("-" reads stdin)
  cas KEY VALUE --if-index N | --if-absent | --if-exists
                          set KEY only if the condition holds when the write is applied
  del KEY [--if-index N]  delete KEY (only at index N)
  ls PREFIX               list the keys under PREFIX (table, or --json lines)
  txn --file TXN.json     run a transaction ("-" reads stdin)
  cluster                 show every node: role, suffrage, term, match/commit/applied index, lag, last contact, health
  cluster remove ID       remove node ID from the cluster
  watch-cluster           the cluster table, refreshed until Ctrl-C
  reload                  re-read tokens and certificates on every member (SIGHUP on each node)
  backup --file F         save every key from one point in time (docs/backup.md)
  restore --file F --data-dir D --node-id ID   offline: a new one-node cluster from a backup

Run "raftkv <command> --help" for details.

${COMMON}`,
  get: `Usage: raftkv get KEY [--consistency linearizable|stale]

Prints the value of KEY (with --json: {"key","value","index"}). Exit 1 when KEY does not exist.
  --consistency MODE   linearizable (default): confirmed with the leader; stale: the answering node's local state

${COMMON}`,
  set: `Usage: raftkv set KEY VALUE
       raftkv set --file PAIRS.json

Sets KEY to VALUE, or every pair of a JSON object of strings in one atomic write ("-" reads stdin).
Prints OK and the log index once a majority has committed it. A write that may or may not have
applied (the leader died mid-request) exits 3 and says so; read the key to find out.
  --file PATH   JSON object {"key": "value", ...}

${COMMON}`,
  del: `Usage: raftkv del KEY [--if-index N]

Deletes KEY. Exit 1 when KEY does not exist. With --if-index N it deletes only when KEY exists and
was last written at index N; otherwise (also when KEY is absent) nothing changes and it exits 4.

${COMMON}`,
  cas: `Usage: raftkv cas KEY VALUE --if-index N     set only if KEY was last written at index N
       raftkv cas KEY VALUE --if-absent       create only (KEY must not exist)
       raftkv cas KEY VALUE --if-exists       replace only (KEY must exist)

A compare-and-set decided by the state machine when the write is applied (If-Match / If-None-Match).
Prints OK and the new index; when the condition does not hold nothing changes, it prints the key's
current index (or that it does not exist) and exits 4.

${COMMON}`,
  ls: `Usage: raftkv ls PREFIX [--keys-only] [--limit N] [--consistency linearizable|stale]

Lists the keys under PREFIX ("" for all) in UTF-8 byte order, page by page: a table KEY INDEX VALUE,
or with --json one {"key","value","index"} line per key. Every page shows the state at the first
page's index (docs/api.md). A listing that outlives the server's watch history stops with
CONTINUE_EXPIRED (exit 3; with --json after the lines already printed): run it again.
  --keys-only   leave the values out
  --limit N     stop after N keys (default: all)

${COMMON}`,
  txn: `Usage: raftkv txn --file TXN.json      ("-" reads stdin)

Runs a transaction {"compare":[...],"success":[...],"failure":[...]} (see docs/api.md) atomically
at one index. Prints {"succeeded","index","results"}; exit 0 when the compares held (the success
branch ran), 4 when they did not (the failure branch ran).

${COMMON}`,
  cluster: `Usage: raftkv cluster
       raftkv cluster remove ID

Without arguments prints a table of every node: ID (leader marked *), ROLE, SUFFRAGE, TERM,
MATCH (the leader's match index for it), COMMIT, APPLIED, LAG (entries behind the leader's log),
LAST CONTACT (since the leader last heard from it) and HEALTH. "cluster remove ID" removes a member;
exit 1 when there is no such member.

${COMMON}`,
  'watch-cluster': `Usage: raftkv watch-cluster [--interval 1s]

Shows the cluster table and refreshes it until Ctrl-C (with --json: one JSON line per refresh).
  --interval T   refresh period: 500ms, 2s, or plain seconds (default 1s; at least 100ms)

${COMMON}`,
  reload: `Usage: raftkv reload      (also: raftkv reload-tokens)

Asks every member of the cluster (as listed by /cluster) to re-read AUTH_TOKENS_FILE and its TLS
certificates, exactly what SIGHUP does on one node: a revoked token stops working everywhere, not
only on the node that was signalled. Needs an admin token (RAFTKV_TOKEN). Prints one line per node;
exit 3 when any member could not be reached or kept its old files (its message says why).

${COMMON}`,
};
HELP.delete = HELP.del;
HELP['reload-tokens'] = HELP.reload;

class UsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

function endpointsFrom(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  const raw = flag ?? env.RAFTKV_ENDPOINTS ?? DEFAULT_ENDPOINT;
  const list = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0)
    .map(withScheme);
  if (list.length === 0) throw new UsageError('no endpoints given');
  for (const e of list) if (parseEndpoint(e) === null) throw new UsageError(`not a valid endpoint: ${e}`);
  return list;
}

function intOption(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}`);
  return n;
}

function readPairs(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`${path} must hold a JSON object of "key": "value" pairs`);
  // No prototype: a key named __proto__ is kept like any other (as the API does).
  const pairs = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') throw new UsageError(`${path}: the value of "${k}" must be a string`);
    pairs[k] = v;
  }
  if (Object.keys(pairs).length === 0) throw new UsageError(`${path} holds no pairs`);
  return pairs;
}

function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not valid JSON`);
  }
}

function conditionFrom(values: { 'if-index'?: string; 'if-absent'?: boolean; 'if-exists'?: boolean }): WriteConditions | undefined {
  const given = [values['if-index'] !== undefined, values['if-absent'] === true, values['if-exists'] === true].filter(Boolean).length;
  if (given > 1) throw new UsageError('use one of --if-index, --if-absent, --if-exists');
  if (values['if-index'] !== undefined) {
    const n = Number(values['if-index']);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError('--if-index must be a positive integer (the index from get, ETag)');
    return { ifMatch: n };
  }
  if (values['if-absent']) return { ifNoneMatch: '*' };
  if (values['if-exists']) return { ifMatch: '*' };
  return undefined;
}

function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof PreconditionFailedError) return EXIT.preconditionFailed;
  if (err instanceof KeyNotFoundError || err instanceof NodeNotFoundError) return EXIT.notFound;
  if (err instanceof BadRequestError || err instanceof PayloadTooLargeError) return EXIT.usage;
  return EXIT.unavailable;
}

function argCount(cmd: string, args: string[], n: number): void {
  if (args.length !== n) throw new UsageError(`"${cmd}" takes ${n} argument${n === 1 ? '' : 's'}, got ${args.length} (see raftkv ${cmd} --help)`);
}

/** Refreshes the cluster view until SIGINT/SIGTERM; resolves with exit code 0. */
async function watchCluster(client: RaftKvClient, intervalMs: number, isJson: boolean, io: Io, isTty: boolean): Promise<number> {
  let isStopped = false;
  let wake: (() => void) | null = null;
  const stop = () => {
    isStopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (!isStopped) {
      const at = new Date().toISOString();
      let info: ClusterInfo | null = null;
      let failure: string | null = null;
      try {
        info = await client.cluster();
      } catch (err) {
        failure = err instanceof Error ? err.message : String(err);
      }
      if (isStopped) break;
      if (isJson) io.out(JSON.stringify(info ? { at, cluster: info } : { at, error: failure }));
      else {
        const body = info ? renderCluster(info) : `cluster unavailable: ${failure}`;
        io.out(`${isTty ? '\x1b[2J\x1b[H' : ''}raftkv watch-cluster — ${at} — every ${intervalMs}ms, Ctrl-C to stop\n${body}\n`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return EXIT.ok;
}

const OPTIONS = {
  endpoints: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  file: { type: 'string', short: 'f' },
  consistency: { type: 'string' },
  interval: { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  'if-index': { type: 'string' },
  'if-absent': { type: 'boolean' },
  'if-exists': { type: 'boolean' },
  'keys-only': { type: 'boolean' },
  limit: { type: 'string' },
} as const;

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Calls POST /admin/reload on every member listed by /cluster (a reload is per node: SIGHUP on one
 * node leaves the others on their old tokens); exit 0 only when every member reloaded.
 */
async function reloadEverywhere(client: RaftKvClient, scheme: string, token: string | undefined, timeoutMs: number, isJson: boolean, io: Io): Promise<number> {
  const info = await client.cluster();
  const results = await Promise.all(
    info.nodes.map(async (n) => {
      try {
        const res = await request(`${scheme}//${n.apiAddr}/admin/reload`, {
          method: 'POST',
          headers: token ? { authorization: `Bearer ${token}` } : {},
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        const text = await res.body.text();
        if (res.statusCode === 200) return { id: n.id, ok: true, message: 'reloaded' };
        let message = text.slice(0, 300);
        try {
          message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
        } catch {
          // not JSON: keep the text
        }
        return { id: n.id, ok: false, message: `${res.statusCode}: ${message}` };
      } catch (err) {
        return { id: n.id, ok: false, message: `unreachable at ${n.apiAddr}: ${(err as Error).message}` };
      }
    }),
  );
  const isOk = results.every((r) => r.ok);
  if (isJson) io.out(JSON.stringify({ ok: isOk, nodes: results }));
  else for (const r of results) io.out(`${r.id}\t${r.ok ? 'reloaded' : `FAILED ${r.message}`}`);
  return isOk ? EXIT.ok : EXIT.unavailable;
}

/** Runs the command line `argv` (without node and script); returns the exit code. */
export async function run(argv: string[], io: Io, isTty = false): Promise<number> {
  let isJson = argv.includes('--json');
  if (argv[0] === 'backup' || argv[0] === 'restore') return runBackupCommand(argv, io); // src/cli/backup.ts parses its own options
  try {
    const { values, positionals } = parseCommandLine(argv);
    isJson = values.json === true;
    const [cmd, ...args] = positionals;
    if (cmd === undefined || cmd === 'help') {
      const topic = cmd === 'help' ? args[0] : undefined;
      if (topic !== undefined && HELP[topic] === undefined) throw new UsageError(`unknown command: ${topic}`);
      io.out(HELP[topic ?? 'main']);
      return values.help || cmd === 'help' ? EXIT.ok : EXIT.usage;
    }
    if (HELP[cmd] === undefined) throw new UsageError(`unknown command: ${cmd} (see raftkv --help)`);
    if (values.help) {
      io.out(HELP[cmd]);
      return EXIT.ok;
    }
    if (values.file !== undefined && cmd !== 'set' && cmd !== 'txn') throw new UsageError('--file only applies to "set" and "txn"');
    if (values.consistency !== undefined && cmd !== 'get' && cmd !== 'ls') throw new UsageError('--consistency only applies to "get" and "ls"');
    if ((values['if-absent'] !== undefined || values['if-exists'] !== undefined) && cmd !== 'cas') throw new UsageError('--if-absent and --if-exists only apply to "cas"');
    if (values['if-index'] !== undefined && cmd !== 'cas' && cmd !== 'del' && cmd !== 'delete') throw new UsageError('--if-index only applies to "cas" and "del"');
    if ((values['keys-only'] !== undefined || values.limit !== undefined) && cmd !== 'ls') throw new UsageError('--keys-only and --limit only apply to "ls"');
    if (values.interval !== undefined && cmd !== 'watch-cluster') throw new UsageError('--interval only applies to "watch-cluster"');
    const consistency = values.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'stale') throw new UsageError('--consistency must be linearizable or stale');
    const intervalMs = values.interval === undefined ? 1000 : parseInterval(values.interval);
    if (intervalMs === null) throw new UsageError('--interval must look like 500ms, 2s or 1 (between 100ms and 1h)');
    const token = io.env.RAFTKV_TOKEN;
    const client = new RaftKvClient({
      endpoints: endpointsFrom(values.endpoints, io.env),
      timeoutMs: intOption('timeout', values.timeout, 1),
      // A watch refreshes anyway, so it waits through at most one retry unless told otherwise.
      retries: intOption('retries', values.retries, 0) ?? (cmd === 'watch-cluster' ? 1 : undefined),
      ...(token ? { token } : {}),
    });

    switch (cmd) {
      case 'get': {
        argCount(cmd, args, 1);
        const r = await client.get(args[0], { consistency });
        io.out(isJson ? JSON.stringify(r) : r.value);
        return EXIT.ok;
      }
      case 'set': {
        let pairs: Record<string, string>;
        if (values.file !== undefined) {
          argCount('set --file', args, 0);
          pairs = readPairs(values.file);
        } else {
          argCount(cmd, args, 2);
          pairs = { [args[0]]: args[1] };
        }
        const r = await client.setMany(pairs);
        const n = Object.keys(pairs).length;
        io.out(isJson ? JSON.stringify({ ok: true, keys: n, index: r.index, leader: r.leaderId }) : `OK${n > 1 ? ` (${n} keys)` : ''}${r.index !== null ? ` index=${r.index}` : ''}`);
        return EXIT.ok;
      }
      case 'del':
      case 'delete': {
        argCount(cmd, args, 1);
        const cond = conditionFrom(values);
        try {
          const r = await client.delete(args[0], cond as { ifMatch?: number } | undefined);
          io.out(isJson ? JSON.stringify({ ok: true, deleted: r.deleted, index: r.index }) : `deleted ${r.deleted}`);
        } catch (err) {
          if (!(err instanceof PreconditionFailedError)) throw err;
          io.out(isJson ? JSON.stringify({ ok: false, current: err.current }) : err.current ? `not deleted: ${args[0]} is at index ${err.current.index}` : `not deleted: ${args[0]} does not exist`);
          return EXIT.preconditionFailed;
        }
        return EXIT.ok;
      }
      case 'cas': {
        argCount(cmd, args, 2);
        const cond = conditionFrom(values);
        if (!cond) throw new UsageError('cas needs --if-index N, --if-absent or --if-exists');
        try {
          const r = await client.set(args[0], args[1], cond);
          io.out(isJson ? JSON.stringify({ ok: true, index: r.index, leader: r.leaderId }) : `OK${r.index !== null ? ` index=${r.index}` : ''}`);
          return EXIT.ok;
        } catch (err) {
          if (!(err instanceof PreconditionFailedError)) throw err;
          io.out(isJson ? JSON.stringify({ ok: false, current: err.current }) : err.current ? `not set: ${args[0]} is at index ${err.current.index}` : `not set: ${args[0]} does not exist`);
          return EXIT.preconditionFailed;
        }
      }
      case 'ls': {
        argCount(cmd, args, 1);
        const max = intOption('limit', values.limit, 1);
        const rows: ListItem[] = [];
        let n = 0;
        for await (const item of client.list(args[0], { keysOnly: values['keys-only'] === true, consistency, pageSize: max !== undefined ? Math.min(max, 1000) : 1000 })) {
          if (isJson) io.out(JSON.stringify(item));
          else rows.push(item);
          if (max !== undefined && ++n >= max) break;
        }
        if (!isJson) {
          const width = Math.min(60, Math.max(3, ...rows.map((r) => r.key.length)));
          io.out(`${'KEY'.padEnd(width)}  ${'INDEX'.padStart(8)}${values['keys-only'] ? '' : '  VALUE'}`);
          for (const r of rows) io.out(`${r.key.padEnd(width)}  ${String(r.index).padStart(8)}${values['keys-only'] ? '' : `  ${r.value ?? ''}`}`);
        }
        return EXIT.ok;
      }
      case 'txn': {
        argCount(cmd, args, 0);
        if (values.file === undefined) throw new UsageError('txn needs --file TXN.json ("-" reads stdin)');
        const body = readJsonFile(values.file);
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new UsageError(`${values.file} must hold a JSON object {"compare","success","failure"}`);
        const r = await client.txn(body as TxnRequest);
        io.out(JSON.stringify(r, null, isJson ? undefined : 2));
        return r.succeeded ? EXIT.ok : EXIT.preconditionFailed;
      }
      case 'cluster': {
        if (args.length === 0) {
          const info = await client.cluster();
          io.out(isJson ? JSON.stringify(info, null, 2) : renderCluster(info));
          return EXIT.ok;
        }
        if (args[0] !== 'remove') throw new UsageError(`unknown cluster subcommand: ${args[0]} (see raftkv cluster --help)`);
        argCount('cluster remove', args.slice(1), 1);
        const r = await client.removeNode(args[1]);
        io.out(isJson ? JSON.stringify({ ok: true, ...r }) : `removed ${r.removed}; members now: ${r.nodes.map((n) => `${n.id} (${n.suffrage})`).join(', ')}`);
        return EXIT.ok;
      }
      case 'watch-cluster': {
        argCount(cmd, args, 0);
        return await watchCluster(client, intervalMs, isJson, io, isTty);
      }
      case 'reload':
      case 'reload-tokens': {
        argCount(cmd, args, 0);
        const scheme = new URL(endpointsFrom(values.endpoints, io.env)[0]).protocol;
        return await reloadEverywhere(client, scheme, token, intOption('timeout', values.timeout, 1) ?? 10_000, isJson, io);
      }
      default:
        throw new UsageError(`unknown command: ${cmd}`);
    }
  } catch (err) {
    const code = exitCodeFor(err);
    const errCode = err instanceof RaftKvClientError ? err.code : code === EXIT.usage ? 'USAGE' : 'ERROR';
    const message = err instanceof Error ? err.message : String(err);
    if (isJson) io.err(JSON.stringify({ error: { code: errCode, message } }));
    else io.err(`raftkv: ${message}${code === EXIT.usage && !(err instanceof RaftKvClientError) ? '\n(run "raftkv --help" for usage)' : ''}`);
    return code;
  }
}

/** True when this file is the process's entry point (also through the npm bin symlink). */
function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const io: Io = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`), env: process.env };
  void run(process.argv.slice(2), io, process.stdout.isTTY === true).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`raftkv: internal error: ${String(err)}\n`);
      process.exitCode = EXIT.unavailable;
    },
  );
}
