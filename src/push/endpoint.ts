import { BlockList, isIP } from 'node:net';
import { isLoopbackHostname } from '../lib/loopback.ts';

// Push services are public hosts: an endpoint naming a private, loopback or link-local address
// would turn our server into a relay towards its own network (SSRF). Host names that resolve to
// such addresses are not caught by this list: in production only the listed push services pass.
const PRIVATE_NETWORKS = new BlockList();
// Private, shared, loopback, link-local, IETF, benchmarking, multicast and reserved blocks.
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) PRIVATE_NETWORKS.addSubnet(net, prefix, 'ipv4');
// IPv6 too, and NAT64's IPv4 inside IPv6 (BlockList checks IPv4-mapped addresses against the IPv4 rules itself).
// ::/96 (IPv4-compatible) and 2002::/16 (6to4) carry an IPv4 address too; fec0::/10 is the old site-local block.
for (const [net, prefix] of [['::', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32], ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]] as const) PRIVATE_NETWORKS.addSubnet(net, prefix, 'ipv6');

function isPrivateHost(hostname: string): boolean {
  // `localhost.` is `localhost`: a fully qualified name ends with a dot.
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '');
  const family = isIP(host);
  if (family) return PRIVATE_NETWORKS.check(host, family === 4 ? 'ipv4' : 'ipv6');
  // A single label (`redis`, `postgres`, `metadata`) is resolved through the local search domains:
  // push services always have public, dotted names.
  return !host.includes('.') || /\.(localhost|local|internal)$/i.test(host);
}

/** Whether `hostname` is one of `patterns`: a host name, or `*.domain` for any name under it. */
function isListedHost(hostname: string, patterns: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/\.+$/, '');
  return patterns.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern));
}

/**
 * Push endpoints are URLs a device hands us and we then POST to. In production, only https to
 * the push services listed (VIGIE_PUSH_HOSTS): any other public name could resolve to a private
 * address, now or later (DNS rebinding). Everywhere, no private, loopback or link-local address;
 * outside production plain http is allowed to loopback only (local test receivers).
 */
export function isAcceptablePushEndpoint(endpoint: string, options: { production: boolean; pushHosts: readonly string[] }): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.username || url.password || url.hash) return false;
  if (url.protocol === 'https:') return url.hostname !== '' && !isPrivateHost(url.hostname) && (!options.production || isListedHost(url.hostname, options.pushHosts));
  if (url.protocol !== 'http:' || options.production) return false;
  return isLoopbackHostname(url.hostname);
}
