/**
 * The one parser of node ids, `host:port` addresses and endpoint URLs: configuration, the join
 * route, the peer parser and server, the peer client, the client library and the CLI all use it.
 * Browser-safe (the client library imports it): no Node imports.
 */

/** What a node id may be: 1-64 characters of [A-Za-z0-9_.-]. */
export const NODE_ID_RULE = '1-64 characters of [A-Za-z0-9_.-]';

/** Whether `v` is a valid node id (NODE_ID_RULE). */
export function isNodeId(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(v);
}

/** A parsed `host:port`; `host` is without the brackets of an IPv6 literal. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host:port` (IPv6 in brackets: `[::1]:7000`), port 1-65535; null for anything else (an
 * empty host, a missing or bad port, an IPv6 address without brackets, spaces or slashes).
 */
export function parseHostPort(addr: string): HostPort | null {
  const m = /^(?:\[([^\]\s/]+)\]|([^:\s/[\]]+)):(\d{1,5})$/.exec(addr);
  if (m === null) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

/** Whether `v` is a `host:port` that parseHostPort accepts. */
export function isHostPort(v: unknown): v is string {
  return typeof v === 'string' && parseHostPort(v) !== null;
}

/** Formats `host:port`, putting an IPv6 host in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** An endpoint given as `host:port` means `http://host:port`; a URL is kept as it is. */
export function withScheme(endpoint: string): string {
  const s = endpoint.trim();
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
}

/** Parses an endpoint (a URL or `host:port`, see withScheme); null unless it is an http(s) URL with a host. */
export function parseEndpoint(endpoint: string): URL | null {
  let u: URL;
  try {
    u = new URL(withScheme(endpoint));
  } catch {
    return null;
  }
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? u : null;
}

/** Host (lower case, IPv6 without brackets) and port (the scheme's default filled in) of an endpoint URL. */
export function endpointHostPort(endpoint: string): { host: string; port: string } | null {
  try {
    const u = new URL(endpoint);
    return { host: u.hostname.toLowerCase().replace(/^\[|\]$/g, ''), port: u.port || (u.protocol === 'https:' ? '443' : '80') };
  } catch {
    return null;
  }
}
