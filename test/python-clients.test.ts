import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy, provisionUser } from './helpers/client-harness.js';
import { startGateway, type TestGateway } from './helpers/gateway.js';
import { waitUntil } from './helpers/realtime.js';

/** Debian's interpreter, which has python3-socketio, python3-websocket and python3-requests (.ci/run installs them). */
const PYTHON = '/usr/bin/python3';
const EXAMPLES = resolve(import.meta.dirname, '../docs/examples/python');

/** What a script printed: one JSON object per line. */
type Line = Record<string, unknown>;

/** Runs one of the documented example clients and collects its lines. */
class PythonClient {
  readonly lines: Line[] = [];
  private readonly pokes = new Set<() => void>();
  private readonly child: ChildProcess;
  stderr = '';

  constructor(script: string, env: Record<string, string>) {
    this.child = spawn(PYTHON, [resolve(EXAMPLES, script)], {
      env: { PATH: process.env.PATH, PYTHONUNBUFFERED: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (text.trim() !== '') this.lines.push(JSON.parse(text) as Line);
      }
      for (const poke of [...this.pokes]) poke();
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
  }

  of(key: string): Line[] {
    return this.lines.filter((line) => key in line);
  }

  /** Waits until `count` lines have `key` (re-checked on every line printed). */
  async until(key: string, count: number, ms = 30_000): Promise<Line[]> {
    try {
      return await waitUntil(
        `${count} "${key}" lines`,
        () => (this.of(key).length >= count ? this.of(key) : undefined),
        (poke) => {
          this.pokes.add(poke);
          return () => this.pokes.delete(poke);
        },
        ms,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; printed ${JSON.stringify(this.lines)}; stderr ${this.stderr}`);
    }
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

const ORDER = { id: 'order-7', customer: { name: 'Wanjiru', tags: ['ñandú', '🐄'] }, n: 0 };

describe.each(['socketio_client.py', 'ws_client.py'])('the documented Python client %s', (script) => {
  let gw: TestGateway;
  let proxy: TcpProxy;
  const running: PythonClient[] = [];

  beforeAll(async () => {
    if (!existsSync(PYTHON))
      throw new Error(`${PYTHON} is missing: run .ci/run, which installs Debian's python3-socketio`);
    // Three-second tokens, warned one second ahead: three lifetimes pass in about ten seconds.
    gw = await startGateway({
      JWT_EXPIRATION_SECONDS: '3',
      TOKEN_EXPIRY_WARNING_SECONDS: '1',
      AUTH_RATE_PER_MINUTE: '1000',
    });
    proxy = await TcpProxy.start(gw.port);
  });
  afterEach(() => {
    for (const client of running.splice(0)) client.stop();
    proxy.restore();
  });
  afterAll(async () => {
    await proxy?.close();
    await gw?.close();
  });

  async function start(env: Record<string, string> = {}): Promise<{ client: PythonClient; userId: string }> {
    const user = await provisionUser(gw);
    const client = new PythonClient(script, {
      TETHER_URL: proxy.url,
      TETHER_EMAIL: user.email,
      TETHER_PASSWORD: user.password,
      ...env,
    });
    running.push(client);
    await client.until('session', 1);
    return { client, userId: user.id };
  }

  const publish = (userId: string, n: number) =>
    gw.api('POST', '/v1/publish', { event: 'order', data: { ...ORDER, n }, to: { users: [userId] } });

  it('receives events with data as published (one-argument handlers), and renews its token in place across three token lifetimes', async () => {
    // socketio_client.py without meta registers the usual `def handler(data)`.
    // Before the login: the first token is issued after this, and each reauth comes a second before
    // its token's end (under load the login and connect alone can take over a second).
    const started = Date.now();
    const { client, userId } = await start({ TETHER_META: '0' });
    for (let lifetime = 1; lifetime <= 4; lifetime++) {
      await client.until('reauth', lifetime, 15_000);
      expect((await publish(userId, lifetime)).status).toBe(202);
      await client.until('event', lifetime);
    }
    expect(client.of('reauth').every((line) => line.reauth === true)).toBe(true);
    expect(client.of('event').map((line) => line.data)).toEqual([1, 2, 3, 4].map((n) => ({ ...ORDER, n })));
    // Four renewals, each at least two seconds into its token's three: three lifetimes have passed.
    expect(Date.now() - started).toBeGreaterThan(3 * 3000 - 2000);
    // One connection the whole time: no second session, no disconnect, no auth error.
    expect(client.of('session')).toHaveLength(1);
    expect(client.of('disconnected')).toHaveLength(0);
    expect(client.of('auth_error')).toHaveLength(0);
  }, 60_000);

  it('reconnects after a network cut presenting its last position, and receives what it missed, once', async () => {
    const { client, userId } = await start();
    await publish(userId, 1);
    await client.until('event', 1);
    proxy.cut();
    await client.until('disconnected', 1);
    for (const n of [2, 3]) await publish(userId, n);
    proxy.restore();
    await client.until('session', 2);
    expect(client.of('session')[1]!.recovered).toBe(true);
    await client.until('event', 3);
    await publish(userId, 4);
    await client.until('event', 4);
    expect(client.of('event').map((line) => (line.data as { n: number }).n)).toEqual([1, 2, 3, 4]);
  }, 60_000);
});
