/**
 * `raftkv lease grant|keepalive|revoke|ls|get` and `raftkv lock NAME -- command...`, called from
 * the command's main.ts. The lock is the recipe of docs/leases.md ("Client and CLI"): a lease kept
 * alive by this process, the key `locks/NAME` created only if absent and attached to it, a watch on
 * the key while someone else holds it, the command run while the lease lives, the lease revoked at
 * the end (which deletes the key in the same entry).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants, hostname } from 'node:os';
import {
  AbortedError,
  KeyNotFoundError,
  LeaseLostError,
  OutcomeUnknownError,
  PreconditionFailedError,
  WatchCompactedError,
  type LeaseHandle,
  type RaftKvClient,
} from '../client/index.js';
import { UsageError } from './usage.js';

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Exit codes of `raftkv lock` besides the command's own (the others are main.ts's EXIT). */
export const LOCK_EXIT = { maxWait: 4, leaseLost: 6, notFound: 127, notExecutable: 126 } as const;

/** Default TTL of the lease `raftkv lock` holds (ms). */
export const DEFAULT_LOCK_TTL_MS = 10_000;

export const LEASE_HELP_TEXT = `Usage: raftkv lease grant TTL_MS        grant a lease; prints its id (with --json: {"id","ttlMs","index"})
       raftkv lease keepalive ID [--once] renew ID every TTL/3 until Ctrl-C, one line per renewal
       raftkv lease revoke ID             revoke ID: it and its attached keys are deleted at once
       raftkv lease ls                    list the leases: ID, TTL and the leader's remaining time
       raftkv lease get ID                one lease with its attached keys

Attach keys with "raftkv set KEY VALUE --lease ID" (or --file PAIRS.json --lease ID): they are
deleted when the lease expires (no keepalive for TTL_MS) or is revoked (docs/leases.md).
TTL_MS is from 2 × the servers' longest election timeout (4000 with the defaults) to 86400000.
"keepalive" exits 1 when the lease is gone (LEASE_NOT_FOUND), 3 when no renewal was acknowledged
within TTL_MS (the lease may have expired); Ctrl-C exits 0 and leaves the lease to expire.
"revoke" and "get" exit 1 when there is no such lease.`;

export const LOCK_HELP_TEXT = `Usage: raftkv lock NAME [--ttl MS] [--max-wait MS] -- COMMAND [ARGS...]

Runs COMMAND while holding the lock NAME, cluster-wide: at most one "raftkv lock NAME" runs its
command at a time. It grants a lease of --ttl MS (default ${DEFAULT_LOCK_TTL_MS}), creates the key
locks/NAME only if absent (If-None-Match: *) attached to the lease, and while another holder has the
key waits for its delete through a watch. The lease is kept alive while COMMAND runs and revoked
when it exits (the key goes with it); if the holder dies, the key goes when its lease expires.
COMMAND gets RAFTKV_LOCK_KEY, RAFTKV_LEASE and RAFTKV_LOCK_INDEX (the index that created the key:
larger for each later holder, a fencing token to hand to whatever the lock protects).
If the lease is lost while COMMAND runs (no keepalive acknowledged within the TTL, or the lease
was revoked or expired), COMMAND and every process it started are killed (SIGKILL) and the exit
code is 6. COMMAND runs in its own process group: SIGINT (Ctrl-C), SIGTERM and SIGHUP sent to raftkv
are passed on to that group; COMMAND can read piped stdin but not an interactive terminal.
  --ttl MS        the lease's TTL: a dead holder blocks others up to about this long (default ${DEFAULT_LOCK_TTL_MS})
  --max-wait MS   give up (exit 4) when the lock is still held after MS of waiting (default: wait)
Exit: COMMAND's code (128 + N when killed by signal N); 2 usage; 3 cluster unavailable; 4 --max-wait
passed; 6 the lease was lost (the command was killed); 126/127 COMMAND not executable / not found.`;

/** A lease id given on the command line, checked before any request. */
function leaseIdArg(v: string | undefined): string {
  if (v === undefined || !/^l-[1-9][0-9]{0,15}$/.test(v)) throw new UsageError(`not a lease id: ${String(v).slice(0, 64)} (ids look like l-42, from "raftkv lease grant")`);
  return v;
}

