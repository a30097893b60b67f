import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import type { Config, Logger } from '@tether/server';
import type { HelpdeskDatabase } from './schema.js';

/** The helpdesk's own database: its tables only, never Tether's. */
export interface HelpdeskDb {
  db: Kysely<HelpdeskDatabase>;
  kind: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

/** The schema the helpdesk's tables live in on PostgreSQL (Tether's are in DATABASE_SCHEMA). */
export const HELPDESK_SCHEMA = 'helpdesk';
const PG_INT8 = 20;

/**
 * Opens the helpdesk's database beside the gateway's, through its own connections: with
 * `DATABASE_URL`, the same PostgreSQL database in a schema of its own (`helpdesk`); without, its own
 * SQLite file in `DATA_DIR` (`helpdesk.db`). Times are BIGINT milliseconds, read back as numbers.
 */
export async function openHelpdeskDb(config: Config, logger: Logger): Promise<HelpdeskDb> {
  if (config.databaseUrl === undefined) {
    mkdirSync(config.dataDir, { recursive: true });
    const database = new BetterSqlite3(join(config.dataDir, 'helpdesk.db'));
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
    const db = new Kysely<HelpdeskDatabase>({ dialect: new SqliteDialect({ database }) });
    return { db, kind: 'sqlite', close: () => db.destroy() };
  }
  const { default: pg } = await import('pg');
  const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
    oid === PG_INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;
  const setup = new pg.Client({ connectionString: config.databaseUrl });
  await setup.connect();
  try {
    await setup.query(`CREATE SCHEMA IF NOT EXISTS ${HELPDESK_SCHEMA}`);
  } finally {
    await setup.end();
  }
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: 5,
    types: { getTypeParser },
    options: `-c search_path=${HELPDESK_SCHEMA}`,
  });
  pool.on('error', (err) => logger.error({ err: { message: err.message } }, 'helpdesk postgres idle client error'));
  const db = new Kysely<HelpdeskDatabase>({ dialect: new PostgresDialect({ pool }) });
  return { db, kind: 'postgres', close: () => db.destroy() };
}
