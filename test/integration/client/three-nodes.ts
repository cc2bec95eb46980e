/** Starts a real three-node in-memory cluster on loopback for the client, CLI and status page tests. */
import { KeyNotFoundError, type RaftKvClient } from '../../../src/index.js';
import { basePort, clusterView, nodeEnv as loopbackEnv, startNode, stopNode, waitFor, waitForLeader, type NodeProc } from '../../support/procs.js';

export interface ThreeNodes {
  nodes: NodeProc[];
  port: number;
  /** `http://127.0.0.1:PORT` of every node, in order. */
  endpoints: string[];
  stop(): Promise<void>;
}

/** Env for node `i` (1-based) of a cluster whose ports start at `port`. */
export function nodeEnv(port: number, i: number, joinVia: number | null, extra?: Record<string, string>): Record<string, string> {
  return loopbackEnv(port, i, { join: joinVia !== null ? `127.0.0.1:${port + joinVia}` : null, extra });
}

/** Boots app1, joins app2 then app3 through it, and waits for three voters (`extra`: more env for every node). */
export async function startThreeNodes(extra?: Record<string, string>): Promise<ThreeNodes> {
  const port = basePort();
  const nodes: NodeProc[] = [startNode('app1', nodeEnv(port, 1, null, extra))];
  const stop = async () => {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  };
  try {
    await waitForLeader([nodes[0]], 60_000);
    // One join at a time: these suites test the client, not concurrent membership changes.
    for (const i of [2, 3]) {
      nodes.push(startNode(`app${i}`, nodeEnv(port, i, 1, extra)));
      await waitFor(`${i} voters`, async () => {
        const v = await clusterView(nodes[0]);
        return v && v.nodes.filter((n) => n.suffrage === 'voter').length === i;
      }, 60_000);
    }
  } catch (err) {
    // Show what the nodes said, so a slow or failed start can be diagnosed from the test log.
    for (const n of nodes) console.log(`      --- ${n.id} (port ${n.apiPort}) output tail:\n${n.output.join('').slice(-2000)}`);
    await stop();
    throw err;
  }
  return { nodes, port, endpoints: nodes.map((n) => n.api), stop };
}

/** Whether `key` exists (a linearizable get through the client). */
export async function exists(client: RaftKvClient, key: string): Promise<boolean> {
  try {
    await client.get(key);
    return true;
  } catch (err) {
    if (err instanceof KeyNotFoundError) return false;
    throw err;
  }
}
