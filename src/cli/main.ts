import { parseArgs } from 'node:util';
import { basename } from 'node:path';
import { join } from 'node:path';
import { createLogger } from '../lib/log.ts';
import { describeSettings, loadConfig } from '../config/index.ts';
import { createVigie, type Vigie } from '../server.ts';
import { migrate, openDatabase } from '../store/db.ts';
import { importContacts, importExtract } from '../directory/import.ts';
import { DeviceSimulator } from '../device/simulator.ts';
import { VigieError } from '../lib/errors.ts';
import { SqlOutboxStore } from '../notify/outbox.ts';
import type { ClientInput } from '../oidc/clients.ts';
import type { DefenceStatus } from '../defence/service.ts';
import { REQUEST_KINDS } from '../defence/store.ts';

const HELP = `vigie — operator and simulator commands (run through npm: \`npx vigie …\`)

Operator (uses the configured storage: VIGIE_DATA_DIR or DATABASE_URL):
  vigie migrate                                    apply database migrations
  vigie config                                     list every setting with its default
  vigie clients list
  vigie clients add --id ID --name NAME --redirect-uri URI [--redirect-uri URI…]
        [--post-logout-uri URI] [--backchannel-logout-uri URI]
        [--auth-method client_secret_basic|client_secret_post|private_key_jwt] [--jwks-uri URI]
  vigie clients remove ID
  vigie keys list                                  the signing keys: which signs, which are published
  vigie keys add                                   publish a next key, which does not sign yet
  vigie keys activate [--now]                      the next key signs, the active one retires (--now: within a
                                                   day of adding it, when the active key leaked)
  vigie keys remove KID [--now]                    stop publishing a retired (or next) key (--now: within a
                                                   session lifetime of retiring it: tokens it signed stop verifying)
                                                   Nodes read the keys when they start: restart them (rolling) after each step.
  vigie directory import FILE                      import an RPPS open-data extract (PS_LibreAcces_Personne_activite_*.txt)
  vigie directory contacts FILE                    import contacts (CSV: national_id,email,mobile)
  vigie device activation-code NATIONAL_ID         issue a one-time activation code
  vigie audit verify [--expect SEQ:HASH]           check the audit log's hash chain (and a head recorded earlier)
  vigie audit head                                 print SEQ:HASH of the last entry, to record outside the database
  vigie audit list [--subject NATIONAL_ID]
  vigie defence status [--minutes M]               during an attack: decisions, most requested professionals, busiest
                                                   sources, who is held, blocks (default: the last 60 minutes)
  vigie defence forget-browsers NATIONAL_ID        revoke every trusted browser of a professional (a stolen or
                                                   shared workstation): their next logins get typed codes and holds;
                                                   sessions still open are ended from the wallet
  vigie blocks list [--all]                        push-bombing blocks in force (--all: lifted and ended ones too)
  vigie blocks lift ID                             lift a block
  vigie blocks add --ip ADDRESS [--hours H] [--site]
                                                   block the address's /24 (/56; with --site its whole IPv6 /48)
                                                   for every professional (default 24 h)
  vigie outbox [--channel email|sms] [--to ADDRESS] [--limit N]
                                                   emails and SMS kept in the database outbox (no SMTP_URL / VIGIE_SMS_URL)

Authenticator simulator (talks to a running provider; key kept in --key, default DATA_DIR/simulator-device.json):
  vigie device activate --national-id ID --code CODE --pin PIN [--issuer URL]
  vigie device list                                pending requests
  vigie device show ID
  vigie device outcome ID                          a request in any state, and whether it may still be reported
  vigie device approve ID --code CODE --pin PIN
  vigie device deny ID [--not-me]
  vigie device report ID                           "not me" for a request withdrawn or expired unanswered
`;

type Flags = Record<string, string | boolean | string[] | undefined>;

function flag(flags: Flags, name: string): string | undefined {
  const value = flags[name];
  return Array.isArray(value) ? value[0] : typeof value === 'string' ? value : undefined;
}

function required(flags: Flags, name: string): string {
  const value = flag(flags, name);
  if (!value) throw new Error(`--${name} is required`);
  return value;
}

async function withVigie<T>(body: (vigie: Vigie) => Promise<T>): Promise<T> {
  const vigie = await createVigie(loadConfig(), { logger: createLogger('error') });
  try {
    return await body(vigie);
  } finally {
    await vigie.close();
  }
}

/** The running servers' defences, when this process can reach them: not in a server's own memory. */
function sharedDefences(v: Vigie): Vigie['defence'] {
  if (v.config.defenceStore === 'memory') throw new Error('VIGIE_DEFENCE_STORE=memory: the defences live in the running server\'s memory, out of this command\'s reach');
  return v.defence;
}

