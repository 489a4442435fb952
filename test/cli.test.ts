// The operator command, run as operators run it: a separate process on the configured storage.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import { DEMO_CONTACTS, DEMO_EXTRACT } from '../src/demo.ts';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

describe('vigie operator command', () => {
  let dataDir: string;
  const vigieWith = (env: Record<string, string>, ...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, VIGIE_DATA_DIR: dataDir, VIGIE_SECRET: 'k'.repeat(40), LOG_LEVEL: 'silent', ...env } }, (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      });
    });
  const vigie = (...args: string[]) => vigieWith({}, ...args);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'vigie-cli-'));
  });
  after(async () => rm(dataDir, { recursive: true, force: true }));

  it('migrates, then says the database is up to date', async () => {
    assert.match((await vigie('migrate')).stdout, /Applied: 001-foundation/);
    assert.match((await vigie('migrate')).stdout, /up to date/);
  });

  it('imports the directory and contacts, idempotently, with counts', async () => {
    const first = await vigie('directory', 'import', DEMO_EXTRACT);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).professionals, 300);
    const again = await vigie('directory', 'import', DEMO_EXTRACT);
    assert.equal(JSON.parse(again.stdout).professionals, 300);
    const contacts = await vigie('directory', 'contacts', DEMO_CONTACTS);
    assert.equal(contacts.code, 0, contacts.stderr);
    const db = new DatabaseSync(join(dataDir, 'vigie.sqlite'));
    assert.deepEqual({ ...(db.prepare('select count(*) as n from professional').get() as object) }, { n: 300 });
    // Operator changes are on record: contacts are an activation path.
    const audited = db.prepare("select event, actor, details from audit_log where event like 'directory.%' order by seq").all() as Array<{ event: string; actor: string; details: string }>;
    assert.deepEqual(audited.map((e) => [e.event, e.actor]), [['directory.imported', 'operator'], ['directory.imported', 'operator'], ['directory.contacts_imported', 'operator']]);
    assert.equal(JSON.parse(audited[2]!.details).file, DEMO_CONTACTS.split('/').pop());
    db.close();
  });

  it('registers, lists and removes a service; a bad redirect URI is refused', async () => {
    const added = await vigie('clients', 'add', '--id', 'vaccination', '--name', 'Carnet de vaccination', '--redirect-uri', 'https://vaccination.example/cb', '--backchannel-logout-uri', 'https://vaccination.example/bcl');
    assert.equal(added.code, 0, added.stderr);
    const metadata = JSON.parse(added.stdout);
    assert.equal(metadata.client_name, 'Carnet de vaccination');
    assert.equal(metadata.backchannel_logout_session_required, true);
    assert.ok(metadata.client_secret.length >= 32);
    assert.match((await vigie('clients', 'list')).stdout, /vaccination\tCarnet de vaccination/);
    const registered = new DatabaseSync(join(dataDir, 'vigie.sqlite'));
    const { payload } = registered.prepare("select payload from oidc_model where model = 'Client' and id = 'vaccination'").get() as { payload: string };
    registered.close();
    assert.ok(!payload.includes(metadata.client_secret), 'shown once, stored only as a keyed hash');
    const bad = await vigie('clients', 'add', '--id', 'bad', '--name', 'X', '--redirect-uri', 'not a url');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /redirect_uris/);
    assert.equal((await vigie('clients', 'remove', 'vaccination')).code, 0);
    const gone = await vigie('clients', 'remove', 'vaccination');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No such client/);
    const db = new DatabaseSync(join(dataDir, 'vigie.sqlite'));
    const audited = db.prepare("select event, details from audit_log where event like 'client.%' order by seq").all() as Array<{ event: string; details: string }>;
    db.close();
    assert.deepEqual(audited.map((e) => e.event), ['client.registered', 'client.removed']);
    assert.ok(!audited[0]!.details.includes(metadata.client_secret), 'the secret is not on record');
  });

  it('rotates the signing keys: add, activate (a day later, or --now), remove a retired key (a session lifetime later, or --now)', async () => {
    const keys = async () => (await vigie('keys', 'list')).stdout.trim().split('\n').map((line) => line.split('\t').slice(0, 2));
    const [[first]] = (await keys()) as [[string]];
    const added = await vigie('keys', 'add');
    assert.equal(added.code, 0, added.stderr);
    const next = /next key (\S+);/.exec(added.stdout)![1]!;
    assert.match((await vigie('keys', 'add')).stderr, /A next key is already published/);
    const early = await vigie('keys', 'activate');
    assert.equal(early.code, 1);
    assert.match(early.stderr, /services that cache the JWKS may not know it before .* with --now if the active key leaked/);
    assert.equal((await vigie('keys', 'activate', '--now')).code, 0);
    assert.deepEqual(new Map(await keys() as Array<[string, string]>), new Map([[next, 'active (signs)'], [first, 'retired']]));
    assert.match((await vigie('keys', 'remove', next)).stderr, /active key cannot be removed/);
    assert.match((await vigie('keys', 'remove', first)).stderr, /keep it until .*, 10 h after its retirement/);
    assert.equal((await vigie('keys', 'remove', first, '--now')).code, 0);
    assert.deepEqual(await keys(), [[next, 'active (signs)']]);
  });

  it('issues an activation code for a known professional only', async () => {
    const issued = await vigie('device', 'activation-code', '810000000017');
    assert.match(issued.stdout, /Activation code for 810000000017: [0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/);
    const unknown = await vigie('device', 'activation-code', '899999999999');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No professional/);
  });

  it('revokes every trusted browser of a known professional, on record', async () => {
    const before = Date.now();
    const done = await vigie('defence', 'forget-browsers', '810000000017');
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /Every browser trusted so far by 810000000017 is now treated as unknown/);
    const db = new DatabaseSync(join(dataDir, 'vigie.sqlite'));
    const state = db.prepare("select trust_reset_at from defence_state where national_id = '810000000017'").get() as { trust_reset_at: number };
    assert.ok(state.trust_reset_at >= before && state.trust_reset_at <= Date.now());
    const audited = db.prepare("select actor from audit_log where event = 'defence.trusted_browsers_forgotten' and subject = '810000000017'").all();
    assert.deepEqual(audited.map((e) => ({ ...e })), [{ actor: 'operator' }]);
    const unknown = await vigie('defence', 'forget-browsers', '899999999999');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /No professional 899999999999/);
    assert.equal((db.prepare("select count(*) as n from defence_state where national_id = '899999999999'").get() as { n: number }).n, 0, 'nothing stored for an unknown identifier');
    db.close();
    // With the defences in the server's memory, this process cannot reach them: it says so rather than pretend.
    const unreachable = await vigieWith({ VIGIE_DEFENCE_STORE: 'memory' }, 'defence', 'forget-browsers', '810000000017');
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /VIGIE_DEFENCE_STORE=memory/);
  });

  it('verifies the audit chain and names the first tampered entry', async () => {
    const intact = await vigie('audit', 'verify');
    assert.equal(intact.code, 0);
    assert.match(intact.stdout, /intact: \d+ entries/);
    // A head recorded outside the database catches what the chain alone cannot: entries deleted from its end.
    const head = (await vigie('audit', 'head')).stdout.trim();
    assert.match(head, /^\d+:[0-9a-f]{64}$/);
    assert.equal((await vigie('audit', 'verify', '--expect', head)).code, 0);
    const db = new DatabaseSync(join(dataDir, 'vigie.sqlite'));
    const last = db.prepare('select * from audit_log order by seq desc limit 1').get() as Record<string, string | number>;
    db.prepare('delete from audit_log where seq = ?').run(last.seq!);
    assert.equal((await vigie('audit', 'verify')).code, 0);
    const truncated = await vigie('audit', 'verify', '--expect', head);
    assert.equal(truncated.code, 2);
    assert.match(truncated.stdout, /BROKEN at entry \d+: the head recorded earlier is gone/);
    db.prepare('insert into audit_log (seq, at, actor, event, subject, details, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?)').run(last.seq!, last.at!, last.actor!, last.event!, last.subject ?? null, last.details!, last.prev_hash!, last.hash!);
    assert.match((await vigie('audit', 'verify', '--expect', 'not-a-head')).stderr, /--expect takes SEQ:HASH/);
    db.prepare("update audit_log set details = '{\"forged\":true}' where seq = 1").run();
    db.close();
    const broken = await vigie('audit', 'verify');
    assert.equal(broken.code, 2);
    assert.match(broken.stdout, /BROKEN at entry 1/);
  });

  it('prints the configuration table and the help', async () => {
    assert.match((await vigie('config')).stdout, /VIGIE_CHALLENGE_TTL_SECONDS/);
    assert.match((await vigie('--help')).stdout, /vigie device activation-code NATIONAL_ID/);
  });
});
