import { isIP } from 'node:net';

/**
 * Where a login request comes from, as the defences see it: the address, its network prefix
 * (/24 for IPv4, /56 for IPv6: what one subscriber or one small hosting tenant usually holds),
 * the browser's random id (cookie) and, when known, its place.
 */
export interface Geo {
  /** ISO 3166-1 alpha-2. */
  country: string;
  /** ISO 3166-2 subdivision code without the country ('ARA', 'IDF'), or '' when unknown. */
  region: string;
  city: string;
}

export interface Source {
  ip: string;
  prefix: string;
  browserId: string;
  geo: Geo | null;
}

/** `::ffff:192.0.2.1` is the IPv4 address 192.0.2.1. */
export function canonicalIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
}

/** The /24 (IPv4) or /56 (IPv6) network of an address, written as CIDR. */
export function prefixOf(rawIp: string): string {
  const ip = canonicalIp(rawIp);
  const version = isIP(ip);
  if (version === 4) return `${ip.split('.').slice(0, 3).join('.')}.0/24`;
  if (version === 6) {
    const groups = expandIpv6(ip);
    const fourth = (groups[3] ?? 0) & 0xff00;
    return `${groups.slice(0, 3).map((g) => g.toString(16)).join(':')}:${fourth.toString(16)}::/56`;
  }
  return `invalid:${ip.slice(0, 64)}`;
}

/** How many /56 prefixes' worth of requests, reports or attempts an IPv6 /48 may send: a site with a few networks. */
export const SITE_FACTOR = 4;

/**
 * The /48 an IPv6 address belongs to (what one site is usually given), written as CIDR; undefined
 * for IPv4, whose /24 already is one site. One holder of a /48 has 256 /56 "sources".
 */
export function sitePrefixOf(rawIp: string): string | undefined {
  const ip = canonicalIp(rawIp);
  if (isIP(ip) !== 6) return undefined;
  return `${expandIpv6(ip).slice(0, 3).map((g) => g.toString(16)).join(':')}::/48`;
}

function expandIpv6(ip: string): number[] {
  let text = ip.split('%')[0]!;
  // An embedded IPv4 tail (::1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((g) => parseInt(g || '0', 16));
}

// RFC 6890 special-purpose blocks: this network, private, loopback, link-local, CGNAT, the
// documentation and benchmarking networks (the tests' and simulator's addresses), multicast, reserved.
const PRIVATE_V4: Array<[number, number]> = [
  [0x00000000, 8], [0x0a000000, 8], [0x7f000000, 8], [0xac100000, 12], [0xc0a80000, 16], [0xa9fe0000, 16], [0x64400000, 10],
  [0xc0000200, 24], [0xc6336400, 24], [0xcb007100, 24], [0xc6120000, 15], [0xe0000000, 4], [0xf0000000, 4],
];

/** Special-purpose addresses have no place (GeoIP is not consulted). */
export function isPublicIp(rawIp: string): boolean {
  const ip = canonicalIp(rawIp);
  const version = isIP(ip);
  if (version === 4) {
    const n = ip.split('.').reduce((acc, part) => (acc << 8) + Number(part), 0) >>> 0;
    return !PRIVATE_V4.some(([base, bits]) => (n >>> (32 - bits)) === (base >>> (32 - bits)));
  }
  if (version === 6) {
    const first = expandIpv6(ip)[0] ?? 0;
    if (ip === '::1' || ip === '::') return false;
    const second = expandIpv6(ip)[1] ?? 0;
    return !((first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80 || (first & 0xff00) === 0xff00 || (first === 0x2001 && second === 0x0db8));
  }
  return false;
}
