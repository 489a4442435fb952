/** Host names of this machine as URLs write them (`new URL(…).hostname`). */
const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a URL's host name is this machine: local test receivers, a local relay, the demo service. */
export function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK_HOSTNAMES.has(hostname);
}