function print(value: unknown): void {
  console.log(typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

async function simulatorCommand(action: string | undefined, args: string[], flags: Flags): Promise<number> {
  const config = loadConfig();
  const keyFile = flag(flags, 'key') ?? join(config.dataDir, 'simulator-device.json');
  if (action === 'activate') {
    const simulator = await DeviceSimulator.create(flag(flags, 'issuer') ?? config.issuer, { file: keyFile });
    const result = await simulator.activate({ nationalId: required(flags, 'national-id'), activationCode: required(flags, 'code'), pin: required(flags, 'pin') });
    print(result.status === 201 ? `Device ${result.body.id} activated; key saved in ${keyFile}` : result.body);
    return result.status === 201 ? 0 : 1;
  }
  const simulator = await DeviceSimulator.load(keyFile).catch(() => {
    throw new Error(`No simulator key in ${keyFile}: run \`vigie device activate\` first.`);
  });
  const id = args[0];
  const result =
    action === 'list' ? await simulator.listChallenges()
    : action === 'show' && id ? await simulator.show(id)
    : action === 'approve' && id ? await simulator.approve(id, required(flags, 'code'), required(flags, 'pin'))
    : action === 'deny' && id ? await simulator.deny(id, flags['not-me'] ? 'not_me' : 'refused')
    : action === 'outcome' && id ? await simulator.outcome(id)
    : action === 'report' && id ? await simulator.report(id)
    : undefined;
  if (!result) throw new Error(`Unknown device command. ${HELP}`);
  print(result.body);
  return result.status < 300 ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      id: { type: 'string' }, name: { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true },
      'post-logout-uri': { type: 'string', multiple: true }, 'backchannel-logout-uri': { type: 'string' },
      'auth-method': { type: 'string' }, 'jwks-uri': { type: 'string' }, subject: { type: 'string' },
      'national-id': { type: 'string' }, code: { type: 'string' }, pin: { type: 'string' }, issuer: { type: 'string' },
      key: { type: 'string' }, 'not-me': { type: 'boolean' },
      all: { type: 'boolean' }, ip: { type: 'string' }, hours: { type: 'string' }, site: { type: 'boolean' },
      now: { type: 'boolean' },
      channel: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' }, expect: { type: 'string' }, minutes: { type: 'string' },
    },
  });
  const [group, action, ...rest] = positionals;
  const flags = values as Flags;
  if (values.help || !group) {
    print(HELP);
    return 0;
  }
  switch (`${group} ${action ?? ''}`.trim()) {
    case 'migrate': {
      const config = loadConfig();
      const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      const applied = await migrate(db);
      await db.close();
      print(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date.');
      return 0;
    }
    case 'outbox': {
      const channel = flag(flags, 'channel');
      if (channel && channel !== 'email' && channel !== 'sms') throw new Error('--channel is email or sms');
      const config = loadConfig();
      const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      try {
        await migrate(db);
        const to = flag(flags, 'to');
        const messages = await new SqlOutboxStore(db).list({ ...(channel ? { channel: channel as 'email' | 'sms' } : {}), ...(to ? { recipient: to } : {}), limit: Number(flag(flags, 'limit') ?? 20) || 20 });
        if (!messages.length) print('The outbox is empty.');
        for (const m of messages.reverse()) print(`--- ${m.channel} to ${m.recipient} at ${new Date(m.createdAt).toISOString()}${m.subject ? `\n${m.subject}` : ''}\n${m.body}\n`);
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'config':
      print(describeSettings());
      return 0;
    case 'clients list':
      return withVigie(async (v) => {
        for (const c of await v.clients.list()) print(`${String(c.client_id)}\t${String(c.client_name)}\t${String(c.token_endpoint_auth_method)}\t${(c.redirect_uris as string[]).join(' ')}`);
        return 0;
      });
    case 'clients add':
      return withVigie(async (v) => {
        const input: ClientInput = {
          client_id: required(flags, 'id'),
          client_name: required(flags, 'name'),
          redirect_uris: (values['redirect-uri'] as string[] | undefined) ?? [],
          post_logout_redirect_uris: (values['post-logout-uri'] as string[] | undefined) ?? [],
          ...(flag(flags, 'backchannel-logout-uri') ? { backchannel_logout_uri: flag(flags, 'backchannel-logout-uri') } : {}),
          ...(flag(flags, 'auth-method') ? { token_endpoint_auth_method: flag(flags, 'auth-method') as ClientInput['token_endpoint_auth_method'] } : {}),
          ...(flag(flags, 'jwks-uri') ? { jwks_uri: flag(flags, 'jwks-uri') } : {}),
        };
        const metadata = await v.clients.put(input);
        await v.audit.append({ actor: 'operator', event: 'client.registered', details: { clientId: input.client_id, name: input.client_name, redirectUris: input.redirect_uris, authMethod: metadata.token_endpoint_auth_method ?? null } });
        print(metadata);
        if (metadata.client_secret) console.error('Keep the client_secret now: it is shown once here and stored for the provider only.');
        return 0;
      });
    case 'clients remove':
      return withVigie(async (v) => {
        const clientId = rest[0] ?? required(flags, 'id');
        await v.clients.remove(clientId);
        await v.audit.append({ actor: 'operator', event: 'client.removed', details: { clientId } });
        print('Removed.');
        return 0;
      });
    case 'keys list':
      return withVigie(async (v) => {
        for (const k of await v.signingKeys.list()) print(`${k.kid}\t${k.state}${k.state === 'active' ? ' (signs)' : ''}\tcreated ${iso(k.createdAt)}${k.changedAt === null ? '' : `\tsince ${iso(k.changedAt)}`}`);
        return 0;
      });
    case 'keys add':
      return withVigie(async (v) => {
        const key = await v.signingKeys.add();
        print(`Published next key ${key.kid}; it does not sign yet. Restart every node (rolling) so that all publish it, then run \`vigie keys activate\` in a day.`);
        return 0;
      });
    case 'keys activate':
      return withVigie(async (v) => {
        const { activated, retired } = await v.signingKeys.activate({ now: Boolean(flags.now) });
        print(`Key ${activated} signs once each node has restarted (rolling restart now); retired: ${retired.join(', ') || '-'}, still published so that the tokens it signed verify. Remove it a session lifetime (VIGIE_SESSION_TTL_HOURS) after the last node restarted (\`vigie keys remove KID\`).`);
        return 0;
      });
    case 'keys remove':
      return withVigie(async (v) => {
        const kid = rest[0];
        if (!kid) throw new Error('KID is required (see `vigie keys list`)');
        await v.signingKeys.remove(kid, { now: Boolean(flags.now) });
        print(`Key ${kid} is no longer published once each node has restarted (rolling restart now).`);
        return 0;
      });
    case 'directory import':
    case 'directory contacts':
      return withVigie(async (v) => {
        const file = rest[0];
        if (!file) throw new Error('FILE is required');
        const importer = action === 'import' ? importExtract : importContacts;
        const result = await importer(file, v.directory, {
          onProgress: (p) => process.stderr.write(`\r${p.lines} lines, ${p.professionals} records, ${p.errors} errors`),
          onError: (e) => process.stderr.write(`\nline ${e.line}: ${e.message}\n`),
        });
        process.stderr.write('\n');
        // Contacts are an activation path: who replaced them, and when, must be on record.
        await v.audit.append({ actor: 'operator', event: action === 'import' ? 'directory.imported' : 'directory.contacts_imported', details: { file: basename(file), ...result } });
        print(result);
        return 0;
      });
    case 'device activation-code':
      return withVigie(async (v) => {
        const nationalId = rest[0];
        if (!nationalId) throw new Error('NATIONAL_ID is required');
        const { code, expiresAt } = await v.devices.createActivationCode(nationalId);
        print(`Activation code for ${nationalId}: ${code} (valid until ${new Date(expiresAt).toISOString()})`);
        return 0;
      });
    case 'audit head':
      return withVigie(async (v) => {
        const head = await v.audit.head();
        print(head ? `${head.seq}:${head.hash}` : '0:');
        return 0;
      });
    case 'audit verify':
      return withVigie(async (v) => {
        const expected = flag(flags, 'expect');
        const match = expected === undefined ? undefined : /^(\d+):([0-9a-f]{64})$/.exec(expected);
        if (expected !== undefined && !match) throw new Error('--expect takes SEQ:HASH, as printed by `vigie audit head`');
        const result = await v.audit.verify(match ? { expect: { seq: Number(match[1]), hash: match[2]! } } : {});
        print(result.ok ? `Audit chain intact: ${result.entries} entries.` : `Audit chain BROKEN at entry ${result.brokenAt}: ${result.reason} (${result.entries} entries verified before it).`);
        return result.ok ? 0 : 2;
      });
    case 'defence status':
      return withVigie(async (v) => {
        const minutes = Number(flag(flags, 'minutes') ?? 60);
        if (!Number.isInteger(minutes) || minutes < 1 || minutes > 7 * 24 * 60) throw new Error('--minutes must be a whole number of minutes, up to a week');
        print(statusReport(await v.defence.status(minutes), minutes));
        return 0;
      });
    case 'defence forget-browsers':
      return withVigie(async (v) => {
        const nationalId = rest[0];
        if (!nationalId) throw new Error('NATIONAL_ID is required');
        if (!(await v.directory.get(nationalId))) throw new Error(`No professional ${nationalId} in the directory.`);
        await sharedDefences(v).forgetTrustedBrowsers(nationalId, 'operator');
        print(`Every browser trusted so far by ${nationalId} is now treated as unknown.`);
        return 0;
      });
    case 'blocks list':
      return withVigie(async (v) => {
        const blocks = await v.defence.listBlocks({ includeInactive: Boolean(flags.all) });
        if (!blocks.length) print('No block in force.');
        for (const b of blocks) {
          const state = b.liftedAt ? `lifted ${new Date(b.liftedAt).toISOString()} by ${b.liftedBy}` : b.expiresAt <= v.clock.now() ? 'ended' : 'active';
          const target = b.scope === 'global' ? 'everyone' : b.nationalId;
          print(`${b.id}\t${b.scope}\t${b.reason}\t${b.prefix ?? '-'}\t${b.browserId ? `browser:${b.browserId.slice(0, 8)}…` : '-'}\t${target}\t${b.place ?? ''}\tuntil ${new Date(b.expiresAt).toISOString()}\t${state}`);
        }
        return 0;
      });
    case 'blocks lift':
      return withVigie(async (v) => {
        const id = rest[0];
        if (!id) throw new Error('ID is required (see `vigie blocks list`)');
        const block = await sharedDefences(v).liftBlock(id, 'operator');
        print(`Lifted ${block.scope} block ${block.id} (${block.prefix ?? block.browserId ?? ''}).`);
        return 0;
      });
    case 'blocks add':
      return withVigie(async (v) => {
        const hours = Number(flag(flags, 'hours') ?? 24);
        if (!Number.isFinite(hours) || hours <= 0) throw new Error('--hours must be a positive number');
        const block = await sharedDefences(v).blockPrefix(required(flags, 'ip'), hours, 'operator', { site: Boolean(flags.site) });
        print(`Blocked ${block.prefix} for everyone until ${new Date(block.expiresAt).toISOString()} (id ${block.id}).`);
        return 0;
      });
    case 'audit list':
      return withVigie(async (v) => {
        const subject = flag(flags, 'subject');
        for (const e of await v.audit.list(subject ? { subject } : {})) print(`${e.seq}\t${new Date(e.at).toISOString()}\t${e.actor}\t${e.event}\t${e.subject ?? ''}\t${JSON.stringify(e.details)}`);
        return 0;
      });
    default:
      if (group === 'device') return simulatorCommand(action, rest, flags);
      print(HELP);
      return 64;
  }
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `vigie defence status`, as text for a terminal. */
function statusReport(s: DefenceStatus, minutes: number): string {
  const count = (kind: string) => s.decisions.filter((d) => d.kind === kind).reduce((sum, d) => sum + d.count, 0);
  const requests = REQUEST_KINDS.reduce((sum, kind) => sum + count(kind), 0);
  const reasons = new Map<string, number>();
  for (const d of s.decisions) if (d.kind === 'silent' || d.kind === 'refused') for (const r of d.reasons) reasons.set(r, (reasons.get(r) ?? 0) + d.count);
  const global = s.blocks.filter((b) => b.scope === 'global').length;
  const lines = [
    `Defences over the last ${minutes} min (${iso(s.since)} to ${iso(s.now)})`,
    // The journal leaves out what the defences had no say in: trusted browsers' notified requests, identifiers without an activated e-CPS.
    `Requests weighed by the defences: ${requests} (notified ${count('push')}, held silent ${count('silent')}, refused ${count('refused')}); reports: not me ${count('not_me')}, wrong code ${count('wrong_code')}`,
    `Held or refused because: ${[...reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ') || '-'}`,
    'Most requested professionals:',
    ...(s.professionals.length ? s.professionals.map((p) => `  ${p.nationalId}\t${p.requests} requests\t${p.pushed} notified`) : ['  -']),
    'Busiest sources (untrusted browsers):',
    ...(s.prefixes.length ? s.prefixes.map((p) => `  ${p.prefix}\t${p.requests} requests\t${p.professionals} professionals`) : ['  -']),
    'Held now (their untrusted requests arrive silently):',
    ...(s.held.length
      ? s.held.map((h) => `  ${h.nationalId}\t${h.underAttackUntil > s.now ? `attack mode until ${iso(h.underAttackUntil)}` : `back-off until ${iso(h.backoffUntil)}`}\t${h.strikes} strikes`)
      : ['  -']),
    `Blocks in force: ${s.blocks.length} (${global} global): vigie blocks list`,
    'Rate counters and the circuit breaker: /metrics (vigie_login_decisions_total, vigie_defence_signals_total).',
  ];
  return lines.join('\n');
}

export function cli(): void {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error instanceof VigieError || error instanceof Error ? `error: ${error.message}` : error);
      process.exit(1);
    },
  );
}

if (import.meta.main) cli();
