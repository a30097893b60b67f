import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from '../util/logger.js';
import { RECEIPT_MIGRATION_TABLE, RECORD_TABLES, type DeliveryStore, type RecordTable } from './delivery-store.js';

/** The embedded delivery record's file in DATA_DIR, beside the main store's `tether.db`. */
export const RECORD_FILE = 'tether-record.db';

/**
 * Rows per write call at most: one message (its copy costs this thread ~2 µs per row) and one
 * transaction in the worker (big enough that its commit is a small part of each row's cost).
 */
const WORKER_SLICE_ROWS = 2_000;

/** What the worker is started with. */
export interface RecordWorkerData {
  /** DATA_DIR: the worker opens `RECORD_FILE` there. */
  dataDir: string;
}

/** The store's methods, each run in the worker. */
export type StoreOp = Exclude<keyof DeliveryStore, 'writeSliceRows'>;

/** A call to the worker: a `DeliveryStore` method, `adopt` (copy the rows of an older file), or `close`. */
export type RecordWorkerRequest =
  | { id: number; op: StoreOp; args: unknown[] }
  | { id: number; op: 'adopt'; args: [legacyFile: string, tables: RecordTable[]] }
  | { id: number; op: 'close'; args: [] };

/** The worker's answer to request `id` (0: started, or why it could not). */
export type RecordWorkerReply = { id: number; result: unknown } | { id: number; error: string };

export interface RecordWorkerStore extends DeliveryStore {
  /** Waits for the calls already made, then stops the worker. */
  close(): Promise<void>;
}

/**
 * The worker's script: beside this module in the build. Tests run the TypeScript sources, where no
 * `.js` sibling exists; there the build's copy is used (`npm test` builds before it runs them).
 */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), 'record-worker.js');
  if (existsSync(sibling)) return sibling;
  return join(dirname(here), '..', '..', 'dist', 'receipts', 'record-worker.js');
}

/**
 * The embedded (SQLite) delivery record, run on a worker thread with its own file
 * (`DATA_DIR/tether-record.db`). On SQLite every write holds the thread that makes it, and the
 * record writes a timeline row for each connect, reauth, warning and disconnect: in a reauth storm
 * that was a third of the event loop's time. Here the event loop only posts the rows.
 *
 * Rows that releases before this one kept in the main store (`mainDatabase`) are copied over on
 * the first start, and the old tables dropped from the main store.
 *
 * A worker that dies fails the calls in flight (the recorder logs and counts those rows as dropped)
 * and is started again by the next call.
 *
 * @example
 *   const store = await openRecordWorker(config.dataDir, sqliteHandle(store.db), logger);
 *   await store.write({ deliveries: [], timeline: [row], pending: [] });
 *   await store.close();
 */
export async function openRecordWorker(
  dataDir: string,
  mainDatabase: BetterSqlite3.Database | undefined,
  logger: Logger,
): Promise<RecordWorkerStore> {
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  let nextId = 1;
  let worker: Promise<Worker> | undefined;
  let closed = false;

  function start(): Promise<Worker> {
    return new Promise((resolve, reject) => {
      const w = new Worker(workerScript(), {
        workerData: { dataDir } satisfies RecordWorkerData,
        // None of the process's Node options: a worker refuses the process-wide ones (`--expose-gc`),
        // and a test runner's `--conditions` would resolve the build's imports to TypeScript sources.
        execArgv: [],
      });
      w.unref();
      let started = false;
      w.on('message', (message: RecordWorkerReply) => {
        if (message.id === 0) {
          started = true;
          if ('error' in message) reject(new Error(`delivery record: ${message.error}`));
          else resolve(w);
          return;
        }
        const call = pending.get(message.id);
        if (call === undefined) return;
        pending.delete(message.id);
        if ('error' in message) call.reject(new Error(message.error));
        else call.resolve(message.result);
      });
      w.on('error', (err) => {
        if (!started) reject(err);
        else logger.error({ err }, 'delivery record worker failed');
      });
      w.on('exit', (code) => {
        if (!started) reject(new Error(`delivery record worker exited (${code}) before it started`));
        if (worker !== undefined && !closed)
          logger.error({ code }, 'delivery record worker stopped; restarted on the next call');
        worker = undefined;
        for (const call of pending.values()) call.reject(new Error('delivery record worker stopped'));
        pending.clear();
      });
    });
  }

  async function call(op: RecordWorkerRequest['op'], args: unknown[]): Promise<unknown> {
    if (closed && op !== 'close') throw new Error('delivery record closed');
    worker ??= start();
    const w = await worker;
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      w.postMessage({ id, op, args });
    });
  }

  worker = start();
  try {
    await worker;
  } catch (err) {
    worker = undefined;
    throw err;
  }
  if (mainDatabase !== undefined)
    await adoptRows(mainDatabase, (legacy, tables) => call('adopt', [legacy, tables]), logger);

  const method =
    <K extends StoreOp>(op: K) =>
    (...args: Parameters<DeliveryStore[K]>) =>
      call(op, args) as ReturnType<DeliveryStore[K]>;
  return {
    // Off the event loop a bigger transaction holds no delivery, and fewer commits cost less per row.
    writeSliceRows: WORKER_SLICE_ROWS,
    write: method('write'),
    deliveriesOf: method('deliveriesOf'),
    timelineOf: method('timelineOf'),
    connectsSince: method('connectsSince'),
    duePushes: method('duePushes'),
    claimPush: method('claimPush'),
    acknowledged: method('acknowledged'),
    prune: method('prune'),
    async close() {
      if (closed) return;
      closed = true;
      if (worker === undefined) return;
      const w = await worker.catch(() => undefined);
      if (w === undefined) return;
      const exited = new Promise((resolve) => w.once('exit', resolve));
      await call('close', []).catch(() => undefined);
      await exited;
    },
  };
}

/**
 * Moves the record from the main store, where it was kept before it had a file of its own: the
 * worker copies the rows (unless it already holds some), then the old tables are dropped here.
 */
async function adoptRows(
  mainDatabase: BetterSqlite3.Database,
  copy: (legacyFile: string, tables: RecordTable[]) => Promise<unknown>,
  logger: Logger,
): Promise<void> {
  const tables = (Object.keys(RECORD_TABLES) as RecordTable[]).filter(
    (table) =>
      mainDatabase.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined,
  );
  if (tables.length === 0) return;
  const copied = await copy(mainDatabase.name, tables);
  mainDatabase.transaction(() => {
    for (const table of [...tables, RECEIPT_MIGRATION_TABLE]) mainDatabase.exec(`DROP TABLE IF EXISTS ${table}`);
  })();
  logger.info({ rows: copied, file: RECORD_FILE }, 'delivery record moved to its own file');
}
