import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createSigner } from 'fast-jwt';
import { Redis } from 'ioredis';
import pg from 'pg';
import { WAIT_MS, waitUntil } from './realtime.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'packages/server/dist/cli.js');
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Builds the server when `dist` is missing or older than its sources (the CLI runs from `dist`). */
export function ensureBuilt(): void {
  const newest = (dir: string): number =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts'))
      .reduce((max, e) => Math.max(max, statSync(join(e.parentPath, e.name)).mtimeMs), 0);
  const sources = Math.max(newest(join(ROOT, 'packages/server/src')), newest(join(ROOT, 'packages/protocol/src')));
  const built = existsSync(CLI) ? newest(join(ROOT, 'packages/server/dist')) : 0;
  if (built >= sources) return;
  const result = spawnSync('npx', ['tsc', '-b', 'packages/server'], { cwd: ROOT, encoding: 'utf8' });
  if (!existsSync(CLI)) throw new Error(`server build failed:\n${result.stdout}${result.stderr}`);
}

/** A fresh PostgreSQL database for one test file; `drop()` removes it. */
export async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tether_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Ports this process has handed out: a port not bound yet (a server still starting) is not free. */
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 for a server another process binds (a private redis-server, nginx).
 * It lies below the kernel's ephemeral range: a port from that range can be taken as the source
 * port of some outgoing connection (a full test run makes thousands) between this check and the
 * server's bind, and the server then exits with "address in use".
 */
export async function freePort(): Promise<number> {
  const lowest = ephemeralLow() ?? 0;
  for (let attempt = 0; lowest > 20_000 && attempt < 200; attempt++) {
    const candidate = 20_000 + Math.floor(Math.random() * (lowest - 20_000));
    const port = handedOut.has(candidate) ? undefined : await listenOnce(candidate);
    if (port === undefined) continue;
    handedOut.add(port);
    return port;
  }
  const port = await listenOnce(0); // the kernel's choice, from the ephemeral range
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  handedOut.add(port);
  return port;
}

function ephemeralLow(): number | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined;
  }
}

/** Listens on `port` of 127.0.0.1 and closes again: the port it got, or undefined when it was taken. */
function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(undefined));
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => done(bound));
    });
  });
}

