import assert from 'node:assert/strict';
import type { TestVigie } from './harness.ts';

const seen = new WeakMap<TestVigie, Set<string>>();

/** Outbox messages to `recipient` not read before by this test process (then marked read). */
async function unread(t: TestVigie, channel: 'email' | 'sms', recipient: string, filter: (m: { subject: string | null }) => boolean = () => true) {
  await t.vigie.authenticator.activation.drain();
  const read = seen.get(t) ?? new Set<string>();
  seen.set(t, read);
  const messages = (await t.vigie.authenticator.outbox.list({ channel, recipient, limit: 100 })).filter((m) => !read.has(m.id) && filter(m));
  messages.forEach((m) => read.add(m.id));
  return messages;
}

/**
 * The two codes of the latest activation of `nationalId`, read from the database outbox the way a
 * professional reads their phone and mailbox; exactly one new message of each is expected.
 * With `email: false` only the SMS is read (the email went through SMTP).
 */
export async function readCodes(t: TestVigie, nationalId: string, options: { email?: boolean } = {}): Promise<{ email: string; sms: string }> {
  const contacts = await t.vigie.directory.getContacts(nationalId);
  assert.ok(contacts?.email && contacts.mobile, `${nationalId} has both contacts`);
  const code = async (channel: 'email' | 'sms', recipient: string) => {
    const messages = await unread(t, channel, recipient, (m) => channel === 'sms' || /code d’activation/.test(m.subject ?? ''));
    assert.equal(messages.length, 1, `one new ${channel} to ${recipient}`);
    return /\b(\d{6})\b/.exec(messages[0]!.body)![1]!;
  };
  return { sms: await code('sms', contacts.mobile), email: options.email === false ? '' : await code('email', contacts.email) };
}

/** The "ce n'était pas moi" link of the one new activation notice sent to `email` through the outbox. */
export async function noticeLink(t: TestVigie, email: string, options: { notQuoting?: string } = {}): Promise<string> {
  const notices = await unread(t, 'email', email, (m) => m.subject === 'Une nouvelle e-CPS a été activée');
  assert.equal(notices.length, 1, 'one new activation notice');
  if (options.notQuoting) assert.ok(!notices[0]!.body.includes(options.notQuoting), 'the notice does not quote what the activating person wrote');
  return /(http\S+\/e-cps\/revoquer\?token=\S+)/.exec(notices[0]!.body)![1]!;
}

/** Marks everything already in the outbox as read. */
export async function skipOutbox(t: TestVigie, recipient: string): Promise<void> {
  await unread(t, 'email', recipient);
  await unread(t, 'sms', recipient);
}
