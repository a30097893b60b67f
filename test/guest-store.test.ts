import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFrom } from '../packages/server/src/config/index.js';
import { connectPostgres, connectSqlite } from '../packages/server/src/store/connect.js';
import {
  CORE_MIGRATIONS,
  CORE_MIGRATION_TABLE,
  openStore,
  runMigrations,
  type Database,
  type OpenStore,
} from '../packages/server/src/store/index.js';
import { createLogger } from '../packages/server/src/util/logger.js';

const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const logger = createLogger('silent');

/** A database holding what an earlier version left: Tether's tables as of migration 0002, with rows. */
interface Backend {
  name: string;
  kind: 'sqlite' | 'postgres';
  /** Opens a raw handle on a fresh database; `env` opens the same database as a store. */
  setup(): Promise<{ raw: Kysely<Database>; env: Record<string, string>; teardown(): Promise<void> }>;
}

async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tether_guest_${randomBytes(6).toString('hex')}`;
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

const sqlite: Backend = {
  name: 'sqlite',
  kind: 'sqlite',
  async setup() {
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-guest-store-'));
    return {
      raw: connectSqlite(dataDir),
      env: { DATA_DIR: dataDir },
      teardown: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  },
};

const postgres = (besideAnApp: boolean): Backend => ({
  name: besideAnApp ? "postgres beside an app's own users table" : 'postgres',
  kind: 'postgres',
  async setup() {
    const database = await createDatabase();
    if (besideAnApp) {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      await client.query('CREATE TABLE public.users (id text PRIMARY KEY, username text NOT NULL)');
      await client.query("INSERT INTO public.users VALUES ('app-1', 'ada')");
      await client.end();
    }
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-guest-store-'));
    return {
      raw: await connectPostgres(database.url, logger, 'tether'),
      env: { DATA_DIR: dataDir, DATABASE_URL: database.url },
      async teardown() {
        if (besideAnApp) {
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          // The app's own users table is exactly as the app left it.
          expect((await client.query('SELECT id, username FROM public.users')).rows).toEqual([
            { id: 'app-1', username: 'ada' },
          ]);
          await client.end();
        }
        await database.drop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
});

const EARLIER = {
  '0001-auth-tables': CORE_MIGRATIONS['0001-auth-tables']!,
  '0002-subject-revocations': CORE_MIGRATIONS['0002-subject-revocations']!,
};

describe.each([sqlite, postgres(false), postgres(true)])('guest refresh families on $name', (backend) => {
  let store: OpenStore;
  let teardown: () => Promise<void>;
  const now = Date.now();
  const userId = randomUUID();
  const familyId = randomUUID();
  const tokens = [randomUUID(), randomUUID()];

  beforeAll(async () => {
    const env = await backend.setup();
    teardown = env.teardown;
    // An earlier version's database: the tables as of 0002, a user with a family and two tokens
    // (one already rotated, with its grace pair).
    const { raw } = env;
    expect(await runMigrations(raw, backend.kind, EARLIER, CORE_MIGRATION_TABLE)).toEqual(Object.keys(EARLIER));
    await raw
      .insertInto('users')
      .values({
        id: userId,
        email: 'kept@example.org',
        email_lower: 'kept@example.org',
        name: 'Kept',
        role: 'user',
        scopes: '[]',
        channels: '[]',
        active: 1,
        password_hash: 'scrypt$x',
        tokens_revoked_before: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    await sql`INSERT INTO refresh_families (id, user_id, created_at, expires_at, revoked_at, revoke_reason, user_agent, ip)
      VALUES (${familyId}, ${userId}, ${now}, ${now + 60_000}, NULL, NULL, 'ua', '10.0.0.1')`.execute(raw);
    await raw
      .insertInto('refresh_tokens')
      .values([
        {
          id: tokens[0]!,
          family_id: familyId,
          user_id: userId,
          token_hash: `h-${tokens[0]}`,
          created_at: now,
          expires_at: now + 60_000,
          used_at: now + 5,
          replaced_by_id: tokens[1]!,
          grace_ciphertext: 'sealed',
        },
        {
          id: tokens[1]!,
          family_id: familyId,
          user_id: userId,
          token_hash: `h-${tokens[1]}`,
          created_at: now + 5,
          expires_at: now + 60_000,
          used_at: null,
          replaced_by_id: null,
          grace_ciphertext: null,
        },
      ])
      .execute();
    await raw.destroy();
    // This version opens it: migration 0003 runs.
    store = await openStore(configFrom(env.env), logger);
  });
  afterAll(async () => {
    await store?.close();
    await teardown?.();
  });

  it('the upgrade keeps every family and token of the earlier version, as user families', async () => {
    const applied = await sql<{ name: string }>`SELECT name FROM ${sql.table(CORE_MIGRATION_TABLE)}`.execute(store.db);
    expect(applied.rows.map((r) => r.name)).toContain('0003-guest-refresh-families');
    expect(await store.refresh.getFamily(familyId)).toEqual({
      id: familyId,
      userId,
      guest: false,
      createdAt: now,
      expiresAt: now + 60_000,
      revokedAt: null,
      revokeReason: null,
      userAgent: 'ua',
      ip: '10.0.0.1',
    });
    expect(await store.refresh.findByHash(`h-${tokens[0]}`)).toMatchObject({
      familyId,
      userId,
      usedAt: now + 5,
      replacedById: tokens[1],
      graceCiphertext: 'sealed',
    });
    expect(await store.refresh.findByHash(`h-${tokens[1]}`)).toMatchObject({ familyId, usedAt: null });
  });

  it('a family can belong to a guest, which is no user: stored, read, revoked by the guest id', async () => {
    const guestId = `guest:${randomUUID()}`;
    const family = await store.refresh.createFamily({
      id: randomUUID(),
      userId: guestId,
      guest: true,
      createdAt: now,
      expiresAt: now + 60_000,
      userAgent: null,
      ip: null,
    });
    expect(family.guest).toBe(true);
    expect(await store.refresh.getFamily(family.id)).toEqual({ ...family, revokedAt: null, revokeReason: null });
    await store.refresh.insertToken({
      id: randomUUID(),
      familyId: family.id,
      userId: guestId,
      tokenHash: `g-${family.id}`,
      createdAt: now,
      expiresAt: now + 60_000,
    });
    expect(await store.refresh.findByHash(`g-${family.id}`)).toMatchObject({ familyId: family.id, userId: guestId });
    expect(await store.refresh.revokeUserFamilies(guestId, 'api_disconnect', now + 1)).toEqual([family.id]);
    expect(await store.refresh.getFamily(family.id)).toMatchObject({ revokedAt: now + 1, guest: true });
    // A user's family of the same instant is untouched by the guest's revocation.
    expect(await store.refresh.getFamily(familyId)).toMatchObject({ revokedAt: null });
  });

  it('a family has exactly one owner; a user family still needs its user and goes with it', async () => {
    const insert = (userId: string | null, guestId: string | null) =>
      sql`INSERT INTO refresh_families (id, user_id, guest_id, created_at, expires_at)
        VALUES (${randomUUID()}, ${userId}, ${guestId}, ${now}, ${now + 1})`.execute(store.db);
    await insert(null, `guest:${randomUUID()}`);
    await expect(insert(null, null)).rejects.toThrow();
    await expect(insert(userId, 'guest:both')).rejects.toThrow();
    await expect(insert('no-such-user', null)).rejects.toThrow();

    // Deleting a user still deletes its families and their tokens: the references survived the upgrade.
    await sql`DELETE FROM users WHERE id = ${userId}`.execute(store.db);
    expect(await store.refresh.getFamily(familyId)).toBeUndefined();
    expect(await store.refresh.findByHash(`h-${tokens[0]}`)).toBeUndefined();
    expect(await store.refresh.findByHash(`h-${tokens[1]}`)).toBeUndefined();
    if (backend.kind === 'sqlite') {
      const refs = await sql<{ table: string }>`SELECT "table" FROM pragma_foreign_key_list('refresh_tokens')`.execute(
        store.db,
      );
      expect(refs.rows.map((r) => r.table)).toEqual(['refresh_families']);
      const leftovers = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE name LIKE '%_next'`.execute(
        store.db,
      );
      expect(leftovers.rows).toEqual([]);
    }
  });
});
