import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describeSettings, loadConfig, ConfigError } from './index.ts';

describe('configuration', () => {
  it('applies documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.issuer, 'http://localhost:3000');
    assert.equal(config.challengeTtlSeconds, 60);
    assert.equal(config.demo, true);
    assert.equal(config.production, false);
  });

  it('names every invalid variable at once', () => {
    assert.throws(() => loadConfig({ PORT: 'abc', VIGIE_CHALLENGE_TTL_SECONDS: '-5', DATABASE_URL: 'mysql://x' }), (error: ConfigError) => {
      assert.match(error.message, /PORT/);
      assert.match(error.message, /VIGIE_CHALLENGE_TTL_SECONDS/);
      assert.match(error.message, /DATABASE_URL: must be a postgres:\/\/ URL/);
      return true;
    });
  });

  it('refuses unsafe production settings with a clear message', () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'production', VIGIE_DEMO: 'true' }), /VIGIE_SECRET must be set[\s\S]*VIGIE_DEMO must be false[\s\S]*https[\s\S]*VIGIE_METRICS_TOKEN must be set[\s\S]*SMTP_URL must be set[\s\S]*VIGIE_SMS_URL must be set/);
    const safe = { NODE_ENV: 'production', VIGIE_SECRET: 'x'.repeat(40), VIGIE_DEMO: 'false', VIGIE_ISSUER: 'https://vigie.example', VIGIE_METRICS_TOKEN: 'm'.repeat(24), SMTP_URL: 'smtps://vigie:pass@smtp.example:465', VIGIE_SMS_URL: 'https://sms.example/send' };
    const ok = loadConfig(safe);
    assert.equal(ok.demo, false);
    const { VIGIE_METRICS_TOKEN: _token, ...withoutToken } = safe;
    assert.throws(() => loadConfig(withoutToken), /Unsafe production configuration:\n  VIGIE_METRICS_TOKEN must be set/);
    assert.throws(() => loadConfig({ ...safe, VIGIE_SMS_URL: 'http://sms.example/send' }), /Unsafe production configuration:\n  VIGIE_SMS_URL must be an https:\/\/ URL/);
    for (const query of ['requireTLS=false', 'tls.rejectUnauthorized=false', 'pool=true&requireTLS=false']) {
      assert.throws(() => loadConfig({ ...safe, SMTP_URL: `smtp://relay.example:587/?${query}` }), /SMTP_URL must not turn TLS checks off/, query);
    }
    assert.equal(loadConfig({ ...safe, SMTP_URL: 'smtp://127.0.0.1:25/?tls.rejectUnauthorized=false' }).production, true, 'a relay on this machine may use a self-signed certificate');
  });

  it('refuses a short secret', () => {
    assert.throws(() => loadConfig({ VIGIE_SECRET: 'short' }), /VIGIE_SECRET: must hold at least 32 characters/);
  });

  it('the README documents every setting (npm run docs:config regenerates it)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    assert.ok(readme.includes(describeSettings()), 'README configuration table is stale: run `npm run docs:config`');
  });
});
