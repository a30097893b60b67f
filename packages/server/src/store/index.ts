import { sql, type Kysely } from 'kysely';
import { ConfigError, type Config } from '../config/index.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { createAuditRepository } from './audit-repository.js';
import { connectPostgres, connectSqlite } from './connect.js';
import { CORE_MIGRATIONS, CORE_MIGRATION_TABLE } from './core-migrations.js';
import { runMigrations } from './migrations.js';
import { createRefreshRepository } from './refresh-repository.js';
import { createSubjectRevocationRepository } from './subject-revocation-repository.js';
import type { Database } from './schema.js';
import type { Store } from './types.js';
import { createUserRepository } from './user-repository.js';

export { runMigrations, type DialectMigration } from './migrations.js';
export { CORE_MIGRATIONS, CORE_MIGRATION_TABLE } from './core-migrations.js';
export { emailKey } from './user-repository.js';
export type { Database, StoreDialect } from './schema.js';
export type * from './types.js';

/**
 * Earlier versions kept Tether's tables in `public`. Starting with another schema would create an
 * empty second set beside them (every user and refresh family gone from Tether's view), so start-up
 * stops and says what to do instead.
 */
async function refuseStrayTables(db: Kysely<Database>, schema: string): Promise<void> {
  if (schema === 'public') return;
  const { rows } = await sql<{ schema: string }>`
    SELECT table_schema AS schema FROM information_schema.tables
    WHERE table_name = ${CORE_MIGRATION_TABLE} AND table_schema IN ('public', ${schema})`.execute(db);
  if (rows.some((row) => row.schema === schema) || !rows.some((row) => row.schema === 'public')) return;
  throw new ConfigError(
    'DATABASE_SCHEMA',
    `is "${schema}", but Tether's tables from an earlier version are in schema public: set DATABASE_SCHEMA=public to keep them there, or move them into ${schema} (ALTER TABLE … SET SCHEMA ${schema}) first`,
  );
}

/** A store plus its Kysely handle, for apps that keep their own tables in the same database. */
export type OpenStore = Store & { readonly db: Kysely<Database> };

/**
 * Opens the configured store — PostgreSQL when `config.databaseUrl` is set, else SQLite in
 * `<DATA_DIR>/tether.db` — and applies pending migrations before returning.
 *
 * @example
 *   const store = await openStore(config, logger);
 *   await runMigrations(store.db, store.kind, appMigrations, 'helpdesk_migrations');
 */
export async function openStore(config: Config, logger: Logger, clock: Clock = systemClock): Promise<OpenStore> {
  const kind = config.databaseUrl === undefined ? 'sqlite' : 'postgres';
  const db =
    config.databaseUrl === undefined
      ? connectSqlite(config.dataDir)
      : await connectPostgres(config.databaseUrl, logger, config.databaseSchema);
  try {
    if (kind === 'postgres') await refuseStrayTables(db, config.databaseSchema);
    const applied = await runMigrations(db, kind, CORE_MIGRATIONS, CORE_MIGRATION_TABLE);
    logger.info({ store: kind, applied }, 'store opened');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  let closed = false;
  return {
    kind,
    db,
    users: createUserRepository(db, clock),
    refresh: createRefreshRepository(db),
    audit: createAuditRepository(db, clock),
    subjects: createSubjectRevocationRepository(db),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
