import { expect } from 'chai';
import { nextConfig } from '../../../../src/raft/core/membership.js';
import type { ClusterConfig, Member } from '../../../../src/raft/core/types.js';

const mb = (id: string, suffrage: 'voter' | 'learner', incarnation = `${id}#0`): Member => ({ id, suffrage, raftAddr: '', apiAddr: '', incarnation });
const cfg: ClusterConfig = { members: [mb('n1', 'voter'), mb('n2', 'voter'), mb('n3', 'learner')] };
const ctx = (matches: Record<string, number>, commitIndex = 10) => ({ selfId: 'n1', commitIndex, matchIndexOf: (id: string) => matches[id] });

describe('nextConfig: single-server membership changes (thesis §4.1), pure', () => {
  it('adds a learner, and a new incarnation of a member replaces it as a learner (never the leader itself)', () => {
    const a = nextConfig(cfg, { op: 'addLearner', member: mb('n4', 'voter') }, ctx({}));
    expect(a.ok && a.config.members.map((m) => `${m.id}:${m.suffrage}`)).to.deep.equal(['n1:voter', 'n2:voter', 'n3:learner', 'n4:learner']);
    const r = nextConfig(cfg, { op: 'addLearner', member: mb('n2', 'voter', 'n2#1') }, ctx({}));
    expect(r.ok && r.config.members[1]).to.deep.include({ id: 'n2', suffrage: 'learner', incarnation: 'n2#1' });
    expect(nextConfig(cfg, { op: 'addLearner', member: mb('n2', 'voter') }, ctx({}))).to.deep.equal({ ok: false, reason: 'already-member' });
    expect(nextConfig(cfg, { op: 'addLearner', member: mb('n1', 'voter', 'n1#9') }, ctx({}))).to.deep.equal({ ok: false, reason: 'already-member' });
  });

  it('promotes a learner only once it holds the committed log', () => {
    expect(nextConfig(cfg, { op: 'promote', id: 'n3' }, ctx({ n3: 9 }))).to.deep.equal({ ok: false, reason: 'not-caught-up' });
    expect(nextConfig(cfg, { op: 'promote', id: 'n3' }, ctx({}))).to.deep.equal({ ok: false, reason: 'not-caught-up' });
    const p = nextConfig(cfg, { op: 'promote', id: 'n3' }, ctx({ n3: 10 }));
    expect(p.ok && p.config.members[2]!.suffrage).to.equal('voter');
    expect(nextConfig(cfg, { op: 'promote', id: 'n2' }, ctx({}))).to.deep.equal({ ok: false, reason: 'already-member' });
    expect(nextConfig(cfg, { op: 'promote', id: 'n9' }, ctx({}))).to.deep.equal({ ok: false, reason: 'unknown-member' });
  });

  it('removes a member; an unknown one is refused; the input is never modified', () => {
    const before = JSON.stringify(cfg);
    const r = nextConfig(cfg, { op: 'remove', id: 'n2' }, ctx({}));
    expect(r.ok && r.config.members.map((m) => m.id)).to.deep.equal(['n1', 'n3']);
    expect(nextConfig(cfg, { op: 'remove', id: 'n9' }, ctx({}))).to.deep.equal({ ok: false, reason: 'unknown-member' });
    expect(JSON.stringify(cfg)).to.equal(before);
  });
});
