import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createGateway, loadConfig, type Gateway, type GatewayOptions, type SettingName } from '@tether/server';
import type { AccessClaims } from '@tether/server';
import { gatewayInternals, type GatewayInternals } from '@tether/server/internals';

export type Env = Partial<Record<SettingName, string>>;

export interface TestGateway {
  gateway: Gateway;
  /** The gateway's parts (hub, store, signer…), for assertions apps cannot make. */
  internals: GatewayInternals;
  url: string;
  port: number;
  apiKey: string;
  /** Signs an access token with the gateway's own key. */
  sign(claims: AccessClaims, ttlSeconds?: number): string;
  /** Every log line written so far (JSON text), for assertions such as "no token is ever logged". */
  logs(): string;
  /** Calls the HTTP API: JSON in, `{status, body}` out. */
  http(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** The same with the API key. */
  api(method: string, path: string, body?: unknown): Promise<HttpAnswer>;
  close(): Promise<void>;
}

export interface HttpAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience: bodies are asserted field by field
  body: any;
  headers: Headers;
}

/**
 * Starts a real gateway on 127.0.0.1, port 0, with a fresh DATA_DIR, a random HS256 secret and API key,
 * and short lifetimes left to the caller's `env`. Logs are captured, not printed.
 */
export async function startGateway(env: Env = {}, options: GatewayOptions = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tether-test-'));
  const apiKey = randomBytes(24).toString('base64url');
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    API_KEYS: apiKey,
    LOG_LEVEL: 'debug',
    SHUTDOWN_GRACE_MS: '200',
    ...env,
  });
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const gateway = await createGateway(config, { logDestination: destination, ...options });
  const { url, port } = await gateway.listen();

  const http = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (metrics): keep the text.
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };

  const internals = gatewayInternals(gateway);
  return {
    gateway,
    internals,
    url,
    port,
    apiKey,
    sign(claims, ttlSeconds = config.accessTtlSeconds) {
      if (internals.signer === undefined) throw new Error('this gateway has no signing key');
      return internals.signer.sign(claims, ttlSeconds).token;
    },
    logs: () => lines.join(''),
    http,
    api: (method, path, body) => http(method, path, body, { authorization: `Bearer ${apiKey}` }),
    async close() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
