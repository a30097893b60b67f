import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type LogEvent } from 'kysely';
import type { Logger } from '../util/logger.js';
import type { Database } from './schema.js';

/** The embedded store's file inside DATA_DIR. */
export const SQLITE_FILE = 'tether.db';

const PG_INT8 = 20;

/** The last statement each store's database refused, so a failed migration can say which and why. */
const failedStatements = new WeakMap<object, string>();

/** The SQL of the last statement `db` refused (shortened), if any. */
export function lastFailedStatement(db: object): string | undefined {
  return failedStatements.get(db);
}

/** Kysely's log hook: remembers refused statements (never their parameters, which may be secrets). */
function rememberFailures(holder: { db?: object }): (event: LogEvent) => void {
  return (event) => {
    if (event.level !== 'error' || holder.db === undefined) return;
    const sql = event.query.sql.replace(/\s+/g, ' ').trim();
    failedStatements.set(holder.db, sql.length > 160 ? `${sql.slice(0, 157)}...` : sql);
  };
}

/** The better-sqlite3 handle behind each embedded store's Kysely instance, for hot paths (the event log). */
const sqliteHandles = new WeakMap<object, BetterSqlite3.Database>();

/** The raw SQLite database behind `db`, when `db` is an embedded store opened by `connectSqlite`. */
export function sqliteHandle(db: object): BetterSqlite3.Database | undefined {
  return sqliteHandles.get(db);
}

/**
 * Opens the embedded SQLite store in `dataDir` (created if missing): `tether.db`, or another file of
 * the gateway's there (the delivery record's). WAL lets readers proceed while one writer commits; the
 * busy timeout covers a second process (e.g. the CLI) on the same file.
 */
export function connectSqlite(dataDir: string, file: string = SQLITE_FILE): Kysely<Database> {
  mkdirSync(dataDir, { recursive: true });
  const database = new BetterSqlite3(join(dataDir, file));
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const holder: { db?: object } = {};
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }), log: rememberFailures(holder) });
  holder.db = db;
  sqliteHandles.set(db, database);
  return db;
}

/**
 * Opens a PostgreSQL pool whose connections use `schema` as their only `search_path`: every Tether
 * table is created and found there, so an app's own `users` or `audit_log` elsewhere in the same
 * database is never touched (the schema is created if missing). BIGINT columns (our ms timestamps,
 * counts) come back as JS numbers: every value we store is far below 2^53, and callers should never
 * see strings for times. The parser is set per pool, not globally, so an app's own pg clients keep
 * their defaults. `pg` is loaded only here: the embedded store never pays for it.
 */
export async function connectPostgres(
  connectionString: string,
  logger: Logger,
  schema = 'public',
): Promise<Kysely<Database>> {
  const { default: pg } = await import('pg');
  const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
    oid === PG_INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;
  const pool = new pg.Pool({
    connectionString,
    max: 10,
    types: { getTypeParser },
    // The schema name is validated by the config (lowercase identifier), so it needs no quoting.
    options: `-c search_path=${schema}`,
  });
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would end the process.
  pool.on('error', (err) => logger.error({ err: { message: err.message } }, 'postgres idle client error'));
  // A client checked out (say, inside a transaction between two statements) has no pool listener:
  // losing its connection then would emit 'error' with nobody listening and end the process. The
  // statement in flight, if any, still fails on its own; this only keeps the process up.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.warn({ err: { message: err.message } }, 'postgres client error'));
  });
  const holder: { db?: object } = {};
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: rememberFailures(holder) });
  holder.db = db;
  try {
    // Looked up first: a role that may use an existing schema need not be allowed to create one.
    const found = await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (found.rowCount === 0) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  } catch (err) {
    // Two nodes starting together may both try; the loser sees the winner's schema (23505/42P06).
    const code = (err as { code?: string }).code;
    if (code !== '23505' && code !== '42P06') {
      await db.destroy();
      throw new Error(`cannot create PostgreSQL schema ${schema}: ${(err as Error).message}`, { cause: err });
    }
  }
  return db;
}
