import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig, type SettingName } from '@tether/server';
import { startHelpdesk, type Helpdesk, type HelpdeskOptions } from '../src/server/helpdesk.js';

export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestHelpdesk {
  helpdesk: Helpdesk;
  url: string;
  /** JSON in, `{status, body}` out; `token` goes in `Authorization: Bearer`. */
  http(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown },
  ): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

/**
 * The helpdesk on a fresh store: SQLite in a temp DATA_DIR, or a new randomly named PostgreSQL
 * database (dropped on close). Logs are swallowed.
 */
export async function startTestHelpdesk(
  store: 'sqlite' | 'postgres',
  env: Partial<Record<SettingName, string>> = {},
  options: HelpdeskOptions = {},
): Promise<TestHelpdesk> {
  const dataDir = mkdtempSync(join(tmpdir(), 'helpdesk-test-'));
  let dbName: string | undefined;
  let databaseUrl: string | undefined;
  if (store === 'postgres') {
    dbName = `helpdesk_test_${randomBytes(6).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${dbName}`);
    databaseUrl = `postgres://postgres@127.0.0.1:5432/${dbName}`;
  }
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    API_KEYS: randomBytes(24).toString('base64url'),
    LOG_LEVEL: 'warn',
    SHUTDOWN_GRACE_MS: '200',
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
    ...env,
  });
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const helpdesk = await startHelpdesk(config, { logDestination: sink, ...options });
  const url = helpdesk.url;
  return {
    helpdesk,
    url,
    async http(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.token !== undefined) headers['authorization'] = `Bearer ${opts.token}`;
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(url + path, {
        method,
        headers,
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      });
      const text = await res.text();
      return { status: res.status, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
    },
    async close() {
      await helpdesk.close();
      rmSync(dataDir, { recursive: true, force: true });
      if (dbName !== undefined) await adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    },
  };
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
