import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TetherError } from '@tether/protocol';
import { ConfigError, configFrom } from '../packages/server/src/config/index.js';
import { openStore, runMigrations, type OpenStore } from '../packages/server/src/store/index.js';
import type { Clock } from '../packages/server/src/util/clock.js';
import { createLogger } from '../packages/server/src/util/logger.js';

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A back end under test: how to open a fresh, empty store and how to clean up after. */
interface Backend {
  name: string;
  kind: 'sqlite' | 'postgres';
  setup(): Promise<{ databaseUrl?: string; dataDir: string; teardown(): Promise<void> }>;
}

const sqlite: Backend = {
  name: 'sqlite',
  kind: 'sqlite',
  async setup() {
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-store-'));
    return { dataDir, teardown: async () => rmSync(dataDir, { recursive: true, force: true }) };
  },
};

/** A fresh PostgreSQL database; `drop` removes it. */
async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tether_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Runs `queries` on `url` with a client of its own; returns the last result's rows. */
async function onDatabase(url: string, ...queries: string[]): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let rows: unknown[] = [];
    for (const query of queries) rows = (await client.query(query)).rows;
    return rows;
  } finally {
    await client.end();
  }
}

/** An app's own tables, named like Tether's, in `public`: Tether must neither need nor touch them. */
const APP_TABLES = [
  'CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL UNIQUE, karma int NOT NULL DEFAULT 0)',
  'CREATE TABLE sessions (sid text PRIMARY KEY, user_id int REFERENCES users(id), data jsonb)',
  'CREATE TABLE audit_log (id bigserial PRIMARY KEY, action text NOT NULL, at timestamptz NOT NULL DEFAULT now())',
  "INSERT INTO users (username, karma) VALUES ('ada', 3), ('linus', 5)",
  `INSERT INTO sessions VALUES ('s1', 1, '{"cart": [1, 2]}')`,
  "INSERT INTO audit_log (action, at) VALUES ('app_started', '2026-01-01T00:00:00Z')",
];

/** Everything about the app's tables that Tether could change: columns and rows. */
const APP_SNAPSHOT = `SELECT json_build_object(
  'columns', (SELECT json_agg(table_name || '.' || column_name || ':' || data_type ORDER BY table_name, ordinal_position)
              FROM information_schema.columns WHERE table_schema = 'public'),
  'users', (SELECT json_agg(u ORDER BY id) FROM users u),
  'sessions', (SELECT json_agg(s ORDER BY sid) FROM sessions s),
  'audit_log', (SELECT json_agg(a ORDER BY id) FROM audit_log a)) AS snapshot`;

