import { expect } from 'chai';
import { TokenStore, bearerToken, hasRole, mayTouchKey } from '../../../src/security/tokens.js';

describe('security: client tokens (AUTH_TOKENS_FILE)', () => {
  const store = TokenStore.parse(JSON.stringify({ 'reader-token-1': { role: 'read' }, 'writer-token-1': { role: 'write', prefix: 'team/' }, 'admin-token-01': { role: 'admin' } }));

  it('finds the principal of a known token and nothing for an unknown one', () => {
    expect(store.lookup('reader-token-1')?.role).to.equal('read');
    expect(store.lookup('writer-token-1')).to.deep.include({ role: 'write', prefix: 'team/' });
    expect(store.lookup('admin-token-01')?.role).to.equal('admin');
    expect(store.lookup('reader-token-')).to.equal(null);
    expect(store.lookup('')).to.equal(null);
    expect(store.lookup('reader-token-1 ')).to.equal(null);
  });

  it('orders roles read < write < admin', () => {
    const p = (role: 'read' | 'write' | 'admin') => ({ role, prefix: undefined, name: 'x' });
    expect([hasRole(p('read'), 'read'), hasRole(p('read'), 'write'), hasRole(p('write'), 'write'), hasRole(p('write'), 'admin'), hasRole(p('admin'), 'admin')]).to.deep.equal([true, false, true, false, true]);
  });

  it('restricts keys to the prefix', () => {
    const w = store.lookup('writer-token-1');
    expect(w && mayTouchKey(w, 'team/a')).to.equal(true);
    expect(w && mayTouchKey(w, 'other')).to.equal(false);
    expect(w && mayTouchKey(w, 'team')).to.equal(false);
  });

  it('parses only the Bearer scheme', () => {
    expect(bearerToken('Bearer abc')).to.equal('abc');
    expect(bearerToken('bearer  abc ')).to.equal('abc');
    expect(bearerToken('Basic abc')).to.equal(null);
    expect(bearerToken('Bearer')).to.equal(null);
    expect(bearerToken('Bearer a b')).to.equal(null);
    expect(bearerToken(undefined)).to.equal(null);
  });

  it('rejects bad files with a message that names the entry, never the token', () => {
    const bad: [string, RegExp][] = [
      ['not json', /not valid JSON/],
      ['[]', /JSON object/],
      ['{}', /at least one/],
      ['{"secret-token-x": {"role": "root"}}', /entry 1: role/],
      ['{"secret-token-x": "read"}', /entry 1: must be/],
      ['{"secret-token-x": {"role": "read", "prefix": 5}}', /entry 1: prefix/],
      ['{"short": {"role": "read"}}', /entry 1: token must be at least 8/],
    ];
    for (const [text, re] of bad) {
      let message = '';
      try {
        TokenStore.parse(text);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, text).to.match(re);
      expect(message).to.not.include('secret-token-x');
    }
  });

  it('"cert:<name>" entries are certificate subjects, never accepted as Bearer tokens', () => {
    const s = TokenStore.parse(JSON.stringify({ 'cert:alice': { role: 'write', prefix: 'a/' }, 'cert:app1': { role: 'admin' }, 'reader-token-1': { role: 'read' } }));
    expect(s.size).to.equal(3);
    expect(s.lookup('cert:alice')).to.equal(null);
    expect(s.lookupSubject(['alice', 'localhost'])).to.deep.include({ role: 'write', prefix: 'a/', name: 'cert:alice' });
    expect(s.lookupSubject(['nobody', 'app1'])?.role).to.equal('admin');
    expect(s.lookupSubject(['nobody'])).to.equal(null);
    expect(() => TokenStore.parse(JSON.stringify({ 'cert:': { role: 'read' } }))).to.throw(/entry 1: "cert:" must be followed/);
  });
});
