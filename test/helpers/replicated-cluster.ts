import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, pollUntil } from './cluster.js';

/**
 * A private Redis Cluster of three masters, each with one replica, for failover drills. The first
 * master ("the victim") is announced on a proxy's port, so every connection to it — clients' and its
 * replica's — passes through the proxy, which can stop forwarding the replication stream: writes
 * the victim acknowledges after `freezeReplication()` exist nowhere else, as when a master dies
 * before its replica caught up.
 */
export class ReplicatedCluster {
  private readonly dir = mkdtempSync(join(tmpdir(), 'tether-redis-failover-'));
  private readonly children = new Map<number, ChildProcess>();
  private proxy: FreezingProxy | undefined;
  /** Client ports of the six nodes: masters first (the victim is [0]), then replicas. */
  ports: number[] = [];

  /** `host:port,…` seeds for REDIS_CLUSTER_NODES: the masters that stay up. */
  get seeds(): string {
    return this.ports
      .slice(1, 3)
      .map((port) => `127.0.0.1:${port}`)
      .join(',');
  }

  /** Starts the six nodes; when one exits at start (its port was taken meanwhile), once more on new ports. */
  async start(): Promise<void> {
    try {
      await this.startOnce();
    } catch (err) {
      if (!(err instanceof NodeExited)) throw err;
      await this.stopNodes();
      await this.startOnce();
    }
  }

  private async startOnce(): Promise<void> {
    this.ports = [];
    for (let i = 0; i < 6; i++) this.ports.push(await freePort());
    const proxyPort = await freePort();
    for (const [i, port] of this.ports.entries()) {
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(await freePort()),
        '--cluster-config-file',
        join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        // A replica takes over however far behind it is: the drill is about what it lacks.
        '--cluster-replica-validity-factor',
        '0',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ];
      if (i === 0) args.push('--cluster-announce-port', String(proxyPort));
      this.children.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
    }
    this.proxy = await FreezingProxy.listen(proxyPort, this.ports[0]!);
    for (const port of this.ports)
      await pollUntil(`redis ${port}`, async () => {
        const child = this.children.get(port)!;
        if (child.exitCode !== null || child.signalCode !== null) throw new NodeExited(port);
        return ping(port);
      });
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...this.ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    // Each master has its replica attached and in sync before anything is written.
    await pollUntil('every master to have a replica in sync', async () => {
      const roles = await Promise.all(this.ports.slice(0, 3).map((port) => replicasOf(port)));
      return roles.every((count) => count === 1);
    });
  }

  /** Slot owned by the victim master: keys hashing there live on the shard that fails over. */
  async victimOwns(key: string): Promise<boolean> {
    return withRedis(this.ports[1]!, async (redis) => {
      const slot = (await redis.cluster('KEYSLOT', key)) as number;
      const slots = await redis.cluster('SLOTS');
      const owner = slots.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[2];
      const victimId = await withRedis(this.ports[0]!, (v) => v.cluster('MYID') as Promise<string>);
      return owner === victimId;
    });
  }

  /** From now on the victim's replica receives nothing more. */
  freezeReplication(): void {
    this.proxy!.frozen = true;
  }

  /** SIGKILL the victim and wait until its replica has taken over its slots and the cluster is whole. */
  async killVictimAndFailOver(): Promise<void> {
    const victim = this.children.get(this.ports[0]!)!;
    const exited = new Promise((done) => victim.once('exit', done));
    victim.kill('SIGKILL');
    await exited;
    this.proxy!.closeAll();
    await pollUntil(
      'a replica to take over the killed master',
      async () =>
        withRedis(this.ports[1]!, async (redis) => {
          const info = (await redis.cluster('INFO')) as string;
          const nodes = (await redis.cluster('NODES')) as string;
          // <id> <address> <flags,…> …: masters neither failed nor suspected.
          const masters = nodes
            .split('\n')
            .map((line) => (line.split(' ')[2] ?? '').split(','))
            .filter((flags) => flags.includes('master') && !flags.some((flag) => flag.startsWith('fail')));
          return /cluster_state:ok/.test(info) && masters.length === 3;
        }).catch(() => false),
      30_000,
      100,
    );
  }

  async stop(): Promise<void> {
    await this.stopNodes();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async stopNodes(): Promise<void> {
    this.proxy?.close();
    this.proxy = undefined;
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((done) => child.once('exit', done));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    this.children.clear();
  }
}

class NodeExited extends Error {
  constructor(port: number) {
    super(`redis-server on port ${port} exited at start`);
  }
}

/**
 * Forwards a port to a Redis node. A connection whose client speaks the replication handshake
 * (REPLCONF/PSYNC) is a replica's link; once `frozen`, what the master sends on it is dropped.
 */
class FreezingProxy {
  frozen = false;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async listen(port: number, target: number): Promise<FreezingProxy> {
    const server = createServer();
    const proxy = new FreezingProxy(server);
    server.on('connection', (client) => proxy.accept(client, target));
    await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
    return proxy;
  }

  private accept(client: Socket, target: number): void {
    const upstream = tcpConnect(target, '127.0.0.1');
    let replication = false;
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      if (!replication && /REPLCONF|PSYNC/i.test(chunk.toString('latin1'))) replication = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (replication && this.frozen) return;
      client.write(chunk);
    });
  }

  closeAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  close(): void {
    this.closeAll();
    this.server.close();
  }
}

async function withRedis<T>(port: number, run: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

function ping(port: number): Promise<boolean> {
  return withRedis(port, async (redis) => (await redis.ping()) === 'PONG').catch(() => false);
}

/** How many replicas report `state=online` in a master's INFO replication. */
function replicasOf(port: number): Promise<number> {
  return withRedis(port, async (redis) => {
    const info = await redis.info('replication');
    return (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
  }).catch(() => 0);
}