const postgres: Backend = {
  name: 'postgres',
  kind: 'postgres',
  async setup() {
    const database = await createDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-store-'));
    return {
      databaseUrl: database.url,
      dataDir,
      async teardown() {
        await database.drop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

const besideAnApp: Backend = {
  name: "postgres beside an app's users, sessions and audit_log",
  kind: 'postgres',
  async setup() {
    const database = await createDatabase();
    await onDatabase(database.url, ...APP_TABLES);
    const before = await onDatabase(database.url, APP_SNAPSHOT);
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-store-'));
    return {
      databaseUrl: database.url,
      dataDir,
      async teardown() {
        try {
          // After the whole suite: the app's tables are exactly as the app left them.
          expect(await onDatabase(database.url, APP_SNAPSHOT)).toEqual(before);
          const tables = (await onDatabase(
            database.url,
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema IN ('public', 'tether') ORDER BY 1",
          )) as { t: string }[];
          expect(tables.filter(({ t }) => t.startsWith('public.')).map(({ t }) => t)).toEqual([
            'public.audit_log',
            'public.sessions',
            'public.users',
          ]);
          expect(tables.map(({ t }) => t)).toContain('tether.users');
        } finally {
          await database.drop();
          rmSync(dataDir, { recursive: true, force: true });
        }
      },
    };
  },
};

/** A clock the test moves by hand. */
function manualClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => void (now += ms),
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };
}

const newUser = (email: string) => ({
  email,
  name: 'N',
  role: 'user',
  scopes: ['ke/muranga'],
  channels: ['project:42'],
  passwordHash: 'scrypt$x',
});

describe.each([sqlite, postgres, besideAnApp])('store on $name', (backend) => {
  let store: OpenStore;
  let teardown: () => Promise<void>;
  const clock = manualClock();

  beforeAll(async () => {
    const env = await backend.setup();
    teardown = env.teardown;
    const config = configFrom({ DATA_DIR: env.dataDir, ...(env.databaseUrl ? { DATABASE_URL: env.databaseUrl } : {}) });
    store = await openStore(config, createLogger('silent'), clock);
    expect(store.kind).toBe(backend.kind);
  });
  afterAll(async () => {
    await store?.close();
    await teardown?.();
  });

  it('creates users with a lowercased email and finds them by id and by email in any letter case', async () => {
    const created = await store.users.create(newUser('Grace@Example.org'));
    expect(created).toMatchObject({
      email: 'grace@example.org',
      active: true,
      scopes: ['ke/muranga'],
      channels: ['project:42'],
      tokensRevokedBefore: null,
    });
    expect(typeof created.createdAt).toBe('number');
    expect(await store.users.findById(created.id)).toEqual(created);
    expect((await store.users.findByEmail('grace@example.ORG'))?.id).toBe(created.id);
    expect(await store.users.findByEmail('nobody@example.org')).toBeUndefined();
  });

  it('refuses a second user with the same email in another case with CONFLICT', async () => {
    await store.users.create(newUser('dup@example.org'));
    const err = await store.users.create(newUser('DUP@example.org')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TetherError);
    expect((err as TetherError).code).toBe('CONFLICT');
  });

  it('updates users, lists them, and lists the disabled or revoked ones', async () => {
    const u = await store.users.create(newUser('upd@example.org'));
    clock.advance(10);
    const updated = await store.users.update(u.id, {
      name: 'Renamed',
      scopes: ['*'],
      active: false,
      tokensRevokedBefore: clock.now(),
    });
    expect(updated).toMatchObject({ name: 'Renamed', scopes: ['*'], active: false, tokensRevokedBefore: clock.now() });
    expect(updated!.updatedAt).toBeGreaterThan(u.updatedAt);
    expect(await store.users.update(randomUUID(), { name: 'x' })).toBeUndefined();
    const listed = await store.users.list({ limit: 1000 });
    expect(listed.map((x) => x.id)).toContain(u.id);
    const revoked = await store.users.listRevoked();
    expect(revoked).toContainEqual({ id: u.id, active: false, tokensRevokedBefore: clock.now() });
  });

  it('stores refresh families and tokens by hash, with times as numbers', async () => {
    const user = await store.users.create(newUser(`fam-${randomUUID()}@example.org`));
    const now = clock.now();
    const family = await store.refresh.createFamily({
      id: randomUUID(),
      userId: user.id,
      createdAt: now,
      expiresAt: now + 60_000,
      userAgent: 'ua',
      ip: '10.0.0.1',
    });
    expect(await store.refresh.getFamily(family.id)).toEqual({ ...family, revokedAt: null, revokeReason: null });
    const tokenId = randomUUID();
    await store.refresh.insertToken({
      id: tokenId,
      familyId: family.id,
      userId: user.id,
      tokenHash: 'h-' + tokenId,
      createdAt: now,
      expiresAt: now + 60_000,
    });
    const found = await store.refresh.findByHash('h-' + tokenId);
    expect(found).toEqual({
      id: tokenId,
      familyId: family.id,
      userId: user.id,
      tokenHash: 'h-' + tokenId,
      createdAt: now,
      expiresAt: now + 60_000,
      usedAt: null,
      replacedById: null,
      graceCiphertext: null,
    });
    expect(typeof found!.expiresAt).toBe('number');
  });

  it('markUsed lets exactly one of two concurrent callers win', async () => {
    const user = await store.users.create(newUser(`mark-${randomUUID()}@example.org`));
    const now = clock.now();
    const family = await store.refresh.createFamily({
      id: randomUUID(),
      userId: user.id,
      createdAt: now,
      expiresAt: now + 60_000,
      userAgent: null,
      ip: null,
    });
    const id = randomUUID();
    await store.refresh.insertToken({
      id,
      familyId: family.id,
      userId: user.id,
      tokenHash: 'm-' + id,
      createdAt: now,
      expiresAt: now + 60_000,
    });
    const results = await Promise.all([
      store.refresh.markUsed(id, now, 'next-a', 'ct-a'),
      store.refresh.markUsed(id, now, 'next-b', 'ct-b'),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const used = await store.refresh.findByHash('m-' + id);
    expect(used?.usedAt).toBe(now);
    expect(used?.replacedById).toBe(results[0] ? 'next-a' : 'next-b');
  });

  it('rotate stores the successor only for the one caller that wins', async () => {
    const user = await store.users.create(newUser(`rot-${randomUUID()}@example.org`));
    const now = clock.now();
    const family = await store.refresh.createFamily({
      id: randomUUID(),
      userId: user.id,
      createdAt: now,
      expiresAt: now + 60_000,
      userAgent: null,
      ip: null,
    });
    const id = randomUUID();
    await store.refresh.insertToken({
      id,
      familyId: family.id,
      userId: user.id,
      tokenHash: 'r-' + id,
      createdAt: now,
      expiresAt: now + 60_000,
    });
    const next = (tag: string) => ({
      id: randomUUID(),
      familyId: family.id,
      userId: user.id,
      tokenHash: `r-${id}-${tag}`,
      createdAt: now,
      expiresAt: now + 60_000,
    });
    const results = await Promise.all([
      store.refresh.rotate(id, now, next('a'), 'ct-a'),
      store.refresh.rotate(id, now, next('b'), 'ct-b'),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results[0] ? 'a' : 'b';
    const loser = results[0] ? 'b' : 'a';
    expect(await store.refresh.findByHash(`r-${id}-${winner}`)).toBeDefined();
    expect(await store.refresh.findByHash(`r-${id}-${loser}`)).toBeUndefined();
    expect((await store.refresh.findByHash('r-' + id))?.graceCiphertext).toBe(`ct-${winner}`);
  });

  it('revokes one family once, every live family of a user, and lists recent revocations', async () => {
    const user = await store.users.create(newUser(`rev-${randomUUID()}@example.org`));
    const now = clock.now();
    const mk = (expiresAt: number) =>
      store.refresh.createFamily({
        id: randomUUID(),
        userId: user.id,
        createdAt: now,
        expiresAt,
        userAgent: null,
        ip: null,
      });
    const [a, b, c, expired] = await Promise.all([mk(now + 60_000), mk(now + 60_000), mk(now + 60_000), mk(now - 1)]);
    expect(await store.refresh.revokeFamily(a!.id, 'logout', now)).toBe(true);
    expect(await store.refresh.revokeFamily(a!.id, 'logout', now)).toBe(false);
    expect(await store.refresh.getFamily(a!.id)).toMatchObject({ revokedAt: now, revokeReason: 'logout' });
    clock.advance(5);
    const ids = await store.refresh.revokeUserFamilies(user.id, 'api_disconnect', clock.now());
    expect(ids.sort()).toEqual([b!.id, c!.id].sort());
    expect(ids).not.toContain(expired!.id);
    const since = await store.refresh.listRevokedFamiliesSince(now);
    expect(since).toEqual(
      expect.arrayContaining([
        { id: a!.id, revokedAt: now },
        { id: b!.id, revokedAt: clock.now() },
      ]),
    );
    expect(await store.refresh.listRevokedFamiliesSince(clock.now() + 1)).toEqual([]);
  });

  it('purges families and tokens that ended before the cut-off, keeping live ones', async () => {
    const user = await store.users.create(newUser(`purge-${randomUUID()}@example.org`));
    const now = clock.now();
    const old = await store.refresh.createFamily({
      id: randomUUID(),
      userId: user.id,
      createdAt: now - 10_000,
      expiresAt: now - 5_000,
      userAgent: null,
      ip: null,
    });
    const live = await store.refresh.createFamily({
      id: randomUUID(),
      userId: user.id,
      createdAt: now,
      expiresAt: now + 60_000,
      userAgent: null,
      ip: null,
    });
    await store.refresh.insertToken({
      id: randomUUID(),
      familyId: old.id,
      userId: user.id,
      tokenHash: 'p-old-' + old.id,
      createdAt: now - 10_000,
      expiresAt: now - 5_000,
    });
    await store.refresh.insertToken({
      id: randomUUID(),
      familyId: live.id,
      userId: user.id,
      tokenHash: 'p-live-' + live.id,
      createdAt: now,
      expiresAt: now + 60_000,
    });
    const removed = await store.refresh.purgeExpired(now);
    expect(removed).toBeGreaterThanOrEqual(2);
    expect(await store.refresh.getFamily(old.id)).toBeUndefined();
    expect(await store.refresh.findByHash('p-old-' + old.id)).toBeUndefined();
    expect(await store.refresh.getFamily(live.id)).toBeDefined();
    expect(await store.refresh.findByHash('p-live-' + live.id)).toBeDefined();
  });

  it("keeps revocations of an app backend's subjects, only ever moving the instant later", async () => {
    const subject = `app-user-${randomUUID()}`;
    await store.subjects.revoke(subject, 2_000);
    await store.subjects.revoke(subject, 1_000);
    expect((await store.subjects.list()).find((r) => r.userId === subject)).toEqual({
      userId: subject,
      revokedBefore: 2_000,
    });
    await store.subjects.revoke(subject, 3_000);
    expect((await store.subjects.list()).find((r) => r.userId === subject)?.revokedBefore).toBe(3_000);
  });

  it('records audit events and lists them newest first, filtered by user and type', async () => {
    const userId = randomUUID();
    await store.audit.record({ type: 'login_ok', userId, familyId: 'f1', ip: '10.0.0.2', detail: null });
    await store.audit.record({
      type: 'refresh',
      userId,
      familyId: 'f1',
      ip: '10.0.0.2',
      detail: { grace: true },
      at: 42,
    });
    await store.audit.record({
      type: 'login_failed',
      userId: null,
      familyId: null,
      ip: '10.0.0.3',
      detail: { reason: 'unknown_email' },
    });
    const mine = await store.audit.list({ userId });
    expect(mine.map((e) => e.type)).toEqual(['refresh', 'login_ok']);
    expect(mine[0]).toMatchObject({ familyId: 'f1', ip: '10.0.0.2', detail: { grace: true }, at: 42 });
    expect(typeof mine[0]!.id).toBe('number');
    expect(mine[1]!.at).toBe(clock.now());
    const failed = await store.audit.list({ type: 'login_failed', limit: 1 });
    expect(failed).toHaveLength(1);
    expect(failed[0]!.detail).toEqual({ reason: 'unknown_email' });
  });

  it('purges audit events recorded before a cut-off', async () => {
    const userId = `audit-purge-${randomUUID()}`;
    await store.audit.record({ type: 'login_ok', userId, familyId: null, ip: null, detail: null, at: 1_000 });
    await store.audit.record({ type: 'logout', userId, familyId: null, ip: null, detail: null, at: 5_000 });
    expect(await store.audit.purge(2_000)).toBeGreaterThanOrEqual(1);
    expect((await store.audit.list({ userId })).map((e) => e.type)).toEqual(['logout']);
  });

  it("runs an app's own migrations on the same database, once", async () => {
    const migrations = {
      '0001-notes': {
        async up(db: Parameters<Parameters<typeof runMigrations>[2][string]['up']>[0]) {
          await db.schema
            .createTable('app_notes')
            .addColumn('id', 'text', (c) => c.primaryKey())
            .addColumn('body', 'text')
            .execute();
        },
      },
    };
    expect(await runMigrations(store.db, store.kind, migrations, 'app_test_migrations')).toEqual(['0001-notes']);
    expect(await runMigrations(store.db, store.kind, migrations, 'app_test_migrations')).toEqual([]);
  });
});

describe("Tether in an app's PostgreSQL database", () => {
  const open = async (url: string, env: Record<string, string> = {}) =>
    openStore(configFrom({ DATABASE_URL: url, ...env }), createLogger('silent'));

  it('a migration that fails says which statement and why, in one line', async () => {
    const database = await createDatabase();
    try {
      await onDatabase(database.url, ...APP_TABLES);
      // Tether's tables put into public, where the app's users table already is.
      const err = await open(database.url, { DATABASE_SCHEMA: 'public' }).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(TetherError);
      const message = (err as Error).message;
      expect(message).toMatch(
        /^Migration 0001-auth-tables failed: relation "users" already exists \(in: create table "users"/,
      );
      expect(message).not.toContain('\n');
    } finally {
      await database.drop();
    }
  });

  it("a database holding an earlier version's tables in public stops start-up with the setting to use", async () => {
    const database = await createDatabase();
    try {
      const legacy = await open(database.url, { DATABASE_SCHEMA: 'public' });
      await legacy.users.create(newUser('kept@example.org'));
      await legacy.close();
      const err = await open(database.url).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(
        /^Invalid configuration: DATABASE_SCHEMA is "tether", but .* set DATABASE_SCHEMA=public/,
      );
      const kept = await open(database.url, { DATABASE_SCHEMA: 'public' });
      expect(await kept.users.findByEmail('kept@example.org')).toBeDefined();
      await kept.close();
    } finally {
      await database.drop();
    }
  });

  it('a connection lost inside a transaction fails that transaction, not the process', async () => {
    const database = await createDatabase();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => void uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const store = await open(database.url);
      const outcome = await store.db
        .transaction()
        .execute(async (trx) => {
          const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
          // Between two statements the client is checked out and idle: the server ends it there.
          await onDatabase(database.url, `SELECT pg_terminate_backend(${Number(rows[0]!.pid)})`);
          await new Promise((resolve) => setTimeout(resolve, 200));
          await sql`SELECT 1`.execute(trx);
        })
        .then(
          () => 'committed',
          () => 'failed',
        );
      expect(outcome).toBe('failed');
      // The pool replaces the lost client; the store keeps working.
      await store.users.create(newUser('after@example.org'));
      expect(await store.users.findByEmail('after@example.org')).toBeDefined();
      await store.close();
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await database.drop();
    }
  });

  it('two stores in two schemas of one database keep their own users', async () => {
    const database = await createDatabase();
    try {
      const [a, b] = await Promise.all([
        open(database.url, { DATABASE_SCHEMA: 'tenant_a' }),
        open(database.url, { DATABASE_SCHEMA: 'tenant_b' }),
      ]);
      await a.users.create(newUser('only-a@example.org'));
      expect(await b.users.findByEmail('only-a@example.org')).toBeUndefined();
      expect(await a.users.findByEmail('only-a@example.org')).toBeDefined();
      await Promise.all([a.close(), b.close()]);
    } finally {
      await database.drop();
    }
  });
});
