import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { runMigrations, type DialectMigration } from '../store/migrations.js';
import type { StoreDialect } from '../store/schema.js';

export type DevicePlatform = 'ios' | 'android' | 'web' | 'expo';
export const DEVICE_PLATFORMS: readonly DevicePlatform[] = ['ios', 'android', 'web', 'expo'];

/** A registered push target. `token` is the platform's push token (FCM, APNs, Expo, web push). */
export interface DeviceRecord {
  id: string;
  userId: string;
  platform: DevicePlatform;
  token: string;
  createdAt: number;
}

export interface DeviceStore {
  /** Registers a device; the same user and token again returns the existing record. */
  register(input: { userId: string; platform: DevicePlatform; token: string }): Promise<DeviceRecord>;
  /** Returns false when there was no such device. */
  remove(id: string): Promise<boolean>;
  listByUser(userId: string): Promise<DeviceRecord[]>;
}

interface DeviceTables {
  tether_devices: { id: string; user_id: string; platform: string; token: string; created_at: number };
}

/** The push tables keep their own migration history beside Tether's core one. */
export const PUSH_MIGRATION_TABLE = 'tether_push_migrations';

const PUSH_MIGRATIONS: Readonly<Record<string, DialectMigration>> = {
  '0001-devices': {
    async up(db) {
      await db.schema
        .createTable('tether_devices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('platform', 'text', (c) => c.notNull())
        .addColumn('token', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('tether_devices_user_token')
        .unique()
        .on('tether_devices')
        .columns(['user_id', 'token'])
        .execute();
    },
  },
};

/**
 * Opens the device registry in the gateway's store (SQLite or PostgreSQL), applying its migrations.
 *
 * @example
 *   const devices = await openDeviceStore(store.db, store.kind);
 *   await devices.register({ userId: 'u1', platform: 'expo', token: 'ExponentPushToken[…]' });
 */
export async function openDeviceStore<DB>(handle: Kysely<DB>, dialect: StoreDialect): Promise<DeviceStore> {
  await runMigrations(handle, dialect, PUSH_MIGRATIONS, PUSH_MIGRATION_TABLE);
  const db = handle as unknown as Kysely<DeviceTables>;
  const toRecord = (row: DeviceTables['tether_devices']): DeviceRecord => ({
    id: row.id,
    userId: row.user_id,
    platform: row.platform as DevicePlatform,
    token: row.token,
    createdAt: Number(row.created_at),
  });

  return {
    async register({ userId, platform, token }) {
      const row = { id: randomUUID(), user_id: userId, platform, token, created_at: Date.now() };
      // Insert-or-keep: a device re-registering on every app start must not pile up rows.
      await db
        .insertInto('tether_devices')
        .values(row)
        .onConflict((oc) => oc.columns(['user_id', 'token']).doNothing())
        .execute();
      const stored = await db
        .selectFrom('tether_devices')
        .selectAll()
        .where('user_id', '=', userId)
        .where('token', '=', token)
        .executeTakeFirstOrThrow();
      return toRecord(stored);
    },
    async remove(id) {
      const result = await db.deleteFrom('tether_devices').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async listByUser(userId) {
      const rows = await db
        .selectFrom('tether_devices')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .execute();
      return rows.map(toRecord);
    },
  };
}
