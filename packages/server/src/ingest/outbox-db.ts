import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { connectPostgres } from '../store/connect.js';
import { runMigrations } from '../store/migrations.js';
import type { Logger } from '../util/logger.js';
import { OUTBOX_MIGRATION_TABLE, outboxMigrations } from './outbox-schema.js';

const PG_INT8 = 20;

/**
 * Creates the outbox in `schema` of `url`'s database if needed (the store's schema creation and
 * migration runner, so several nodes starting together are fine), then opens the consumer's pool.
 *
 * The pool is its own rather than the store's: the consumer keeps a transaction open while it
 * publishes, and a connection lost in such a pause makes pg emit `error` on a checked-out client,
 * which nobody listens to by default — the process would die. Here every client has a listener;
 * the transaction's next statement fails, and the batch is retried.
 */
export async function openOutboxDb(url: string, schema: string, logger: Logger): Promise<Kysely<unknown>> {
  const setup = await connectPostgres(url, logger, schema);
  try {
    await runMigrations(setup, 'postgres', outboxMigrations(schema), OUTBOX_MIGRATION_TABLE);
  } finally {
    await setup.destroy();
  }
  const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
    oid === PG_INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser;
  const pool = new pg.Pool({
    connectionString: url,
    application_name: 'tether-outbox-batch',
    // One batch at a time; a second connection only while a broken one is replaced.
    max: 2,
    types: { getTypeParser },
    // Validated by the config (lowercase identifier): no quoting needed.
    options: `-c search_path=${schema}`,
  });
  const warn = (err: Error) =>
    logger.warn({ component: 'outbox', err: { message: err.message } }, 'outbox database connection lost');
  pool.on('connect', (client) => client.on('error', warn));
  // An idle client's error reaches the pool too (already logged by the client's listener).
  pool.on('error', () => undefined);
  return new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
}
