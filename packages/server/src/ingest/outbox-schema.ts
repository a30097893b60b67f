import { sql, type Kysely } from 'kysely';
import type { DialectMigration } from '../store/migrations.js';

/** Where the outbox's own migrations are recorded (in the outbox database's Tether schema). */
export const OUTBOX_MIGRATION_TABLE = 'tether_outbox_migrations';

/**
 * The NOTIFY channel a commit that inserted outbox rows wakes the consumer on: one per schema, so
 * two deployments sharing a database never wake each other. NOTIFY channels are at most 63 bytes.
 */
export function outboxChannel(schema: string): string {
  return `${schema.slice(0, 56)}_outbox`;
}

/**
 * The outbox in `schema` (a validated lowercase identifier, quoted anyway: it may be a keyword):
 *
 * - `outbox`: one row per event an app publishes in its own transaction. `id` orders the rows of a
 *   transaction as inserted; `created_at` is the insert's own time (`clock_timestamp()`, not the
 *   transaction's start), for lag and latency. The CHECKs refuse a non-object `data`/`recipients`
 *   in the app's transaction, where the mistake is still visible to whoever made it.
 * - `outbox_rejected`: rows Tether could not publish (an invalid event name or recipients), with the
 *   reason, so one bad row never blocks the queue and is kept for whoever fixes it.
 * - `publish(event, data, recipients, id)`: inserts a row and returns its id.
 * - A statement trigger NOTIFYs the wake-up channel on every insert, however the row got there;
 *   PostgreSQL delivers a NOTIFY at commit (several in one transaction as one), so a rolled-back
 *   insert wakes nobody.
 */
export function outboxMigrations(schema: string): Readonly<Record<string, DialectMigration>> {
  const s = `"${schema}"`;
  const channel = outboxChannel(schema).replace(/'/g, "''");
  const statements = [
    `CREATE TABLE ${s}.outbox (
      id bigserial PRIMARY KEY,
      event text NOT NULL,
      data jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
      recipients jsonb NOT NULL CHECK (jsonb_typeof(recipients) = 'object'),
      event_id text,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
    `CREATE TABLE ${s}.outbox_rejected (
      seq bigserial PRIMARY KEY,
      id bigint NOT NULL,
      event text,
      data jsonb,
      recipients jsonb,
      event_id text,
      created_at timestamptz,
      rejected_at timestamptz NOT NULL DEFAULT now(),
      reason text NOT NULL
    )`,
    `CREATE FUNCTION ${s}.outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      PERFORM pg_notify('${channel}', '');
      RETURN NULL;
    END
    $fn$`,
    `CREATE TRIGGER outbox_wake AFTER INSERT ON ${s}.outbox
      FOR EACH STATEMENT EXECUTE FUNCTION ${s}.outbox_wake()`,
    `CREATE FUNCTION ${s}.publish(event text, data jsonb, recipients jsonb, id text DEFAULT NULL)
      RETURNS bigint LANGUAGE sql AS $fn$
      INSERT INTO ${s}.outbox (event, data, recipients, event_id)
      VALUES ($1, coalesce($2, '{}'::jsonb), $3, $4)
      RETURNING id
    $fn$`,
  ];
  return {
    '0001-outbox': {
      async up(db: Kysely<unknown>) {
        for (const statement of statements) await sql.raw(statement).execute(db);
      },
    },
  };
}
