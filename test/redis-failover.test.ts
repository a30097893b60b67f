import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, pollUntil } from './helpers/cluster.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { ReplicatedCluster } from './helpers/replicated-cluster.js';
import { connect, kinds, type Conn, type Kind } from './helpers/resumable.js';

/**
 * Redis acknowledges a write before it is replicated or persisted: a promoted replica, or a master
 * restarted from its last snapshot, can lack appends whose publishes got a 202, with the stream's
 * epoch unchanged and a lower head. The log then notices that another Redis process serves the
 * stream and starts a new epoch, so nobody continues past what was lost: every acknowledged event
 * is delivered, or its addressee is told `recovered: false`.
 */

/** A private redis-server that snapshots only on SAVE and can be killed and restarted on the same files. */
class SnapshotRedis {
  private child: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'tether-redis-snapshot-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: 'ignore' },
    );
    await pollUntil('redis-server to accept connections', () =>
      this.command((r) => r.ping()).then((p) => p === 'PONG'),
    );
  }

  /** Runs one command on a short-lived connection; false when Redis cannot be reached. */
  async command<T>(run: (redis: Redis) => Promise<T>): Promise<T | false> {
    const redis = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return await run(redis);
    } catch {
      return false;
    } finally {
      redis.disconnect();
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
  }

  async remove(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A user of one role on one transport. */
interface Role {
  kind: Kind;
  user: string;
  /** Every `tick` n published to this user with a 202. */
  acknowledged: number[];
}

interface Drill {
  gw: TestGateway;
  /** Users whose streams lose appends: live (connected throughout), before (left before the lost appends), after (saw them live, then left). */
  live: Role[];
  before: Role[];
  after: Role[];
  /** Users whose streams live where nothing is lost: they resume whole. */
  untouched: Role[];
  /** From now on appends are acknowledged but will be lost (snapshot taken, replication frozen). */
  markDurable(): Promise<void>;
  /** Lose them: kill the Redis that holds them, and come back (restart or failover). */
  lose(): Promise<void>;
}

/**
 * Publishes to every role, makes Redis lose the last acknowledged appends, publishes again, then
 * resumes every role from its last position: every event that got a 202 reached its user, or the
 * user is told `recovered: false`; and a live connection is closed with STREAM_RESET rather than
 * left continuing past the loss.
 */
async function drill(d: Drill, open: Conn[]): Promise<void> {
  const { gw, live, before, after, untouched } = d;
  const everyone = [...live, ...before, ...after, ...untouched];
  let n = 0;
  const tick = async (role: Role): Promise<void> => {
    const value = ++n;
    const answer = await gw.api('POST', '/v1/publish', {
      event: 'tick',
      data: { n: value },
      to: { users: [role.user] },
    });
    expect(answer.status).toBe(202);
    role.acknowledged.push(value);
  };
  const token = (role: Role): string => gw.sign({ sub: role.user });
  const conns = new Map(everyone.map((role) => [role, connect(gw.url, role.kind, token(role))]));
  open.push(...conns.values());
  await Promise.all([...conns.values()].map((c) => c.session()));

  for (const role of everyone) for (let i = 0; i < 2; i++) await tick(role);
  await Promise.all([...conns.values()].map((c) => c.waitTicks(2)));
  await d.markDurable();

  const leftAt = new Map<Role, string | undefined>();
  const leave = async (role: Role): Promise<void> => {
    leftAt.set(role, conns.get(role)!.ticks().at(-1)!.position);
    await conns.get(role)!.leave();
  };
  for (const role of [...before, ...untouched.filter((_, i) => i % 2 === 0)]) await leave(role);
  // Acknowledged, delivered live to those connected, and soon lost.
  for (const role of everyone) for (let i = 0; i < 3; i++) await tick(role);
  await Promise.all([...live, ...after].map((role) => conns.get(role)!.waitTicks(5)));
  for (const role of after) await leave(role);

  const resets = live.map((role) => conns.get(role)!.authError());
  await d.lose();
  // Publishes succeed again once the gateway is back on Redis.
  await pollUntil('publishes to be accepted again', async () => {
    const answer = await gw.api('POST', '/v1/publish', { event: 'probe', data: {}, to: { users: ['nobody'] } });
    return answer.status === 202;
  });
  for (const role of everyone) for (let i = 0; i < 3; i++) await tick(role);

  // The live connections cannot be sent what Redis lost: they are told to resume…
  expect(await Promise.all(resets)).toEqual(live.map(() => 'STREAM_RESET'));
  for (const role of live) leftAt.set(role, conns.get(role)!.ticks().at(-1)!.position);
  // …and every resume that cannot be proven complete says so, instead of skipping events.
  for (const role of everyone) {
    const wasOpen = !leftAt.has(role);
    if (wasOpen) await leave(role);
    const again = connect(gw.url, role.kind, token(role), { position: leftAt.get(role) });
    open.push(again);
    const session = await again.session();
    if (session.recovered === true) await again.waitTicks(role.acknowledged.length - conns.get(role)!.ticks().length);
    const received = [...conns.get(role)!.ticks(), ...again.ticks()].map((t) => t.n);
    const missing = role.acknowledged.filter((value) => !received.includes(value));
    const lost = !untouched.includes(role);
    expect({ user: role.user, recovered: session.recovered, missing: missing.length > 0 }).toEqual({
      user: role.user,
      recovered: !lost,
      missing: lost,
    });
    if (!lost) expect(received).toEqual(role.acknowledged);
    // From its new position on, it is whole again.
    const seen = again.ticks().length;
    await tick(role);
    await again.waitTicks(seen + 1);
    expect(again.ticks().at(-1)!.n).toBe(role.acknowledged.at(-1));
  }
}

function role(kind: Kind, user: string): Role {
  return { kind, user, acknowledged: [] };
}

describe('the event log when Redis loses acknowledged appends', () => {
  const open: Conn[] = [];
  afterAll(() => {
    for (const c of open) c.close();
  });

  it('a master restarted from a snapshot older than its last appends: no reader continues past the loss', async () => {
    const redis = new SnapshotRedis(await freePort());
    await redis.start();
    const gw = await startGateway({ REDIS_URL: redis.url, JWT_EXPIRATION_SECONDS: '600' });
    try {
      await drill(
        {
          gw,
          live: kinds.map((kind) => role(kind, `live-${kind}`)),
          before: kinds.map((kind) => role(kind, `before-${kind}`)),
          after: kinds.map((kind) => role(kind, `after-${kind}`)),
          untouched: [],
          markDurable: async () => expect(await redis.command((r) => r.save())).toBe('OK'),
          lose: async () => {
            await redis.kill();
            await redis.start();
          },
        },
        open,
      );
    } finally {
      await gw.close();
      await redis.remove();
    }
  }, 120_000);

  it('a Redis Cluster master killed before its replica had its last appends: after the failover, no reader continues past the loss', async () => {
    const cluster = new ReplicatedCluster();
    let gw: TestGateway | undefined;
    try {
      await cluster.start();
      const prefix = 'failover';
      gw = await startGateway({
        REDIS_CLUSTER_NODES: cluster.seeds,
        REDIS_PREFIX: prefix,
        JWT_EXPIRATION_SECONDS: '600',
      });
      // Users whose stream lives on the shard that fails over, and some that do not.
      const onVictim = async (wanted: boolean, name: string): Promise<string> => {
        for (let i = 0; ; i++) {
          const user = `${name}-${i}`;
          if ((await cluster.victimOwns(`{${prefix}:u:${user}}:m`)) === wanted) return user;
        }
      };
      const pick = async (name: string, wanted = true): Promise<Role[]> =>
        Promise.all(kinds.map(async (kind) => role(kind, await onVictim(wanted, `${name}-${kind}`))));
      const c = cluster;
      await drill(
        {
          gw,
          live: await pick('live'),
          before: await pick('before'),
          after: await pick('after'),
          untouched: [...(await pick('elsewhere-a', false)), ...(await pick('elsewhere-b', false))],
          markDurable: () => Promise.resolve(c.freezeReplication()),
          lose: () => c.killVictimAndFailOver(),
        },
        open,
      );
    } finally {
      await gw?.close();
      await cluster.stop();
    }
  }, 180_000);
});
