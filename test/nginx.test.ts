import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, loggedInClient, type ClientUnderTest } from './helpers/client-harness.js';
import {
  createDatabase,
  ensureBuilt,
  freePort,
  pollUntil,
  REDIS_URL,
  TestCluster,
  type GatewayProcess,
} from './helpers/cluster.js';
import { WsClient } from './helpers/realtime.js';

/**
 * Debian's nginx in front of three gateway nodes, configured as docs/deployment.md says: WebSocket
 * upgrades for `/ws` and Socket.IO, stickiness for Socket.IO's long-polling, timeouts above the
 * heartbeat. Open-source nginx has no sticky cookie; it hashes a per-client key. Production uses
 * `ip_hash`; here every client is 127.0.0.1, so each names itself in a header and the same
 * `hash … consistent` spreads them over the nodes.
 */
function nginxConfig(dir: string, port: number, upstreams: number[]): string {
  return `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream tether {
    hash $http_x_client_id consistent;
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://tether;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
      proxy_buffering off;
    }
  }
}
`;
}

class Nginx {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'tether-nginx-'));
  url = '';

  async start(upstreams: number[]): Promise<void> {
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(this.dir, sub));
    const port = await freePort();
    const conf = join(this.dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig(this.dir, port, upstreams));
    const checked = spawnSync('nginx', ['-t', '-q', '-p', this.dir, '-c', conf], { encoding: 'utf8' });
    if (checked.status !== 0) throw new Error(`nginx -t failed: ${checked.stderr}`);
    this.child = spawn('nginx', ['-p', this.dir, '-c', conf], { stdio: 'ignore' });
    this.url = `http://127.0.0.1:${port}`;
    await pollUntil('nginx to listen', async () => {
      try {
        return (await fetch(`${this.url}/healthz`)).status === 200;
      } catch {
        return false;
      }
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGQUIT');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('three nodes behind nginx', () => {
  let db: Awaited<ReturnType<typeof createDatabase>>;
  let cluster: TestCluster;
  let nodes: GatewayProcess[];
  const nginx = new Nginx();
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    ensureBuilt();
    db = await createDatabase();
    cluster = new TestCluster({
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      extra: { TRUST_PROXY: 'true', SHUTDOWN_GRACE_MS: '500' },
    });
    nodes = [await cluster.start(), await cluster.start(), await cluster.start()];
    await nginx.start(nodes.map((node) => node.port));
  }, 120_000);

  afterAll(async () => {
    for (const close of closers) close();
    await nginx.stop();
    await cluster?.stop();
    await db?.drop();
  }, 60_000);

  it('carries Socket.IO (polling, then the upgrade) and /ws clients, spread over the nodes, with events from any node', async () => {
    const users = Array.from({ length: 9 }, (_, i) => `nginx-${i}`);
    const sockets = users.map((user, i) =>
      io(nginx.url, {
        auth: { token: cluster.token(user) },
        transports: ['polling', 'websocket'],
        extraHeaders: { 'x-client-id': `client-${i}` },
        reconnection: false,
        forceNew: true,
      }),
    );
    closers.push(...sockets.map((s) => () => s.disconnect()));
    const received = sockets.map(() => [] as number[]);
    sockets.forEach((socket, i) => socket.on('tick', (data: { n: number }) => received[i]!.push(data.n)));
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve, reject) => {
            socket.once('session_created', () => resolve());
            socket.once('connect_error', reject);
          }),
      ),
    );
    // Every polling client upgraded to WebSocket through nginx.
    await eventually('every upgrade', () => sockets.every((s) => s.io.engine.transport.name === 'websocket'));
    const ws = new WsClient(nginx.url, { headers: { authorization: `Bearer ${cluster.token('nginx-ws')}` } });
    closers.push(() => ws.close());
    await ws.next((f) => f.type === 'session_created');

    // The nine clients landed on more than one node (presence is cluster-wide).
    const homes = new Set<string>();
    for (const user of users) {
      const presence = await cluster.api(nodes[0]!, 'GET', `/v1/presence/users/${user}`);
      for (const entry of presence.body.connections as { node: string }[]) homes.add(entry.node);
    }
    expect(homes.size).toBeGreaterThan(1);

    for (let n = 1; n <= 3; n++) {
      const from = nodes[n - 1]!;
      const answer = await cluster.api(from, 'POST', '/v1/publish', {
        event: 'tick',
        data: { n },
        to: { users: [...users, 'nginx-ws'] },
      });
      expect(answer.status).toBe(202);
    }
    await eventually('every tick everywhere', () => received.every((r) => r.length === 3));
    expect(received).toEqual(users.map(() => [1, 2, 3]));
    await ws.next((f) => f.type === 'event' && (f.data as { n: number }).n === 3);
  });

  it('a node restarted behind it loses no event: SDK clients on both transports resume and receive every event once, in order', async () => {
    const kinds = ['ws', 'socket.io', 'ws', 'socket.io', 'ws', 'socket.io'] as const;
    const clients: { c: ClientUnderTest; seen: number[] }[] = [];
    for (const [i, kind] of kinds.entries()) {
      const email = `nginx-${randomUUID()}@example.test`;
      const created = await cluster.api(nodes[0]!, 'POST', '/v1/users', {
        email,
        password: 'correct horse battery',
        name: `Nginx ${i}`,
        role: 'user',
        scopes: ['ke/nginx'],
      });
      expect(created.status).toBe(201);
      const c = await loggedInClient(
        kind,
        { email, password: 'correct horse battery' },
        { httpUrl: nginx.url, realtimeUrl: nginx.url },
        // Socket.IO as browsers use it: polling first, then the upgrade, pinned by nginx's hash.
        { socketIo: { transports: ['polling', 'websocket'], extraHeaders: { 'x-client-id': `sdk-${i}` } } },
      );
      const seen: number[] = [];
      c.client.on('tick', (data) => void seen.push((data as { n: number }).n));
      c.client.connect();
      clients.push({ c, seen });
      closers.push(() => c.close());
    }
    await eventually('every client live', () => clients.every(({ c }) => c.client.state === 'connected'));

    // The node to restart: the one holding the /ws clients (they carry no hash key, so nginx puts
    // them all on one node), and a publisher on a node that stays up.
    const nodeIdOf = async (node: GatewayProcess): Promise<string> =>
      (await node.log((line) => line.msg === 'gateway listening')).node as string;
    const homeOf = async (c: ClientUnderTest): Promise<string> => {
      const presence = await cluster.api(nodes[0]!, 'GET', `/v1/presence/users/${c.client.session!.userId}`);
      return (presence.body.connections as { node: string }[])[0]!.node;
    };
    const ids = await Promise.all(nodes.map(nodeIdOf));
    const victimIndex = ids.indexOf(await homeOf(clients[0]!.c));
    const victim = nodes[victimIndex]!;
    const publishOn = nodes[(victimIndex + 1) % nodes.length]!;
    const onVictim = (await Promise.all(clients.map(({ c }) => homeOf(c)))).filter((id) => id === ids[victimIndex]);
    expect(onVictim.length).toBeGreaterThanOrEqual(3);

    // A steady stream while the victim restarts on its port.
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const answer = await cluster.api(publishOn, 'POST', '/v1/publish', {
          event: 'tick',
          data: { n: published + 1 },
          to: { scopes: ['ke/nginx'] },
        });
        expect(answer.status).toBe(202);
        published++;
        await new Promise((done) => setTimeout(done, 20));
      }
    })();
    await eventually('a few events before the restart', () => published >= 10);
    const port = victim.port;
    victim.child.kill('SIGTERM');
    await victim.exit(15_000);
    await eventually('events while the node is down', () => published >= 40);
    nodes[victimIndex] = await cluster.start({ PORT: String(port) });
    await eventually('events after the restart', () => published >= 80);
    publishing = false;
    await publisher;

    // Those on the restarted node reconnected (through nginx, to another node or back) and resumed.
    const reconnected = clients.filter(({ c }) => c.changes.filter((x) => x.current === 'connected').length > 1);
    expect(reconnected.length).toBeGreaterThanOrEqual(onVictim.length);
    const all = Array.from({ length: published }, (_, i) => i + 1);
    await eventually(
      'every event at every client',
      () => clients.every(({ seen }) => seen.length >= published),
      30_000,
    );
    for (const { seen } of clients) expect(seen).toEqual(all);
  }, 120_000);
});
