import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { removeDir, tempDir } from '../support/procs.js';

describe('security: configuration of TLS, secret, tokens and limits', () => {
  let dir = '';
  let f = '';
  before(() => {
    dir = tempDir('raftkv-cfg-');
    f = join(dir, 'file.pem');
    writeFileSync(f, 'x');
  });
  after(() => removeDir(dir));

  const load = (env: Record<string, string>) => loadConfig({ NODE_ID: 'n1', ...env }, { reporter: 'throw' });
  const error = (env: Record<string, string>): string => {
    try {
      load(env);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };

  it('with no security variables everything is off, as before', () => {
    const c = load({});
    expect([c.apiTls, c.raftTls, c.clusterSecret, c.authTokensFile, c.isMetricsAuthRequired]).to.deep.equal([null, null, null, null, false]);
    expect(c.joinAddrs).to.deep.equal([]);
  });

  it('a certificate without its key (or a key without its certificate) is an error naming the missing variable', () => {
    expect(error({ TLS_CERT_FILE: f })).to.match(/TLS_KEY_FILE: required when TLS_CERT_FILE is set/);
    expect(error({ TLS_KEY_FILE: f })).to.match(/TLS_CERT_FILE: required/);
    expect(error({ RAFT_TLS_CERT_FILE: f })).to.match(/RAFT_TLS_KEY_FILE: required/);
    expect(error({ RAFT_TLS_CERT_FILE: f, RAFT_TLS_KEY_FILE: f })).to.match(/RAFT_TLS_CA_FILE: required/);
  });

  it('an unreadable file, a short secret or a bad limit is an error naming the variable', () => {
    expect(error({ TLS_CERT_FILE: f, TLS_KEY_FILE: join(dir, 'missing.pem') })).to.match(/TLS_KEY_FILE: cannot read/);
    expect(error({ AUTH_TOKENS_FILE: join(dir, 'nope.json') })).to.match(/AUTH_TOKENS_FILE: cannot read/);
    expect(error({ RAFT_CLUSTER_SECRET: 'short' })).to.match(/RAFT_CLUSTER_SECRET: must be at least 16/);
    expect(error({ MAX_CONCURRENT_REQUESTS: '0' })).to.match(/MAX_CONCURRENT_REQUESTS/);
  });

  it('reads the files and switches join addresses to https when the API serves TLS', () => {
    const c = load({ TLS_CERT_FILE: f, TLS_KEY_FILE: f, RAFT_TLS_CERT_FILE: f, RAFT_TLS_KEY_FILE: f, RAFT_TLS_CA_FILE: f, RAFT_JOIN_ADDR: 'app1:8080,http://app2:8080', RAFT_CLUSTER_SECRET: 's'.repeat(16), METRICS_AUTH: 'true' });
    expect(c.apiTls).to.deep.equal({ certFile: f, keyFile: f, caFile: undefined });
    expect(c.raftTls?.caFile).to.equal(f);
    expect(c.joinAddrs).to.deep.equal(['https://app1:8080', 'http://app2:8080']);
    expect(c.isMetricsAuthRequired).to.equal(true);
  });

  it('CLIENT_CERT_AUTH needs the API certificate, key and the CA that signs client certificates', () => {
    expect(error({ CLIENT_CERT_AUTH: 'true' })).to.match(/CLIENT_CERT_AUTH: needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE/);
    expect(error({ CLIENT_CERT_AUTH: 'true', TLS_CERT_FILE: f, TLS_KEY_FILE: f })).to.match(/CLIENT_CERT_AUTH/);
    expect(load({ CLIENT_CERT_AUTH: 'true', TLS_CERT_FILE: f, TLS_KEY_FILE: f, TLS_CA_FILE: f }).isClientCertRequired).to.equal(true);
    expect(load({}).isClientCertRequired).to.equal(false);
  });
});


describe('configuration: defaults the API-depth design names (docs/api.md, watch.md, leases.md)', () => {
  it('MAX_LIST_LIMIT 1000 (never unlimited), progress events and lease checkpoints every 5 s', () => {
    const c = loadConfig({ NODE_ID: 'n1' }, { reporter: 'throw' });
    expect({ maxListLimit: c.maxListLimit, watchProgressIntervalMs: c.watchProgressIntervalMs, leaseCheckpointIntervalMs: c.leaseCheckpointIntervalMs }).to.deep.equal({
      maxListLimit: 1000,
      watchProgressIntervalMs: 5000,
      leaseCheckpointIntervalMs: 5000,
    });
    // A limit is always a positive integer: there is no setting that turns it off.
    for (const bad of ['0', '-1', 'unlimited']) expect(() => loadConfig({ NODE_ID: 'n1', MAX_LIST_LIMIT: bad }, { reporter: 'throw' }), bad).to.throw();
  });
});
