import { expect } from 'chai';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signRequest, verifyRequest } from '../../../src/security/hmac.js';

const SECRET = 'a-shared-cluster-secret';
const NOW = 1_800_000_000_000;

describe('security: cluster-secret HMAC over method, path, timestamp and body hash', () => {
  const body = '{"messages":[]}';
  const signed = signRequest(SECRET, 'POST', '/raft/messages', body, NOW);
  const req = (over: Partial<{ method: string; path: string; body: string; headers: Record<string, string> }> = {}) => ({ method: 'POST', path: '/raft/messages', body, headers: signed, ...over });

  it('accepts the request it signed, within the allowed clock skew', () => {
    expect(verifyRequest(SECRET, req(), NOW)).to.deep.equal({ ok: true });
    expect(verifyRequest(SECRET, req(), NOW + 29_000)).to.deep.equal({ ok: true });
    expect(verifyRequest(SECRET, req(), NOW - 29_000)).to.deep.equal({ ok: true });
  });

  it('never carries the secret itself', () => {
    expect(JSON.stringify(signed)).to.not.include(SECRET);
  });

  it('refuses a change of method, path, body, timestamp or secret', () => {
    expect(verifyRequest(SECRET, req({ method: 'PUT' }), NOW).ok).to.equal(false);
    expect(verifyRequest(SECRET, req({ path: '/raft/messages?x' }), NOW).ok).to.equal(false);
    expect(verifyRequest(SECRET, req({ body: body + ' ' }), NOW).ok).to.equal(false);
    expect(verifyRequest(SECRET, req({ headers: { ...signed, [TIMESTAMP_HEADER]: String(NOW + 1) } }), NOW).ok).to.equal(false);
    expect(verifyRequest('another-secret-entirely', req(), NOW).ok).to.equal(false);
  });

  it('refuses a stale or future timestamp (replay window)', () => {
    expect(verifyRequest(SECRET, req(), NOW + 31_000)).to.deep.equal({ ok: false, reason: 'stale signature timestamp' });
    expect(verifyRequest(SECRET, req(), NOW - 31_000)).to.deep.equal({ ok: false, reason: 'stale signature timestamp' });
  });

  it('refuses missing and malformed headers without throwing', () => {
    expect(verifyRequest(SECRET, req({ headers: {} }), NOW)).to.deep.equal({ ok: false, reason: 'missing cluster signature' });
    for (const headers of [
      { [TIMESTAMP_HEADER]: 'soon', [SIGNATURE_HEADER]: signed[SIGNATURE_HEADER] },
      { [TIMESTAMP_HEADER]: String(NOW), [SIGNATURE_HEADER]: 'abc' },
      { [TIMESTAMP_HEADER]: String(NOW), [SIGNATURE_HEADER]: 'g'.repeat(64) },
      { [TIMESTAMP_HEADER]: '9'.repeat(400), [SIGNATURE_HEADER]: signed[SIGNATURE_HEADER] },
    ]) {
      expect(verifyRequest(SECRET, req({ headers }), NOW).ok).to.equal(false);
    }
  });
});
