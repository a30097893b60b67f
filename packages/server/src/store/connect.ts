import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import type { Logger } from '../util/logger.js';
import type { Database } from './schema.js';

/** The embedded store's file inside DATA_DIR. */
export const SQLITE_FILE = 'tether.db';

const PG_INT8 = 20;

/** The better-sqlite3 handle behind each embedded store's Kysely instance, for hot paths (the event log). */
const sqliteHandles = new WeakMap<object, BetterSqlite3.Database>();

/** The raw SQLite database behind `db`, when `db` is an embedded store opened by `connectSqlite`. */
export function sqliteHandle(db: object): BetterSqlite3.Database | undefined {
  return sqliteHandles.get(db);
}

/**
 * Opens the embedded SQLite store in `dataDir` (created if missing). WAL lets readers proceed
 * while one writer commits; the busy timeout covers a second process (e.g. the CLI) on the same file.
 */
export function connectSqlite(dataDir: string): Kysely<Database> {
  mkdirSync(dataDir, { recursive: true });
  const database = new BetterSqlite3(join(dataDir, SQLITE_FILE));
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  sqliteHandles.set(db, database);
  return db;
}

/**
 * Opens a PostgreSQL pool. BIGINT columns (our ms timestamps, counts) come back as JS numbers:
 * every value we store is far below 2^53, and callers should never see strings for times.
 * The parser is set per pool, not globally, so an app's own pg clients keep their defaults.
 * `pg` is loaded only here: the embedded store never pays for it.
 */
export async function connectPostgres(connectionString: string, logger: Logger): Promise<Kysely<Database>> {
  const { default: pg } = await import('pg');
  const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
    oid === PG_INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;
  const pool = new pg.Pool({ connectionString, max: 10, types: { getTypeParser } });
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', (err) => logger.error({ err: { message: err.message } }, 'postgres idle client error'));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
