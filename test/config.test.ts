import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it, beforeAll } from 'vitest';
import { ConfigError, loadConfig } from '@tether/server';

const CLI = 'packages/server/dist/cli.js';

describe('configuration', () => {
  it('applies the contract defaults', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.accessTtlSeconds).toBe(15 * 60);
    expect(c.refreshTtlSeconds).toBe(7 * 86400);
    expect(c.tokenExpiryWarningSeconds).toBe(300);
    expect(c.guestTokenTtlSeconds).toBe(3600);
    expect(c.allowQueryToken).toBe(false);
    expect(c.pingIntervalMs).toBe(25000);
    expect(c.pingTimeoutMs).toBe(20000);
    expect(c.dataDir).toBe('./data');
  });

  it('JWT_EXPIRATION_SECONDS overrides the minutes value', () => {
    expect(loadConfig({ JWT_EXPIRATION_MINUTES: '60', JWT_EXPIRATION_SECONDS: '3' }).accessTtlSeconds).toBe(3);
  });

  it.each([
    ['PORT', 'abc', /PORT must be an integer from 0 to 65535/],
    ['PORT', '70000', /PORT must be an integer from 0 to 65535/],
    ['ALLOW_QUERY_TOKEN', 'maybe', /ALLOW_QUERY_TOKEN must be true or false/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must be a URL starting with postgres:\/\//],
    ['ALLOWED_ORIGINS', 'https://a.example/path', /ALLOWED_ORIGINS must be a comma-separated list of origins/],
    ['JWT_SECRET', 'short', /JWT_SECRET must be a secret of at least 32 characters$/],
    ['HISTORY_SPREAD', '3', /HISTORY_SPREAD must be one of 1, 2, 4, 8, 16, 32, 64/],
  ])('refuses %s=%s with one line naming it', (name, value, message) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });

  it.each([
    [{ RECEIPT_PUSH_AFTER_MS: '5000' }, /RECEIPT_PUSH_AFTER_MS needs PUSH_WEBHOOK_URL/],
    [
      { RECEIPT_PUSH_AFTER_MS: '5000', PUSH_WEBHOOK_URL: 'http://127.0.0.1:9/push', DELIVERY_RECORD: 'off' },
      /RECEIPT_PUSH_AFTER_MS needs DELIVERY_RECORD users or all/,
    ],
    [{ DELIVERY_RECORD: 'some' }, /DELIVERY_RECORD must be off, users or all/],
  ])('refuses delivery settings that cannot work together: %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('never echoes a refused secret value', () => {
    expect(() => loadConfig({ JWT_SECRET: 'tooshortsecret' })).toThrow(/JWT_SECRET/);
    try {
      loadConfig({ JWT_SECRET: 'tooshortsecret' });
    } catch (e) {
      expect((e as Error).message).not.toContain('tooshortsecret');
    }
  });
});

describe('tether serve', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) {
      const build = spawnSync('npx', ['tsc', '-b'], { encoding: 'utf8' });
      if (build.status !== 0) throw new Error(`build failed: ${build.stdout}${build.stderr}`);
    }
  }, 120_000);

  it('exits non-zero with one line naming a bad setting', () => {
    const run = spawnSync(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, PORT: 'not-a-port' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).not.toBe(0);
    const lines = run.stderr.split('\n').filter((l) => l.trim().length > 0);
    expect(lines).toEqual(['Invalid configuration: PORT must be an integer from 0 to 65535 (got "not-a-port")']);
  });

  it('a flag mirrors its variable and wins over it', () => {
    const run = spawnSync(process.execPath, [CLI, 'serve', '--ping-interval-ms', 'soon'], {
      env: { ...process.env, PING_INTERVAL_MS: '1000' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr.trim()).toBe(
      'Invalid configuration: PING_INTERVAL_MS must be an integer from 100 to 600000 (got "soon")',
    );
  });

  it('--help lists every setting', () => {
    const run = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(run.status).toBe(0);
    for (const name of [
      'PORT',
      'HOST',
      'DATA_DIR',
      'DATABASE_URL',
      'REDIS_URL',
      'JWT_EXPIRATION_MINUTES',
      'ALLOWED_ORIGINS',
      'PING_TIMEOUT_MS',
    ]) {
      expect(run.stdout).toContain(`[${name}]`);
    }
  });
});

describe('README', () => {
  it('documents every setting in its configuration table', async () => {
    const { readFileSync } = await import('node:fs');
    const { SETTINGS } = await import('@tether/server');
    const readme = readFileSync('README.md', 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## HTTP API'));
    for (const name of Object.keys(SETTINGS)) expect(table, `README lacks ${name}`).toContain(`\`${name}\``);
  });
});
