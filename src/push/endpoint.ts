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
  if (url.protocol === 'https:') return url.hostname !== '';
  if (url.protocol !== 'http:' || options.production) return false;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}
