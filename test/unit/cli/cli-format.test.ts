import { expect } from 'chai';
import { formatAgo, parseInterval, renderCluster, table } from '../../../src/cli/format.js';
import { parseLocalView } from '../../../src/api/cluster-view.js';
import { parseClusterInfo } from '../../../src/index.js';

describe('raftkv CLI formatting and the /cluster view parsers', () => {
  it('formats durations and parses intervals', () => {
    expect(formatAgo(null)).to.equal('-');
    expect(formatAgo(40)).to.equal('40ms');
    expect(formatAgo(2500)).to.equal('2.5s');
    expect(formatAgo(125_000)).to.equal('2m05s');
    expect(parseInterval('500ms')).to.equal(500);
    expect(parseInterval('2s')).to.equal(2000);
    expect(parseInterval('1')).to.equal(1000);
    expect(parseInterval('0.05')).to.equal(null);
    expect(parseInterval('soon')).to.equal(null);
  });

  it('aligns table columns', () => {
    expect(table([['A', 'BB'], ['ccc', 'd']])).to.equal('A    BB\nccc  d');
  });

  it('renders the cluster table sorted by id with the leader marked and unknowns as "-"', () => {
    const info = parseClusterInfo(
      {
        id: 'b', role: 'follower', leader: { id: 'a', apiAddr: 'h:1' }, term: 4, commitIndex: 9, appliedIndex: 9, lastIndex: 9, view: 'all',
        nodes: [
          { id: 'c', apiAddr: 'h:3', suffrage: 'voter', role: 'follower', reachable: false, term: null, health: 'unreachable', matchIndex: 3, lag: 6, lastContactMs: 4200 },
          { id: 'a', apiAddr: 'h:1', suffrage: 'voter', role: 'leader', reachable: true, term: 4, commitIndex: 9, appliedIndex: 9, lastIndex: 9, matchIndex: 9, lag: 0, lastContactMs: 0, health: 'ok' },
        ],
      },
      'http://h:2',
    );
    expect(info).to.not.equal(null);
    const lines = renderCluster(info!).split('\n');
    expect(lines[0]).to.equal('leader: a   term: 4   commit: 9   (answered by b at http://h:2)');
    expect(lines[1]).to.match(/^ID +ROLE +SUFFRAGE +TERM +MATCH +COMMIT +APPLIED +LAG +LAST CONTACT +HEALTH$/);
    expect(lines[2].split(/\s{2,}/)).to.deep.equal(['a *', 'leader', 'voter', '4', '9', '9', '9', '0', '0ms', 'ok']);
    expect(lines[3].split(/\s{2,}/)).to.deep.equal(['c', 'follower', 'voter', '-', '3', '-', '-', '6', '4.2s', 'unreachable']);
  });

  it('the view parsers reject garbage instead of crashing', () => {
    for (const g of [null, 1, 'x', [], {}, { id: 'a', role: 'leader', nodes: 'no' }, { id: 'a', role: 'leader', term: 'x', commitIndex: 1, appliedIndex: 1, lastIndex: 1, nodes: [] }, { id: 'a', role: 'leader', term: 1, commitIndex: 1, appliedIndex: 1, lastIndex: 1, nodes: [7] }]) {
      expect(parseLocalView(g), JSON.stringify(g)).to.equal(null);
      expect(parseClusterInfo(g, 'http://x:1'), JSON.stringify(g)).to.equal(null);
    }
    const ok = parseLocalView({ id: 'a', role: 'leader', leader: { id: 'a', apiAddr: 'h:1' }, term: 1, commitIndex: 2, appliedIndex: 2, lastIndex: 2, nodes: [{ id: 'a', matchIndex: 2, lag: 0 }] });
    expect(ok?.nodes[0]).to.include({ id: 'a', matchIndex: 2, lag: 0 });
  });
});
