import { Migrator, sql, type CreateTableBuilder, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { TetherError } from '@tether/protocol';
import { lastFailedStatement } from './connect.js';
import type { StoreDialect } from './schema.js';

/**
 * A migration that may differ per dialect (auto-increment keys are the usual difference).
 * Migrations are in code, not files, so a bundled server needs nothing beside it.
 */
export interface DialectMigration {
  up(db: Kysely<unknown>, dialect: StoreDialect): Promise<void>;
}

/**
 * An auto-increment `id` primary key, as each dialect spells it (PostgreSQL `bigserial`, SQLite
 * `integer … autoincrement`). Use with Kysely's `$call`: `createTable('t').$call(serialId(dialect))`.
 */
export function serialId(dialect: StoreDialect) {
  return <T extends string, C extends string>(table: CreateTableBuilder<T, C>) =>
    dialect === 'postgres'
      ? table.addColumn('id', 'bigserial', (c) => c.primaryKey())
      : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
}

/**
 * Applies `migrations` in name order, each once, recording them in `tableName` (and a lock table
 * `<tableName>_lock`). Apps keep their own table name so their history never mixes with Tether's.
 *
 * @example
 *   await runMigrations(store.db, store.kind, { '2025-01-01-tickets': { up: createTickets } }, 'helpdesk_migrations');
 */
export async function runMigrations<DB>(
  db: Kysely<DB>,
  dialect: StoreDialect,
  migrations: Readonly<Record<string, DialectMigration>>,
  tableName: string,
): Promise<string[]> {
  const provider: MigrationProvider = {
    getMigrations: () => {
      const out: Record<string, Migration> = {};
      for (const [name, migration] of Object.entries(migrations)) {
        out[name] = { up: (trx) => migration.up(trx as Kysely<unknown>, dialect) };
      }
      return Promise.resolve(out);
    },
  };
  const migrator = new Migrator({
    db: db as unknown as Kysely<unknown>,
    provider,
    migrationTableName: tableName,
    migrationLockTableName: `${tableName}_lock`,
    // Kysely looks for its tables among every schema's tables unless told which schema: with two
    // Tether stores (or Tether and an app) in one PostgreSQL database, it would find the other
    // schema's table, skip creating its own, and fail. The schema is the connection's own.
    ...(dialect === 'postgres' ? { migrationTableSchema: await currentSchema(db) } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    // One line that says which statement and why (e.g. a table of that name already exists).
    const reason = error instanceof Error ? error.message : String(error);
    const statement = lastFailedStatement(db);
    throw new TetherError(
      'INTERNAL',
      `Migration ${failed} failed: ${reason}${statement === undefined ? '' : ` (in: ${statement})`}`,
      { cause: error },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

async function currentSchema<DB>(db: Kysely<DB>): Promise<string> {
  const { rows } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db);
  const schema = rows[0]?.schema;
  if (schema === undefined || schema === null) throw new TetherError('INTERNAL', 'PostgreSQL has no current schema');
  return schema;
}
