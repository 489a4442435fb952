import assert from 'node:assert/strict';
import { run } from '../../src/cli/main.ts';
import type { TestVigie } from './harness.ts';

/** Runs the operator command in this process against the test server's data folder. */
export async function operatorCli(t: TestVigie, args: string[]): Promise<string> {
  const saved = { ...process.env };
  const log = console.log;
  const lines: string[] = [];
  Object.assign(process.env, { NODE_ENV: 'test', VIGIE_DATA_DIR: t.vigie.config.dataDir, VIGIE_SECRET: t.vigie.config.secret, LOG_LEVEL: 'silent', VIGIE_DEMO: 'false' });
  if (t.vigie.config.databaseUrl) process.env.DATABASE_URL = t.vigie.config.databaseUrl;
  else delete process.env.DATABASE_URL;
  delete process.env.REDIS_URL;
  console.log = (...parts: unknown[]) => lines.push(parts.join(' '));
  try {
    assert.equal(await run(args), 0);
  } finally {
    console.log = log;
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
  return lines.join('\n');
}