/** One `tether serve` process. */
export class GatewayProcess {
  readonly lines: Record<string, unknown>[] = [];
  port = 0;
  exited: number | null | undefined;
  private readonly pokes = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: line });
        }
        this.poke();
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.lines.push({ stderr: chunk }));
    child.on('exit', (code) => {
      this.exited = code;
      this.poke();
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The first log line matching `match` (already written or future). */
  log(match: (line: Record<string, unknown>) => boolean, ms = WAIT_MS): Promise<Record<string, unknown>> {
    return waitUntil(
      'a log line',
      () => this.lines.find(match),
      (poke) => {
        this.pokes.add(poke);
        return () => this.pokes.delete(poke);
      },
      ms,
    );
  }

  async exit(ms = WAIT_MS): Promise<number | null> {
    return waitUntil(
      'process exit',
      () => this.exited,
      (poke) => {
        this.pokes.add(poke);
        return () => this.pokes.delete(poke);
      },
      ms,
    );
  }

  private poke(): void {
    for (const poke of [...this.pokes]) poke();
  }
}

export interface ClusterEnv {
  databaseUrl: string;
  /** A standalone Redis (`REDIS_URL`)… */
  redisUrl?: string;
  /** …or the seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`, e.g. `127.0.0.1:7101,127.0.0.1:7102`). */
  redisClusterNodes?: string;
  extra?: Record<string, string>;
}

/** Shared settings of one test cluster: secret, API key, a Redis prefix unique to the run. */
export class TestCluster {
  readonly secret = randomBytes(48).toString('base64url');
  readonly apiKey = randomBytes(24).toString('base64url');
  readonly prefix = `tt${randomBytes(5).toString('hex')}`;
  readonly nodes: GatewayProcess[] = [];
  private readonly dirs: string[] = [];
  private readonly signer = createSigner({ key: this.secret, algorithm: 'HS256', iss: 'tether', aud: 'tether' });

  constructor(private readonly env: ClusterEnv) {}

  /** Spawns a node and resolves once it logs `gateway listening`. */
  async start(extra: Record<string, string> = {}): Promise<GatewayProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), 'tether-cluster-'));
    this.dirs.push(dataDir);
    const child = spawn(process.execPath, [CLI, 'serve'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        DATABASE_URL: this.env.databaseUrl,
        ...(this.env.redisUrl === undefined ? {} : { REDIS_URL: this.env.redisUrl }),
        ...(this.env.redisClusterNodes === undefined ? {} : { REDIS_CLUSTER_NODES: this.env.redisClusterNodes }),
        REDIS_PREFIX: this.prefix,
        JWT_SECRET: this.secret,
        API_KEYS: this.apiKey,
        LOG_LEVEL: 'info',
        SHUTDOWN_GRACE_MS: '100',
        CONNECT_RATE_PER_IP: '10000',
        ...this.env.extra,
        ...extra,
      },
    });
    const node = new GatewayProcess(child);
    this.nodes.push(node);
    const listening = await node.log((line) => line.msg === 'gateway listening' || node.exited !== undefined, 30_000);
    if (listening.msg !== 'gateway listening') throw new Error(`node exited: ${JSON.stringify(node.lines.slice(-5))}`);
    node.port = listening.port as number;
    return node;
  }

  /** An access token for `sub` signed with the cluster's secret (an app backend's token). */
  token(sub: string, claims: Record<string, unknown> = {}, ttlSeconds = 600): string {
    const now = Date.now();
    return this.signer({ sub, iat_ms: now, exp: Math.floor(now / 1000) + ttlSeconds, ...claims });
  }

  async api(
    node: GatewayProcess,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(node.url + path, {
      method,
      headers: {
        authorization: `Bearer ${this.apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  /** SIGKILL: the node dies without cleaning anything up. */
  kill(node: GatewayProcess): void {
    node.child.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node.exited !== undefined) return;
        node.child.kill('SIGTERM');
        await node.exit(15_000).catch(() => node.child.kill('SIGKILL'));
      }),
    );
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
    if (this.env.redisUrl !== undefined) await this.dropRedisKeys([this.env.redisUrl]);
    if (this.env.redisClusterNodes !== undefined)
      await this.dropRedisKeys(await clusterMasterUrls(this.env.redisClusterNodes));
  }

  /**
   * Removes this run's keys (log streams, presence, heartbeats) from a shared Redis, or from each
   * master of a Redis Cluster. Stream keys start with a hash tag (`{<prefix>:u:ann}:x`), hence `*<prefix>*`.
   */
  private async dropRedisKeys(urls: string[]): Promise<void> {
    for (const url of urls) {
      const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `*${this.prefix}*`, 'COUNT', 1000);
          cursor = next;
          // One DEL per key: on a cluster node the keys of one batch are in different slots.
          await Promise.all(keys.map((key) => redis.del(key)));
        } while (cursor !== '0');
      } catch {
        // A private Redis already stopped: nothing to clean.
      } finally {
        redis.disconnect();
      }
    }
  }
}

/** `redis://host:port` of every master of the Redis Cluster reachable through `seeds` (`host:port,…`). */
export async function clusterMasterUrls(seeds: string): Promise<string[]> {
  for (const seed of seeds.split(',')) {
    const redis = new Redis(`redis://${seed.trim()}`, {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      const nodes = (await redis.call('CLUSTER', 'NODES')) as string;
      // <id> <ip:port@cport[,hostname]> <flags> … : the masters that are not failed.
      return nodes
        .split('\n')
        .map((line) => line.split(' '))
        .filter((fields) => fields[2]?.includes('master') === true && !fields[2].includes('fail'))
        .map((fields) => `redis://${fields[1]!.split('@')[0]}`);
    } catch {
      // Try the next seed.
    } finally {
      redis.disconnect();
    }
  }
  return [];
}

/** Re-runs `check` every `everyMs` until it returns true; for state that offers no event (Redis). */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  ms = WAIT_MS,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, everyMs));
  }
}
