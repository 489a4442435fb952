import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { pino, type Logger } from 'pino';
import { createLogger } from './log.ts';
import { openRedis } from '../store/redis/client.ts';

const PASSWORD = 'never-in-the-logs-5e3f';

/** What a logger wrote, as text. */
function capture(make: (stream: NodeJS.WritableStream) => Logger) {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { logger: make(stream), text: () => text };
}

it('a Redis that refuses the password: its error is logged, the password is not', async () => {
  // A Redis whose password was rotated: it answers every command with WRONGPASS.
  // One error reply per command (RESP arrays: `*N` lines), as a real server answers a pipeline.
  const server = createServer((socket) =>
    socket.on('data', (data: Buffer) => {
      const commands = data.toString('latin1').split('\r\n').filter((line) => /^\*\d+$/.test(line)).length;
      socket.write('-WRONGPASS invalid username-password pair or user is disabled.\r\n'.repeat(commands));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const errors: Error[] = [];
  try {
    await openRedis(`redis://default:${PASSWORD}@127.0.0.1:${port}`, { timeoutMs: 1500, onError: (error) => errors.push(error) }).then(
      () => assert.fail('connected'),
      (error: Error) => errors.push(error),
    );
  } finally {
    server.close();
  }
  assert.ok(errors.length > 0);
  const ours = capture((stream) => createLogger('info', stream));
  const plain = capture((stream) => pino({ level: 'info' }, stream));
  for (const error of errors) {
    ours.logger.warn({ err: error }, 'Redis connection error');
    plain.logger.warn({ err: error }, 'Redis connection error');
  }
  assert.ok(plain.text().includes(PASSWORD), 'pino alone would log it: ioredis puts the command on the error');
  assert.match(ours.text(), /WRONGPASS/);
  assert.ok(!ours.text().includes(PASSWORD), ours.text());
});

it('nested and aggregated errors lose their commands too; the rest is kept', () => {
  const inner = Object.assign(new Error('inner'), { command: { name: 'evalsha', args: ['key', 'authorization-code-xyz'] }, code: 'EINNER' });
  const outer = Object.assign(new AggregateError([inner], 'several failed'), { lastError: Object.assign(new Error('last'), { command: { name: 'get', args: ['challenge:abc'] } }) });
  const { logger, text } = capture((stream) => createLogger('info', stream));
  logger.error({ err: outer }, 'failed');
  assert.ok(!text().includes('authorization-code-xyz') && !text().includes('challenge:abc'), text());
  assert.match(text(), /EINNER/);
  assert.match(text(), /several failed/);
  assert.deepEqual(inner.command, { name: 'evalsha', args: ['key', 'authorization-code-xyz'] }, 'the live error is left as it was');
});

it('a live value with a cycle, or a non-error logged as err, is logged as pino would', () => {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const { logger, text } = capture((stream) => createLogger('info', stream));
  logger.error({ err: Object.assign(new Error('with a cycle'), { context: cyclic }) }, 'failed');
  logger.error({ err: { command: 'kept: not an error' } }, 'odd');
  assert.match(text(), /with a cycle/);
  assert.match(text(), /\[Circular\]/);
  assert.match(text(), /kept: not an error/);
});
