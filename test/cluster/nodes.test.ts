// Threat: a deployment of several nodes where a login's steps land on different nodes — or the node
// holding the page's live stream dies — strands the professional (the approval never reaches the
// page), or where two nodes settling one challenge at once let both an approval and a refusal
// through. Three real nodes on PostgreSQL + Redis behind the repo's load balancer.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceSimulator } from '../../src/device/simulator.ts';
import {
  DEMO_PRO, PIN, REDIRECT_URI, challengeIdOf, continueVia, openStream, requestVia, requireServices, startCluster, startLoginVia, tokensFor,
  type TestCluster,
} from './support.ts';

const services = requireServices();

describe('several nodes: one login across nodes, a node dying, racing settlements', { skip: services ? false : 'DATABASE_URL and REDIS_URL are not set', timeout: 60_000 }, () => {
  let cluster: TestCluster;
  let device: DeviceSimulator;
  let file: string;

  before(async () => {
    cluster = await startCluster({ nodes: 3, databaseUrl: services!.databaseUrl, redisUrl: services!.redisUrl });
    ({ device, file } = await cluster.activateDevice(cluster.nodes[1]!));
  });
  after(async () => cluster?.close());

  it('login on node A, approval through node B, the page’s stream on node C: the login completes', async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const login = await startLoginVia(cluster, a.port);
    const stream = await openStream(login, c.port);
    assert.equal(await stream.next(), 'pending');

    device.state.issuer = b.url;
    const pending = await device.listChallenges();
    const challenge = pending.body.challenges.find((x) => x.id === challengeIdOf(login));
    assert.ok(challenge, 'node B lists the challenge created on node A');
    assert.equal((await device.approve(challenge.id, login.displayCode, PIN)).status, 200);

    assert.equal(await stream.next(), 'approved', 'the approval made on B reached the stream on C');
    await stream.ended;
    const callback = await continueVia(login, a.port);
    assert.ok(callback.url.href.startsWith(REDIRECT_URI), `ended on ${callback.url.href}`);
    const tokens = await tokensFor(cluster, login, callback.url);
    assert.equal(tokens.claims()?.sub, DEMO_PRO.nationalId);
  });

  it('the node holding the page’s stream is killed mid-flow: the page reconnects elsewhere and completes', async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const login = await startLoginVia(cluster, a.port);
    const stream = await openStream(login, c.port);
    assert.equal(await stream.next(), 'pending');

    await c.kill();
    await stream.ended;
    // EventSource reconnects to the same URL — through the load balancer, which skips the dead node.
    const reconnected = await openStream(login, undefined);
    assert.equal(await reconnected.next(), 'pending');

    device.state.issuer = b.url;
    assert.equal((await device.approve(challengeIdOf(login), login.displayCode, PIN)).status, 200);
    assert.equal(await reconnected.next(), 'approved');
    const callback = await continueVia(login, undefined);
    assert.ok(callback.url.href.startsWith(REDIRECT_URI), `ended on ${callback.url.href}`);
    assert.equal((await tokensFor(cluster, login, callback.url)).claims()?.sub, DEMO_PRO.nationalId);
    await c.restart();
  });

  it('rolling restart: the stream’s node stops gracefully (SIGTERM) within seconds, the page reconnects and completes', async () => {
    const [a, b, c] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const login = await startLoginVia(cluster, a.port);
    const stream = await openStream(login, c.port);
    assert.equal(await stream.next(), 'pending');
    const started = Date.now();
    await c.terminate();
    assert.ok(Date.now() - started < 8000, `the node took ${Date.now() - started} ms to stop with a stream open`);
    await stream.ended;
    const reconnected = await openStream(login, undefined);
    assert.equal(await reconnected.next(), 'pending');
    device.state.issuer = b.url;
    assert.equal((await device.approve(challengeIdOf(login), login.displayCode, PIN)).status, 200);
    assert.equal(await reconnected.next(), 'approved');
    const callback = await continueVia(login, undefined);
    assert.ok(callback.url.href.startsWith(REDIRECT_URI), `ended on ${callback.url.href}`);
    await c.restart();
  });

  it('two nodes race to approve and deny one challenge: exactly one outcome wins, everywhere', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    // Two copies of the same device (same key), one talking to node A, the other to node B.
    const onA = await DeviceSimulator.load(file);
    const onB = await DeviceSimulator.load(file);
    onA.state.issuer = a.url;
    onB.state.issuer = b.url;
    const outcomes = { approved: 0, denied: 0 };
    for (let round = 0; round < 6; round += 1) {
      const login = await startLoginVia(cluster, undefined);
      const id = challengeIdOf(login);
      const [approve, deny] = await Promise.all([onA.approve(id, login.displayCode, PIN), onB.deny(id, 'refused')]);
      assert.deepEqual([approve.status, deny.status].filter((s) => s === 200).length, 1, `round ${round}: ${approve.status}/${deny.status}`);
      const loser = approve.status === 200 ? deny : approve;
      assert.equal(loser.status, 409, JSON.stringify(loser.body));
      const winner = approve.status === 200 ? 'approved' : 'denied';
      outcomes[winner] += 1;
      // Every node sees the same final state, and the audit log holds exactly one settlement.
      for (const node of cluster.nodes) {
        const status = await requestVia(login.jar, `${login.challengeUrl}/status`, node.port);
        assert.equal(((await status.json()) as { state: string }).state, winner);
      }
      const settled = (await cluster.operator.audit.list({ subject: DEMO_PRO.nationalId })).filter((e) => e.details.challengeId === id && e.event.startsWith('challenge.') && e.event !== 'challenge.created');
      assert.deepEqual(settled.map((e) => e.event), [`challenge.${winner}`]);
    }
    assert.equal(outcomes.approved + outcomes.denied, 6);
  });
});