/** A TTL given on the command line (the servers check their own bounds: INVALID_TTL). */
export function ttlArg(name: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer of milliseconds, e.g. 10000`);
  return n;
}

/** Runs `lease SUBCOMMAND ...`; returns the exit code (errors are thrown to main.ts's mapping). */
export async function leaseCommand(client: RaftKvClient, args: string[], opts: { isJson: boolean; isOnce: boolean }, io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const count = (n: number): void => {
    if (rest.length !== n) throw new UsageError(`"lease ${sub}" takes ${n} argument${n === 1 ? '' : 's'}, got ${rest.length} (see raftkv lease --help)`);
  };
  if (opts.isOnce && sub !== 'keepalive') throw new UsageError('--once only applies to "lease keepalive"');
  switch (sub) {
    case 'grant': {
      count(1);
      const g = await client.grantLease(ttlArg('TTL_MS', rest[0]));
      io.out(opts.isJson ? JSON.stringify(g) : g.id);
      return 0;
    }
    case 'keepalive': {
      count(1);
      const id = leaseIdArg(rest[0]);
      const line = (r: { id: string; ttlMs: number; remainingMs: number | null }): string =>
        opts.isJson ? JSON.stringify(r) : `${r.id} kept alive: ttl ${r.ttlMs} ms${r.remainingMs === null ? '' : `, remaining ${r.remainingMs} ms`}`;
      if (opts.isOnce) {
        io.out(line(await client.keepAliveLease(id)));
        return 0;
      }
      return await keepAliveUntilStopped(client, id, line, io);
    }
    case 'revoke': {
      count(1);
      const r = await client.revokeLease(leaseIdArg(rest[0]));
      if (opts.isJson) io.out(JSON.stringify(r));
      else io.out(`revoked ${r.id}${r.deleted === null ? '' : r.deleted.length === 0 ? ' (no keys)' : ` (deleted ${r.deleted.length} key${r.deleted.length === 1 ? '' : 's'}: ${r.deleted.join(', ')})`}`);
      return 0;
    }
    case 'ls':
    case 'list': {
      count(0);
      const l = await client.listLeases();
      if (opts.isJson) {
        for (const x of l.leases) io.out(JSON.stringify(x));
        return 0;
      }
      const width = Math.max(2, ...l.leases.map((x) => x.id.length));
      io.out(`${'ID'.padEnd(width)}  ${'TTL_MS'.padStart(8)}  ${'REMAINING_MS'.padStart(12)}`);
      for (const x of l.leases) io.out(`${x.id.padEnd(width)}  ${String(x.ttlMs).padStart(8)}  ${(x.remainingMs === null ? '-' : String(x.remainingMs)).padStart(12)}`);
      return 0;
    }
    case 'get':
    case 'show': {
      count(1);
      const x = await client.getLease(leaseIdArg(rest[0]), { keys: true });
      if (opts.isJson) io.out(JSON.stringify(x));
      else {
        io.out(`${x.id}: ttl ${x.ttlMs} ms${x.grantedIndex === undefined ? '' : `, granted at index ${x.grantedIndex}`}${x.remainingMs === null ? '' : `, remaining ${x.remainingMs} ms`}`);
        for (const k of x.keys ?? []) io.out(`  ${k}`);
      }
      return 0;
    }
    case undefined:
      throw new UsageError('lease needs a subcommand: grant, keepalive, revoke, ls or get (see raftkv lease --help)');
    default:
      throw new UsageError(`unknown lease subcommand: ${sub} (see raftkv lease --help)`);
  }
}

/** Keeps lease `id` alive until SIGINT/SIGTERM (exit 0) or its loss (LeaseLostError, thrown to the exit-code mapping). */
async function keepAliveUntilStopped(client: RaftKvClient, id: string, line: (r: { id: string; ttlMs: number; remainingMs: number | null }) => string, io: Io): Promise<number> {
  const handle = await client.keepLeaseAlive(id, { onKeepAlive: (r) => io.out(line(r)) });
  let stop: () => void = () => undefined;
  const stopped = new Promise<'stopped'>((resolve) => {
    stop = () => resolve('stopped');
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const end = await Promise.race([handle.lost, stopped]);
    if (end === 'stopped') return 0;
    throw end;
  } finally {
    handle.close();
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Sends `sig` to the child's process group (it leads one: spawned detached), or to the child alone if that fails. */
function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // The group is gone (or was never made): the child itself, if still there.
    child.kill(sig);
  }
}

/** The exit code of a child that ended with `code` or `signal`, as a shell reports it. */
function childExitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal === null ? undefined : (osConstants.signals as Record<string, number | undefined>)[signal];
  return 128 + (n ?? 0);
}

/**
 * Runs `raftkv lock NAME -- command...`: returns the command's exit code, LOCK_EXIT codes of its own,
 * or throws (usage, cluster unavailable) to main.ts's mapping. The lease is revoked on every way out.
 */
export async function lockCommand(client: RaftKvClient, name: string, command: string[], opts: { ttlMs: number; maxWaitMs: number | undefined }, io: Io): Promise<number> {
  if (name.length === 0) throw new UsageError('lock needs a NAME');
  if (command.length === 0) throw new UsageError('lock needs a command after "--": raftkv lock NAME -- COMMAND [ARGS...]');
  const key = `locks/${name}`;
  // A signal before the command runs ends the wait; after, it is passed on to the command.
  const stopWaiting = new AbortController();
  let child: ChildProcess | null = null;
  let gotSignal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    gotSignal ??= sig;
    if (child !== null && child.exitCode === null && child.signalCode === null) killGroup(child, sig);
    else stopWaiting.abort();
  };
  for (const s of FORWARDED) process.on(s, onSignal);
  let handle: LeaseHandle | null = null;
  try {
    handle = await client.lease(opts.ttlMs);
    const lease = handle;
    const acquired = await acquire(client, lease, key, opts.maxWaitMs, stopWaiting.signal, io);
    if (acquired === 'stopped') {
      io.err(`raftkv: lock ${key}: stopped by ${gotSignal ?? 'a signal'} while waiting`);
      return childExitCode(null, gotSignal ?? 'SIGINT');
    }
    if (acquired === 'max-wait') {
      io.err(`raftkv: lock ${key} is still held after --max-wait ${opts.maxWaitMs} ms; giving up`);
      return LOCK_EXIT.maxWait;
    }
    if (acquired instanceof LeaseLostError) {
      io.err(`raftkv: lock ${key}: ${acquired.message}; not running the command`);
      return LOCK_EXIT.leaseLost;
    }
    const env = { ...io.env, RAFTKV_LOCK_KEY: key, RAFTKV_LEASE: lease.id, RAFTKV_LOCK_INDEX: String(acquired) };
    // Its own process group: a lost lock kills the command and everything it started, and a Ctrl-C
    // (which the terminal sends to raftkv's group only) reaches it once, passed on by onSignal.
    const running = spawn(command[0], command.slice(1), { stdio: 'inherit', env, detached: true });
    child = running;
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error: Error | null }>((resolve) => {
      running.once('error', (error) => resolve({ code: null, signal: null, error }));
      running.once('exit', (code, signal) => resolve({ code, signal, error: null }));
    });
    const first = await Promise.race([ended, lease.lost]);
    if (first instanceof LeaseLostError) {
      killGroup(running, 'SIGKILL');
      await ended;
      io.err(`raftkv: lock ${key} lost while the command ran: ${first.message}; the command (process group ${running.pid ?? '?'}) was killed`);
      return LOCK_EXIT.leaseLost;
    }
    if (first.error !== null) {
      const code = (first.error as NodeJS.ErrnoException).code;
      io.err(`raftkv: lock ${key}: cannot run ${command[0]}: ${first.error.message}`);
      return code === 'ENOENT' ? LOCK_EXIT.notFound : LOCK_EXIT.notExecutable;
    }
    return childExitCode(first.code, first.signal);
  } finally {
    for (const s of FORWARDED) process.removeListener(s, onSignal);
    if (handle !== null) {
      try {
        await handle.revoke();
      } catch (err) {
        io.err(`raftkv: lock ${key}: could not revoke lease ${handle.id} (${(err as Error).message}); the lock is released when it expires, within about ${opts.ttlMs} ms`);
      }
    }
  }
}

/**
 * Takes `key` for `lease`: the create index once held, 'stopped' / 'max-wait' when the wait ended,
 * or the LeaseLostError when the lease was lost meanwhile.
 */
async function acquire(client: RaftKvClient, lease: LeaseHandle, key: string, maxWaitMs: number | undefined, stop: AbortSignal, io: Io): Promise<number | 'stopped' | 'max-wait' | LeaseLostError> {
  const value = JSON.stringify({ holder: `${hostname()}:${process.pid}`, lease: lease.id });
  const giveUpAt = maxWaitMs === undefined ? null : performance.now() + maxWaitMs;
  let isToldWaiting = false;
  for (;;) {
    if (stop.aborted) return 'stopped';
    if (!lease.isAlive) return await lease.lost; // nothing closes the lease while it waits: it was lost
    let heldAt: number | null = null;
    try {
      const r = await client.set(key, value, { ifNoneMatch: '*', lease: lease.id });
      if (r.index === null) throw new OutcomeUnknownError('the create answered without an index', new Error('no X-Raft-Index'));
      return r.index;
    } catch (err) {
      if (err instanceof OutcomeUnknownError) {
        // Whether our create applied: the key holds our value (lease ids are never reused) or not.
        const mine = await ownIndex(client, key, value);
        if (mine !== null) return mine;
        continue;
      }
      if (!(err instanceof PreconditionFailedError)) throw err;
      heldAt = err.current?.index ?? null;
    }
    if (giveUpAt !== null && performance.now() >= giveUpAt) return 'max-wait';
    if (!isToldWaiting) {
      isToldWaiting = true;
      io.err(`raftkv: ${key} is held${await holderOf(client, key)}; waiting`);
    }
    const why = await waitForDelete(client, key, heldAt, lease, stop, giveUpAt);
    if (why !== 'deleted') return why === 'lost' ? (await lease.lost) : why;
  }
}

/** The index of `key` if it holds `value` (our own create applied), else null. */
async function ownIndex(client: RaftKvClient, key: string, value: string): Promise<number | null> {
  try {
    const g = await client.get(key);
    return g.value === value ? g.index : null;
  } catch (err) {
    if (err instanceof KeyNotFoundError) return null;
    throw err;
  }
}

/** " (by host:pid, lease l-9)" from the holder's value, best effort. */
async function holderOf(client: RaftKvClient, key: string): Promise<string> {
  try {
    const v = JSON.parse((await client.get(key)).value) as { holder?: unknown; lease?: unknown };
    return typeof v.holder === 'string' && typeof v.lease === 'string' ? ` (by ${v.holder}, lease ${v.lease})` : '';
  } catch {
    return '';
  }
}

/**
 * Waits until `key` (held since index `heldAt`) is deleted, through a watch from heldAt + 1 so a
 * delete between the failed create and this call is not missed. 'deleted' also when the history no
 * longer reaches back (COMPACTED): the caller just tries the create again.
 */
async function waitForDelete(client: RaftKvClient, key: string, heldAt: number | null, lease: LeaseHandle, stop: AbortSignal, giveUpAt: number | null): Promise<'deleted' | 'stopped' | 'max-wait' | 'lost'> {
  const ac = new AbortController();
  const signals = [stop, lease.signal, ac.signal];
  const any = AbortSignal.any(signals);
  const timer = giveUpAt === null ? null : setTimeout(() => ac.abort(), Math.max(0, giveUpAt - performance.now()));
  try {
    for await (const m of client.watch(key, { ...(heldAt === null ? {} : { from: heldAt + 1 }), signal: any, retries: Infinity })) {
      if (m.type === 'change' && m.events.some((e) => e.key === key && e.type === 'delete')) return 'deleted';
    }
  } catch (err) {
    if (err instanceof WatchCompactedError) return 'deleted';
    if (!(err instanceof AbortedError)) throw err;
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
  if (stop.aborted) return 'stopped';
  if (lease.signal.aborted) return 'lost';
  return 'max-wait';
}
