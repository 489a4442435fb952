// Threat: Redis (pending challenges, interactions, pub/sub) restarts mid-login — in-flight state is
// lost. The page must not hang waiting for an approval that can no longer come, nobody may get a
// 500, and new logins must work again once Redis is back, without restarting any node. Two nodes on
// a private redis-server (no persistence) that the test kills and starts again on the same port.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceSimulator } from '../../src/device/simulator.ts';
import {
  DEMO_PRO, PIN, REDIRECT_URI, challengeIdOf, continueVia, openStream, requestVia, requireServices, startCluster, startLoginVia, startPrivateRedis, tokensFor, waitFor,
  type TestCluster,
} from './support.ts';

const services = requireServices();

describe('Redis restarted mid-flow', { skip: services ? false : 'DATABASE_URL and REDIS_URL are not set', timeout: 60_000 }, () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let cluster: TestCluster;
  let device: DeviceSimulator;

  before(async () => {
    redis = await startPrivateRedis();
    cluster = await startCluster({ nodes: 2, databaseUrl: services!.databaseUrl, redisUrl: redis.url });
    ({ device } = await cluster.activateDevice(cluster.nodes[0]!));
  });
  after(async () => {
    await cluster?.close();
    await redis?.stop();
  });

  it('while Redis is down: readiness is red and requests answer 503 + Retry-After, never 500', async () => {
    const [a] = cluster.nodes as [typeof cluster.nodes[0]];
    await redis.stop();
    try {
      const ready = await fetch(`${a.url}/readyz`);
      assert.equal(ready.status, 503);
      const body = (await ready.json()) as { checks: Record<string, { status: string }> };
      assert.equal(body.checks.redis?.status, 'down');
      assert.equal(body.checks.database?.status, 'ok');
      assert.equal((await fetch(`${a.url}/healthz`)).status, 200, 'the process itself is alive');
      // A new login (oidc-provider stores its interaction in Redis) and a device call (nonce in Redis).
      const authorize = await fetch(new URL(`/auth?client_id=test-rp&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, a.url), { redirect: 'manual' });
      assert.equal(authorize.status, 503);
      assert.ok(authorize.headers.get('retry-after'));
      device.state.issuer = a.url;
      const list = await device.listChallenges();
      assert.equal(list.status, 503, JSON.stringify(list.body));
    } finally {
      await redis.start();
    }
    // Every node, not only the one asked above: each reconnects to Redis on its own schedule.
    for (const node of cluster.nodes) await waitFor(async () => (await fetch(`${node.url}/readyz`)).status === 200, 15_000, () => `${node.url} not ready again\n${cluster.logs()}`);
  });

  it('a login in flight says "expirée, recommencez" cleanly; a new login then works without restarting nodes', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const login = await startLoginVia(cluster, a.port);
    const stream = await openStream(login, b.port);
    assert.equal(await stream.next(), 'pending');
    device.state.issuer = b.url;
    assert.ok((await device.listChallenges()).body.challenges.some((c) => c.id === challengeIdOf(login)));

    await redis.stop();
    await redis.start();

    // The page's stream learns the challenge is gone (no hang), within seconds.
    const started = Date.now();
    assert.equal(await stream.next(20_000), 'expired');
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
    // A node still reconnecting answers 503 with Retry-After (previous test): the page's try once
    // every node is back is the one that must read "expired, start again".
    for (const node of cluster.nodes) await waitFor(async () => (await fetch(`${node.url}/readyz`)).status === 200, 15_000, () => `${node.url} not ready again\n${cluster.logs()}`);
    // The page then submits its form: a clean French "expired, start again" page, not a 500.
    const outcome = await continueVia(login, a.port);
    assert.equal(outcome.response.status, 400);
    const html = await outcome.response.text();
    assert.match(html, /expiré/);
    assert.match(html, /recommencez/);
    const status = await requestVia(login.jar, `${login.challengeUrl}/status`, b.port);
    assert.ok(status.status < 500, `status answered ${status.status}`);
    const late = await device.approve(challengeIdOf(login), login.displayCode, PIN);
    assert.ok(late.status < 500 && late.status !== 200, `late approval answered ${late.status}`);

    // New logins work again, on the same nodes.
    const fresh = await startLoginVia(cluster, undefined);
    const freshStream = await openStream(fresh, undefined);
    assert.equal(await freshStream.next(), 'pending');
    assert.equal((await device.approve(challengeIdOf(fresh), fresh.displayCode, PIN)).status, 200);
    assert.equal(await freshStream.next(), 'approved');
    const callback = await continueVia(fresh, undefined);
    assert.ok(callback.url.href.startsWith(REDIRECT_URI), `ended on ${callback.url.href}`);
    assert.equal((await tokensFor(cluster, fresh, callback.url)).claims()?.sub, DEMO_PRO.nationalId);
  });
});
