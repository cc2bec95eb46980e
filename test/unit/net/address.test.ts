/**
 * The one parser of node ids, host:port and endpoints (src/net/address.ts). The rules are the
 * configuration's (RAFT_BIND_ADDR and friends); the join route and the peer parser used to accept
 * any `x:NNNNN`, so a join with raftAddr port 0 or 99999 made the leader's peer client throw.
 */
import { expect } from 'chai';
import { endpointHostPort, formatHostPort, isHostPort, isNodeId, parseEndpoint, parseHostPort, withScheme } from '../../../src/net/address.js';

describe('net/address: node ids, host:port and endpoints', () => {
  it('node ids are 1-64 characters of [A-Za-z0-9_.-]', () => {
    for (const ok of ['a', 'app1', 'raftkv-0', 'a.b_c-d', 'x'.repeat(64)]) expect(isNodeId(ok), ok).to.equal(true);
    for (const bad of ['', 'x'.repeat(65), 'a b', 'a/b', 'a:b', 'ü', '\n', 5, null, undefined]) expect(isNodeId(bad), String(bad)).to.equal(false);
  });

  it('host:port: names, IPv4 and bracketed IPv6, port 1-65535', () => {
    expect(parseHostPort('app1:7000')).to.deep.equal({ host: 'app1', port: 7000 });
    expect(parseHostPort('127.0.0.1:1')).to.deep.equal({ host: '127.0.0.1', port: 1 });
    expect(parseHostPort('[::1]:65535')).to.deep.equal({ host: '::1', port: 65535 });
    expect(parseHostPort('[fe80::1%eth0]:80')).to.deep.equal({ host: 'fe80::1%eth0', port: 80 });
    expect(parseHostPort('0.0.0.0:7000')).to.deep.equal({ host: '0.0.0.0', port: 7000 });
    expect(parseHostPort('[::]:7000')).to.deep.equal({ host: '::', port: 7000 });
    expect(parseHostPort('raftkv-0.raftkv-headless.default.svc.cluster.local:7000')?.port).to.equal(7000);
  });

  it('host:port rejects empty, bad ports, unbracketed IPv6 and garbage', () => {
    const bad = ['', ':', ':7000', 'app1', 'app1:', 'app1:0', 'app1:65536', 'app1:99999', 'app1:123456', 'app1:-1', 'app1:7e3', 'app1: 80', 'app1:80 ',
      ' app1:80', 'a b:80', 'a/b:80', 'http://app1:80', '::1:7000', '[::1]', '[::1]7000', '[]:80', '[a b]:80', 'a]b:80', 'app1:80:90', '\n:80'];
    for (const b of bad) {
      expect(parseHostPort(b), JSON.stringify(b)).to.equal(null);
      expect(isHostPort(b), JSON.stringify(b)).to.equal(false);
    }
    for (const v of [7000, null, undefined, {}]) expect(isHostPort(v)).to.equal(false);
  });

  it('formatHostPort brackets IPv6 and round-trips with parseHostPort', () => {
    expect(formatHostPort('::1', 8080)).to.equal('[::1]:8080');
    expect(formatHostPort('app1', 8080)).to.equal('app1:8080');
    for (const a of ['[::1]:8080', 'app1:8080', '10.0.0.1:1']) {
      const hp = parseHostPort(a)!;
      expect(formatHostPort(hp.host, hp.port)).to.equal(a);
    }
  });

  it('endpoints: host:port means http://host:port; only http(s) URLs with a host', () => {
    expect(withScheme('app1:8080')).to.equal('http://app1:8080');
    expect(withScheme(' https://app1:8443 ')).to.equal('https://app1:8443');
    expect(parseEndpoint('app1:8080')?.href).to.equal('http://app1:8080/');
    expect(parseEndpoint('https://app1:8443/base/')?.pathname).to.equal('/base/');
    expect(parseEndpoint('[::1]:8080')?.hostname).to.equal('[::1]');
    for (const bad of ['', '   ', 'ftp://app1:21', 'http://', 'http://:80', 'app1:99999', 'not a url', 'http://a b']) expect(parseEndpoint(bad), bad).to.equal(null);
  });

  it('endpointHostPort lower-cases, strips IPv6 brackets and fills in the default port', () => {
    expect(endpointHostPort('http://APP1')).to.deep.equal({ host: 'app1', port: '80' });
    expect(endpointHostPort('https://app1')).to.deep.equal({ host: 'app1', port: '443' });
    expect(endpointHostPort('http://[::1]:8081/')).to.deep.equal({ host: '::1', port: '8081' });
    expect(endpointHostPort('garbage')).to.equal(null);
  });
});
