import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, ensureBuilt, pollUntil, REDIS_URL, TestCluster } from './helpers/cluster.js';
import { leaderOf } from './helpers/pg-ingest.js';
import { SioClient } from './helpers/realtime.js';

/**
 * PG_NOTIFY_URL in cluster mode: every node is configured alike, one LISTENs (the one holding the
 * advisory lock), so a NOTIFY is published once; when that node dies another takes over.
 */
describe('NOTIFY ingest with three gateway processes over Redis', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let sql: pg.Client;
  let client: SioClient;
  const clients: SioClient[] = [];

  const notify = (event: string, n: number) =>
    sql.query('SELECT pg_notify($1, $2)', ['changes', JSON.stringify({ event, data: { n }, to: { users: ['dee'] } })]);

  /** Events published by the live nodes together (each counts what it published itself). */
  const publishedByAll = async (): Promise<number> => {
    let sum = 0;
    for (const node of cluster.nodes.filter((n) => n.exited === undefined)) {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      sum += Number(/^tether_publishes_total (\d+)$/m.exec(text)?.[1] ?? 0);
    }
    return sum;
  };

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      extra: { PG_NOTIFY_URL: db.url, PG_NOTIFY_CHANNELS: 'changes' },
    });
    for (let i = 0; i < 3; i++) await cluster.start();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
  }, 120_000);

  afterAll(async () => {
    client?.close();
    for (const c of clients) c.close();
    await sql?.end();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('one pg_notify reaches a client once, though three nodes run', async () => {
    client = new SioClient(cluster.nodes[0]!.url, { auth: { token: cluster.token('dee') } });
    await client.session();

    await notify('changed', 1);
    await notify('settled', 1);
    await client.first('settled');
    // Each listening node would publish both NOTIFYs itself (six publishes, three copies each).
    await pollUntil('both NOTIFYs published', async () => (await publishedByAll()) >= 2);
    expect(await publishedByAll()).toBe(2);
    expect(client.count('changed')).toBe(1);
    expect(client.count('settled')).toBe(1);
  });

  it('when the listening node is killed another takes over, and the next NOTIFY arrives once', async () => {
    const listener = await leaderOf(cluster.nodes, 'notify');
    cluster.kill(listener);
    await listener.exit();
    const survivors = cluster.nodes.filter((node) => node.exited === undefined);
    const next = await leaderOf(survivors, 'notify');
    expect(next).not.toBe(listener);
    // A client on a node that stays up, and not the listening one: the event crosses the cluster.
    const other = new SioClient(survivors.find((node) => node !== next)!.url, {
      auth: { token: cluster.token('dee') },
    });
    clients.push(other);
    await other.session();
    const before = await publishedByAll();

    await notify('changed', 2);
    await notify('settled', 2);
    await other.first('settled');
    await pollUntil('both NOTIFYs published', async () => (await publishedByAll()) >= before + 2);
    expect(await publishedByAll()).toBe(before + 2);
    expect(other.all<{ n: number }>('changed').map((d) => d.n)).toEqual([2]);
    expect(other.count('settled')).toBe(1);
  });
});
