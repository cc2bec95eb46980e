/**
 * The JSON behind `GET /cluster`: this node's own view, and with `?view=all` a whole-cluster view
 * that asks every member for its own `/cluster` so each row carries that node's role, term, commit
 * and applied index, merged with the leader's replication progress (match index, lag, last contact).
 * Used by the API routes; read by the status page, the client library and `raftkv cluster`.
 */
import { request, type Dispatcher } from 'undici';
import type { RaftNode } from '../raft/node/node.js';
import type { FullClusterView, FullNodeView, LocalClusterView, LocalNodeView, NodeHealth } from './cluster-types.js';

export type { FullClusterView, FullNodeView, LocalClusterView, LocalNodeView, NodeHealth } from './cluster-types.js';

/** How long the whole-cluster view waits for one member's answer before calling it unreachable. */
export const PROBE_TIMEOUT_MS = 800;
/** A follower the leader has not heard from for this long is reported as `no-contact`. */
export const NO_CONTACT_MS = 2000;
/** A follower this many entries behind the leader's last index is reported as `lagging`. */
export const LAGGING_ENTRIES = 1000;

/** Builds this node's own view; `tickMs` turns ticks since contact into milliseconds when known. */
export function localClusterView(node: RaftNode, nodeId: string, tickMs: number | undefined): LocalClusterView {
  const st = node.status();
  const leaderApi = st.leaderId ? node.memberApiAddr(st.leaderId) : null;
  const peers = new Map(st.peers.map((p) => [p.id, p]));
  const isLeader = st.role === 'leader';
  const ident = node.identity();
  return {
    id: nodeId,
    clusterId: ident.clusterId,
    incarnation: ident.incarnation,
    role: st.role,
    leader: st.leaderId ? { id: st.leaderId, apiAddr: leaderApi } : null,
    term: st.term,
    commitIndex: st.commitIndex,
    appliedIndex: node.appliedIndex(),
    lastIndex: st.lastIndex,
    snapshotIndex: st.snapshotIndex,
    nodes: st.config.members.map((m) => {
      const p = peers.get(m.id);
      let role: string | null = null;
      if (m.id === nodeId) role = st.role;
      else if (m.id === st.leaderId) role = 'leader';
      else if (isLeader) role = m.suffrage === 'learner' ? 'learner' : 'follower';
      const view: LocalNodeView = { id: m.id, raftAddr: m.raftAddr, apiAddr: m.apiAddr, suffrage: m.suffrage, role, incarnation: m.incarnation ?? '' };
      if (p) {
        view.matchIndex = p.matchIndex;
        view.ticksSinceContact = p.ticksSinceContact;
        view.lag = Math.max(0, st.lastIndex - p.matchIndex);
        if (tickMs !== undefined) view.lastContactMs = p.ticksSinceContact * tickMs;
      } else if (isLeader && m.id === nodeId) {
        view.matchIndex = st.lastIndex;
        view.lag = 0;
        view.lastContactMs = 0;
      }
      return view;
    }),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Validates another member's `/cluster` answer (it is `unknown` until checked). */
export function parseLocalView(body: unknown): LocalClusterView | null {
  if (!isRecord(body) || typeof body.id !== 'string' || typeof body.role !== 'string' || !Array.isArray(body.nodes)) return null;
  const term = num(body.term);
  const commitIndex = num(body.commitIndex);
  const appliedIndex = num(body.appliedIndex);
  const lastIndex = num(body.lastIndex);
  if (term === null || commitIndex === null || appliedIndex === null || lastIndex === null) return null;
  let leader: LocalClusterView['leader'] = null;
  if (isRecord(body.leader) && typeof body.leader.id === 'string') leader = { id: body.leader.id, apiAddr: typeof body.leader.apiAddr === 'string' ? body.leader.apiAddr : null };
  const nodes: LocalNodeView[] = [];
  for (const n of body.nodes) {
    if (!isRecord(n) || typeof n.id !== 'string') return null;
    const v: LocalNodeView = {
      id: n.id,
      raftAddr: typeof n.raftAddr === 'string' ? n.raftAddr : '',
      apiAddr: typeof n.apiAddr === 'string' ? n.apiAddr : '',
      suffrage: typeof n.suffrage === 'string' ? n.suffrage : 'unknown',
      role: typeof n.role === 'string' ? n.role : null,
    };
    const matchIndex = num(n.matchIndex);
    const ticks = num(n.ticksSinceContact);
    const lag = num(n.lag);
    const lastContactMs = num(n.lastContactMs);
    if (matchIndex !== null) v.matchIndex = matchIndex;
    if (ticks !== null) v.ticksSinceContact = ticks;
    if (lag !== null) v.lag = lag;
    if (lastContactMs !== null) v.lastContactMs = lastContactMs;
    if (typeof n.incarnation === 'string') v.incarnation = n.incarnation;
    nodes.push(v);
  }
  // Members of an older version may not report snapshotIndex; 0 means none known.
  const view: LocalClusterView = { id: body.id, role: body.role, leader, term, commitIndex, appliedIndex, lastIndex, snapshotIndex: num(body.snapshotIndex) ?? 0, nodes };
  if (typeof body.clusterId === 'string' || body.clusterId === null) view.clusterId = body.clusterId;
  if (typeof body.incarnation === 'string') view.incarnation = body.incarnation;
  return view;
}

/** How this node reaches other members' APIs: HTTPS and its trust when TLS is on, and the caller's token. */
export interface MemberReach {
  scheme: 'http' | 'https';
  dispatcher?: Dispatcher;
  authorization?: string;
  /** Extra headers, e.g. the certificate subject of the caller this member vouches for. */
  headers?: Record<string, string>;
}

/** Fetches one member's own `/cluster` with a short deadline. */
async function probe(apiAddr: string, reach: MemberReach): Promise<LocalClusterView | string> {
  try {
    const res = await request(`${reach.scheme}://${apiAddr}/cluster`, {
      method: 'GET',
      dispatcher: reach.dispatcher,
      headers: { ...(reach.headers ?? {}), ...(reach.authorization ? { authorization: reach.authorization } : {}) },
      headersTimeout: PROBE_TIMEOUT_MS,
      bodyTimeout: PROBE_TIMEOUT_MS,
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return `HTTP ${res.statusCode}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return 'answer is not JSON';
    }
    return parseLocalView(parsed) ?? 'answer is not a /cluster view';
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown } };
    const code = typeof e.cause?.code === 'string' ? e.cause.code : typeof e.code === 'string' ? e.code : null;
    return code ?? (typeof e.message === 'string' ? e.message : 'request failed');
  }
}

function healthOf(n: FullNodeView, leaderKnown: boolean): NodeHealth {
  if (!n.reachable) return 'unreachable';
  if (n.role === 'leader') return 'ok';
  if (!leaderKnown || n.lastContactMs === undefined) return 'unknown';
  if (n.lastContactMs > NO_CONTACT_MS) return 'no-contact';
  if ((n.lag ?? 0) > LAGGING_ENTRIES) return 'lagging';
  return 'ok';
}

/**
 * Builds the whole-cluster view: asks every other member for its `/cluster` in parallel, takes each
 * row's role, term and indexes from that member itself, and match index, lag and last contact from
 * the leader's answer (this node's own when it leads).
 */
export async function fullClusterView(node: RaftNode, nodeId: string, tickMs: number | undefined, reach: MemberReach = { scheme: 'http' }): Promise<FullClusterView> {
  const local = localClusterView(node, nodeId, tickMs);
  const reports = new Map<string, LocalClusterView | string>();
  reports.set(nodeId, local);
  await Promise.all(
    local.nodes
      .filter((m) => m.id !== nodeId)
      .map(async (m) => {
        reports.set(m.id, m.apiAddr ? await probe(m.apiAddr, reach) : 'no API address');
      }),
  );
  // The freshest leader: the reachable member that says it leads with the highest term.
  let leaderReport: LocalClusterView | null = null;
  for (const r of reports.values()) {
    if (typeof r !== 'string' && r.role === 'leader' && (!leaderReport || r.term > leaderReport.term)) leaderReport = r;
  }
  const progress = new Map((leaderReport?.nodes ?? []).map((n) => [n.id, n]));
  const nodes = local.nodes.map((m): FullNodeView => {
    const own = reports.get(m.id);
    const fromLeader = progress.get(m.id);
    const row: FullNodeView = {
      id: m.id,
      raftAddr: m.raftAddr,
      apiAddr: m.apiAddr,
      suffrage: m.suffrage,
      role: typeof own === 'string' || own === undefined ? (fromLeader?.role ?? null) : own.role,
      reachable: typeof own !== 'string' && own !== undefined,
      term: typeof own === 'object' ? own.term : null,
      commitIndex: typeof own === 'object' ? own.commitIndex : null,
      appliedIndex: typeof own === 'object' ? own.appliedIndex : null,
      lastIndex: typeof own === 'object' ? own.lastIndex : null,
      ownClusterId: typeof own === 'object' ? (own.clusterId ?? null) : null,
      ownIncarnation: typeof own === 'object' ? (own.incarnation ?? null) : null,
      health: 'unknown',
    };
    if (m.incarnation !== undefined) row.incarnation = m.incarnation;
    if (typeof own === 'string') row.error = own;
    if (fromLeader?.matchIndex !== undefined) row.matchIndex = fromLeader.matchIndex;
    if (fromLeader?.ticksSinceContact !== undefined) row.ticksSinceContact = fromLeader.ticksSinceContact;
    if (fromLeader?.lag !== undefined) row.lag = fromLeader.lag;
    if (fromLeader?.lastContactMs !== undefined) row.lastContactMs = fromLeader.lastContactMs;
    row.health = healthOf(row, leaderReport !== null);
    return row;
  });
  const leader = leaderReport ? { id: leaderReport.id, apiAddr: nodes.find((n) => n.id === leaderReport.id)?.apiAddr ?? null } : local.leader;
  return { ...local, leader, view: 'all', observedAt: new Date().toISOString(), nodes };
}
