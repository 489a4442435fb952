// Threat: PostgreSQL (directory, devices, clients, audit) becomes unreachable. Nodes must answer
// 503 with Retry-After (never a 500 or a hang), turn their readiness red, and come back by
// themselves when it returns — with no audit entry or device lost. The nodes reach PostgreSQL
// through a TCP proxy that the test cuts and restores; the server itself is never touched.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceSimulator } from '../../src/device/simulator.ts';
import type { AuditEntry } from '../../src/audit/log.ts';
import {
  DEMO_PRO, PIN, REDIRECT_URI, challengeIdOf, continueVia, requestVia, requireServices, startCluster, startLoginVia, startTcpProxy, tokensFor, waitFor,
  type TestCluster,
} from './support.ts';

const services = requireServices();

describe('PostgreSQL unreachable', { skip: services ? false : 'DATABASE_URL and REDIS_URL are not set', timeout: 60_000 }, () => {
  let proxy: Awaited<ReturnType<typeof startTcpProxy>>;
  let cluster: TestCluster;
  let device: DeviceSimulator;

  before(async () => {
    const direct = new URL(services!.databaseUrl);
    proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
    cluster = await startCluster({ nodes: 2, databaseUrl: services!.databaseUrl, nodeDatabaseUrl: proxy.url(services!.databaseUrl), redisUrl: services!.redisUrl });
    ({ device } = await cluster.activateDevice(cluster.nodes[0]!));
  });
  after(async () => {
    if (process.env.DEBUG_CLUSTER) console.log(cluster?.logs());
    await cluster?.close();
    await proxy?.close();
  });

  async function login(port: number | undefined) {
    const page = await startLoginVia(cluster, port);
    device.state.issuer = cluster.nodes[1]!.url;
    const approved = await device.approve(challengeIdOf(page), page.displayCode, PIN);
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const callback = await continueVia(page, port);
    assert.ok(callback.url.href.startsWith(REDIRECT_URI), `ended on ${callback.url.href}`);
    assert.equal((await tokensFor(cluster, page, callback.url)).claims()?.sub, DEMO_PRO.nationalId);
  }

  it('503 + Retry-After and red readiness while it is away; recovery without restarts; nothing lost', async () => {
    await login(undefined);
    const auditBefore: AuditEntry[] = await cluster.operator.audit.list({ limit: 100_000 });
    const devicesBefore = await cluster.operator.devices.list(DEMO_PRO.nationalId);
    assert.ok(auditBefore.length > 0 && devicesBefore.length === 1);

    // A login page already open when the database goes away.
    const page = await startLoginVia(cluster, cluster.nodes[0]!.port);
    await proxy.cut();
    try {
      for (const node of cluster.nodes) {
        const ready = await fetch(`${node.url}/readyz`);
        assert.equal(ready.status, 503);
        assert.ok(ready.headers.get('retry-after'));
        const body = (await ready.json()) as { checks: Record<string, { status: string }> };
        assert.equal(body.checks.database?.status, 'down');
        assert.equal(body.checks.redis?.status, 'ok');
        assert.equal((await fetch(`${node.url}/healthz`)).status, 200);

        // The provider's own endpoint (access tokens in SQL), the device protocol (device in SQL),
        // the login page (directory in SQL): 503 with Retry-After, never a 500.
        const userinfo = await fetch(new URL('/me', node.url), { headers: { authorization: `Bearer ${'x'.repeat(43)}` } });
        assert.equal(userinfo.status, 503, await userinfo.text());
        assert.ok(userinfo.headers.get('retry-after'));
        device.state.issuer = node.url;
        const list = await device.listChallenges();
        assert.equal(list.status, 503, JSON.stringify(list.body));
      }
      const approve = await device.approve(challengeIdOf(page), page.displayCode, PIN);
      assert.equal(approve.status, 503, JSON.stringify(approve.body));
      const identifier = await requestVia(page.jar, `${page.challengeUrl.href.replace(/\/challenge\/.*$/, '')}/login`, cluster.nodes[1]!.port, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
        body: new URLSearchParams({ csrf: page.csrf, nationalId: DEMO_PRO.nationalId }).toString(),
      });
      assert.equal(identifier.status, 503);
      assert.ok(identifier.headers.get('retry-after'));
      assert.match(await identifier.text(), /Réessayez dans un instant/);
    } finally {
      await proxy.restore();
    }

    // Back by themselves: readiness green on every node, then a full login works.
    for (const node of cluster.nodes) {
      await waitFor(async () => (await fetch(`${node.url}/readyz`)).status === 200, 15_000, () => `node ${node.index} not ready again\n${cluster.logs()}`);
    }
    await login(undefined);

    // Nothing lost: every entry written before is still there, unchanged, and the chain holds.
    const auditAfter = await cluster.operator.audit.list({ limit: 100_000 });
    assert.deepEqual(auditAfter.slice(0, auditBefore.length), auditBefore);
    assert.ok(auditAfter.length > auditBefore.length);
    assert.deepEqual(await cluster.operator.audit.verify(), { ok: true, entries: auditAfter.length });
    assert.deepEqual((await cluster.operator.devices.list(DEMO_PRO.nationalId)).map((d) => d.id), devicesBefore.map((d) => d.id));
  });
});
