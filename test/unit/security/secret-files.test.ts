/**
 * Issue 19: secrets only came through environment variables, and nothing warned about a tokens or
 * key file others can read. RAFT_CLUSTER_SECRET_FILE reads the secret from a file (exactly one of
 * the two variables may be set), and start-up logs one warning naming every secret file readable
 * by other users.
 */
import { expect } from 'chai';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../../src/config.js';
import { NodeSecurity } from '../../../src/security/setup.js';
import { removeDir, tempDir } from '../../support/procs.js';

describe('security: secrets from files, and a warning for files others can read', () => {
  let dir = '';
  const load = (env: Record<string, string>) => loadConfig({ NODE_ID: 'n1', ...env }, { reporter: 'throw' });
  const error = (env: Record<string, string>): string => {
    try {
      load(env);
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  const file = (name: string, text: string, mode: number): string => {
    const f = join(dir, name);
    writeFileSync(f, text);
    chmodSync(f, mode);
    return f;
  };
  /** The warn-level lines NodeSecurity logs while starting with `env`. */
  const warnings = (env: Record<string, string>): string[] => {
    const lines: string[] = [];
    new NodeSecurity(load(env), pino({ level: 'info' }, { write: (s: string) => lines.push(s) }));
    return lines.filter((l) => (JSON.parse(l) as { level: number }).level === 40);
  };
  before(() => (dir = tempDir('raftkv-secretfiles-')));
  after(() => removeDir(dir));

  it('RAFT_CLUSTER_SECRET_FILE supplies the secret (one trailing newline dropped)', () => {
    const f = file('secret', 'a-secret-of-enough-length\n', 0o600);
    const c = load({ RAFT_CLUSTER_SECRET_FILE: f });
    expect(c.clusterSecret).to.equal('a-secret-of-enough-length');
    expect(c.clusterSecretFile).to.equal(f);
  });

  it('both variables, a missing, empty or short file are errors naming the variable', () => {
    const f = file('secret2', 'a-secret-of-enough-length', 0o600);
    expect(error({ RAFT_CLUSTER_SECRET_FILE: f, RAFT_CLUSTER_SECRET: 'another-secret-long-enough' })).to.match(/RAFT_CLUSTER_SECRET_FILE: set either RAFT_CLUSTER_SECRET or RAFT_CLUSTER_SECRET_FILE, not both/);
    expect(error({ RAFT_CLUSTER_SECRET_FILE: join(dir, 'none') })).to.match(/RAFT_CLUSTER_SECRET_FILE: cannot read/);
    expect(error({ RAFT_CLUSTER_SECRET_FILE: file('empty', '\n', 0o600) })).to.match(/RAFT_CLUSTER_SECRET_FILE: .* is empty/);
    expect(error({ RAFT_CLUSTER_SECRET_FILE: file('short', 'short', 0o600) })).to.match(/RAFT_CLUSTER_SECRET_FILE: must be at least 16 characters/);
  });

  it('warns once, naming the files, when the tokens or secret file is readable by others; not when private', () => {
    const tokens = JSON.stringify({ 'reader-token-1': { role: 'read' } });
    const open = warnings({ AUTH_TOKENS_FILE: file('tokens-open.json', tokens, 0o644), RAFT_CLUSTER_SECRET_FILE: file('secret-open', 'a-secret-of-enough-length', 0o604) });
    expect(open.length).to.equal(1);
    expect(open[0]).to.include('tokens-open.json').and.include('secret-open').and.include('readable by other users');
    expect(warnings({ AUTH_TOKENS_FILE: file('tokens-private.json', tokens, 0o600), RAFT_CLUSTER_SECRET_FILE: file('secret-private', 'a-secret-of-enough-length', 0o600) })).to.deep.equal([]);
  });
});
