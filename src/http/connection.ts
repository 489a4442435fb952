import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Calls `ended` once, when the response's connection ends (the browser or app went away, or the
 * stream was ended), and at once when it already has: a client may leave while its request is
 * still being handled, before anyone listens for it. Returns true in that last case.
 */
export function onConnectionEnd(request: IncomingMessage, res: ServerResponse, ended: () => void): boolean {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    ended();
  };
  res.once('close', once);
  if (!res.destroyed && !request.socket.destroyed) return false;
  once();
  return true;
}
