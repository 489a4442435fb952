import { BlockList, isIP } from 'node:net';

// Push services are public hosts: an endpoint naming a private, loopback or link-local address
// would turn our server into a relay towards its own network (SSRF). Host names that resolve to
// such addresses are not caught here; egress filtering covers them in production (docs/deployment.md).
const PRIVATE_NETWORKS = new BlockList();
// Private, shared, loopback, link-local, IETF, benchmarking, multicast and reserved blocks.
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) PRIVATE_NETWORKS.addSubnet(net, prefix, 'ipv4');
// IPv6 too, and NAT64's IPv4 inside IPv6 (BlockList checks IPv4-mapped addresses against the IPv4 rules itself).
for (const [net, prefix] of [['::1', 128], ['::', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) PRIVATE_NETWORKS.addSubnet(net, prefix, 'ipv6');

function isPrivateHost(hostname: string): boolean {
  // `localhost.` is `localhost`: a fully qualified name ends with a dot.
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.+$/, '');
  const family = isIP(host);
  if (family) return PRIVATE_NETWORKS.check(host, family === 4 ? 'ipv4' : 'ipv6');
  // A single label (`redis`, `postgres`, `metadata`) is resolved through the local search domains:
  // push services always have public, dotted names.
  return !host.includes('.') || /\.(localhost|local|internal)$/i.test(host);
}

/**
 * Push endpoints are URLs a device hands us and we then POST to: only https in production;
 * outside production plain http is allowed to loopback only (local test receivers).
 */
export function isAcceptablePushEndpoint(endpoint: string, options: { production: boolean }): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.username || url.password || url.hash) return false;
  if (url.protocol === 'https:') return url.hostname !== '' && !isPrivateHost(url.hostname);
  if (url.protocol !== 'http:' || options.production) return false;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}
