import { generateKeyPairSync } from 'node:crypto';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startGateway, type HttpAnswer, type TestGateway } from './helpers/gateway.js';

type Document = {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};
type Operation = {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
  requestBody?: unknown;
  security?: Record<string, unknown>[];
};

/** Routes that are not the HTTP API: the realtime transports and Swagger UI's own pages and assets. */
const NOT_API = [/^\/socket\.io\//, /^\/ws$/, /^\/docs(\/|$)/];

/**
 * The OpenAPI document is generated from the schemas the routes validate with. Every route the
 * gateway registers is described, and real answers of each route — successes and errors — validate
 * against the schema the document gives for their status: a handler whose answer drifts from its
 * description fails here.
 */
describe('OpenAPI 3.1 description of the HTTP API', () => {
  let gw: TestGateway;
  let doc: Document;
  let ajv: Ajv2020;
  const validators = new Map<string, ValidateFunction>();
  /** `METHOD /path status` of every answer checked, to prove each operation was exercised. */
  const checked = new Set<string>();

  beforeAll(async () => {
    // An RS256 key, so /.well-known/jwks.json has keys to answer.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    gw = await startGateway({
      JWT_SECRET: '', // unset: the key below signs
      JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      AUTH_RATE_PER_MINUTE: '1000',
    });
    const answer = await gw.http('GET', '/openapi.json');
    expect(answer.status).toBe(200);
    doc = answer.body as Document;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'doc', components: doc.components });
  });
  afterAll(async () => {
    await gw?.close();
  });

  /** Compiles a schema of the document; its `$ref`s point into the components, registered as `doc`. */
  const compile = (schema: unknown): ValidateFunction =>
    ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')) as object);

  /** Validates a real answer against the document's schema for (method, path, status). */
  function conforms(method: string, path: string, answer: HttpAnswer): void {
    const op = doc.paths[path]?.[method.toLowerCase()];
    expect(op, `${method} ${path} is described`).toBeDefined();
    const response = op!.responses[String(answer.status)];
    expect(response, `${method} ${path} documents status ${answer.status}`).toBeDefined();
    checked.add(`${method} ${path} ${answer.status}`);
    const content = response!.content;
    if (content === undefined) {
      expect(answer.body, `${method} ${path} ${answer.status} has no body`).toBeUndefined();
      return;
    }
    const [type, { schema }] = Object.entries(content)[0]!;
    expect(answer.headers.get('content-type') ?? '').toContain(type);
    const key = `${method} ${path} ${answer.status}`;
    let validate = validators.get(key);
    if (validate === undefined) {
      validate = compile(schema);
      validators.set(key, validate);
    }
    const ok = validate(answer.body);
    expect(ok, `${key}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(answer.body).slice(0, 400)}`).toBe(true);
  }

  it('is an OpenAPI 3.1 document with the package version, and every $ref resolves', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    // Every `$ref` is a JSON pointer into this document that leads somewhere.
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]*)"/g)].map(([, ref]) => ref!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref, 'a local reference').toMatch(/^#\//);
      const target = ref
        .slice(2)
        .split('/')
        .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
        .reduce<unknown>((at, token) => (at as Record<string, unknown> | undefined)?.[token], doc);
      expect(target, `$ref ${ref} resolves`).toBeTypeOf('object');
    }
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(Object.keys(op.responses).length, `${method} ${path} has responses`).toBeGreaterThan(0);
        for (const requirement of op.security ?? [])
          for (const scheme of Object.keys(requirement)) expect(doc.components.securitySchemes).toHaveProperty(scheme);
        // Every schema in the document compiles.
        for (const response of Object.values(op.responses))
          for (const media of Object.values(response.content ?? {})) compile(media.schema);
      }
    }
    const ids = Object.values(doc.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('describes every route the gateway registers', () => {
    const registered = gw.internals.app.registeredRoutes
      .map((route) => route.split(' ') as [string, string])
      .filter(([method, url]) => method !== 'HEAD' && method !== 'OPTIONS' && !NOT_API.some((re) => re.test(url)));
    expect(registered.length).toBeGreaterThan(15);
    const described = new Set(
      Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
      ),
    );
    const missing = registered.map(([m, url]) => `${m} ${url}`).filter((route) => !described.has(route));
    expect(missing).toEqual([]);
    // And nothing is described that is not served.
    const served = new Set(registered.map(([m, url]) => `${m} ${url}`));
    expect([...described].filter((route) => !served.has(route))).toEqual([]);
  });

  it('real answers of every route validate against the document, successes and errors alike', async () => {
    // Token service.
    const email = 'ada@example.com';
    const password = 'correct horse battery';
    const created = await gw.api('POST', '/v1/users', { email, password, name: 'Ada', scopes: ['ke/a'] });
    conforms('POST', '/v1/users', created);
    expect(created.status).toBe(201);
    const userId = created.body.id as string;
    conforms('POST', '/v1/users', await gw.api('POST', '/v1/users', { email, password, name: 'Ada' })); // 409
    conforms('POST', '/v1/users', await gw.api('POST', '/v1/users', { email: 'nope' })); // 400
    conforms('POST', '/v1/users', await gw.http('POST', '/v1/users', { email, password, name: 'Ada' })); // 401

    const login = await gw.http('POST', '/auth/login', { email, password });
    conforms('POST', '/auth/login', login);
    expect(login.status).toBe(200);
    conforms('POST', '/auth/login', await gw.http('POST', '/auth/login', { email, password: 'wrong password' }));
    conforms(
      'POST',
      '/auth/login',
      await gw.http('POST', '/auth/login', { email, password }, { origin: 'https://evil.example' }),
    );
    const refreshed = await gw.http('POST', '/auth/refresh', { refresh_token: login.body.refresh_token });
    conforms('POST', '/auth/refresh', refreshed);
    conforms('POST', '/auth/refresh', await gw.http('POST', '/auth/refresh', { refresh_token: 'garbage' }));
    const mobile = await gw.http('POST', '/auth/refresh-mobile', { refresh_token: refreshed.body.refresh_token });
    conforms('POST', '/auth/refresh-mobile', mobile);
    expect(mobile.status).toBe(200);
    // The token rotated away: reuse.
    conforms(
      'POST',
      '/auth/refresh-mobile',
      await gw.http('POST', '/auth/refresh-mobile', { refresh_token: refreshed.body.refresh_token }),
    );
    conforms('POST', '/auth/refresh-mobile', await gw.http('POST', '/auth/refresh-mobile', {}));
    const again = await gw.http('POST', '/auth/login', { email, password });
    const logout = await gw.http('POST', '/auth/logout', { refresh_token: again.body.refresh_token });
    conforms('POST', '/auth/logout', logout);
    expect(logout.status).toBe(204);
    conforms('POST', '/auth/logout', await gw.http('POST', '/auth/logout'));
    const guest = await gw.http('POST', '/auth/guest', {});
    conforms('POST', '/auth/guest', guest);
    expect(guest.status).toBe(200);

    // Users.
    conforms('GET', '/v1/users/{id}', await gw.api('GET', `/v1/users/${userId}`));
    conforms('GET', '/v1/users/{id}', await gw.api('GET', '/v1/users/nobody'));
    const patched = await gw.api('PATCH', `/v1/users/${userId}`, { scopes: ['ke/a', 'ke/b'], role: 'officer' });
    conforms('PATCH', '/v1/users/{id}', patched);
    expect(patched.body.scopes).toEqual(['ke/a', 'ke/b']);
    conforms('PATCH', '/v1/users/{id}', await gw.api('PATCH', `/v1/users/${userId}`, { unknown: 1 }));

    // Publish, one and a batch, a refused batch, presence with a live connection, disconnect.
    const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/ws`, [`bearer.${gw.sign({ sub: 'p1' })}`]);
    await new Promise((resolve, reject) => {
      socket.once('message', resolve); // session_created
      socket.once('error', reject);
    });
    try {
      const presence = await gw.api('GET', '/v1/presence/users/p1');
      conforms('GET', '/v1/presence/users/{id}', presence);
      expect(presence.body.online).toBe(true);
      const one = await gw.api('POST', '/v1/publish', { event: 'n', data: { id: 'mine' }, to: { users: ['p1'] } });
      conforms('POST', '/v1/publish', one);
      expect(one.body.delivered).toBe(1);
      const batch = await gw.api('POST', '/v1/publish', [
        { event: 'n', to: { users: ['p1'] } },
        { event: 'n', to: { scopes: ['ke/a'] } },
      ]);
      conforms('POST', '/v1/publish', batch);
      expect(batch.body.results).toHaveLength(2);
      conforms(
        'POST',
        '/v1/publish',
        await gw.api('POST', '/v1/publish', [{ event: 'n', to: { scopes: ['bad scope'] } }]),
      );
      conforms('POST', '/v1/publish', await gw.api('POST', '/v1/publish', { event: '' }));
      conforms('POST', '/v1/publish', await gw.http('POST', '/v1/publish', { event: 'n', to: {} }));
      // The delivery record of that user-addressed event (written in the background: poll), a timeline.
      let record = await gw.api('GET', `/v1/events/${one.body.id as string}/deliveries`);
      for (let tries = 0; record.status === 404 && tries < 100; tries++) {
        await new Promise((done) => setTimeout(done, 50));
        record = await gw.api('GET', `/v1/events/${one.body.id as string}/deliveries`);
      }
      conforms('GET', '/v1/events/{id}/deliveries', record);
      expect(record.status).toBe(200);
      conforms('GET', '/v1/events/{id}/deliveries', await gw.api('GET', '/v1/events/nothing-here/deliveries'));
      const timeline = await gw.api('GET', '/v1/users/p1/timeline?limit=50');
      conforms('GET', '/v1/users/{id}/timeline', timeline);
      expect(timeline.body.entries.length).toBeGreaterThan(0);
      conforms('GET', '/v1/users/{id}/timeline', await gw.api('GET', '/v1/users/p1/timeline?limit=0'));
      const disconnected = await gw.api('POST', '/v1/users/p1/disconnect');
      conforms('POST', '/v1/users/{id}/disconnect', disconnected);
      expect(disconnected.body.disconnected).toBe(1);
    } finally {
      socket.close();
    }

    // Devices.
    const device = await gw.api('POST', '/v1/devices', { userId, platform: 'android', token: 'fcm-token-1' });
    conforms('POST', '/v1/devices', device);
    expect(device.status).toBe(201);
    conforms('POST', '/v1/devices', await gw.api('POST', '/v1/devices', { userId, platform: 'pager', token: 'x' }));
    conforms('DELETE', '/v1/devices/{id}', await gw.api('DELETE', `/v1/devices/${device.body.id as string}`));
    conforms('DELETE', '/v1/devices/{id}', await gw.api('DELETE', `/v1/devices/${device.body.id as string}`));

    // System.
    conforms('GET', '/healthz', await gw.http('GET', '/healthz'));
    conforms('GET', '/readyz', await gw.http('GET', '/readyz'));
    const metrics = await gw.http('GET', '/metrics');
    conforms('GET', '/metrics', metrics);
    expect(metrics.body).toContain('# HELP');
    const jwks = await gw.http('GET', '/.well-known/jwks.json');
    conforms('GET', '/.well-known/jwks.json', jwks);
    expect(jwks.body.keys.length).toBeGreaterThan(0);
    conforms('GET', '/openapi.json', await gw.http('GET', '/openapi.json'));

    // Every described operation was exercised at least once.
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const exercised = new Set([...checked].map((entry) => entry.split(' ').slice(0, 2).join(' ')));
    expect(operations.filter((op) => !exercised.has(op))).toEqual([]);
    expect(checked.size).toBeGreaterThanOrEqual(30);
  });

  it('a handler answer that drifts from its description fails validation', () => {
    const schemaOf = (path: string, method: string, status: string) =>
      compile(doc.paths[path]![method]!.responses[status]!.content!['application/json']!.schema);
    const published = schemaOf('/v1/publish', 'post', '202');
    expect(published({ id: 'e1', delivered: 2 })).toBe(true);
    expect(published({ id: 'e1', delivered: 'two' })).toBe(false);
    expect(published({ id: 'e1' })).toBe(false);
    expect(published({ id: 'e1', delivered: 2, extra: true })).toBe(false);
    // Errors: the shared body, its code one this route answers with this status, nothing else.
    const notFound = schemaOf('/v1/users/{id}', 'get', '404');
    const body = { code: 'NOT_FOUND', message: 'No such user', timestamp: 1 };
    expect(notFound(body)).toBe(true);
    expect(notFound({ ...body, code: 'CONFLICT' })).toBe(false);
    expect(notFound({ ...body, extra: 1 })).toBe(false);
    expect(notFound({ code: 'NOT_FOUND', message: 'No such user' })).toBe(false);
    // A route's own extra fields are described: `/readyz`'s `checks`.
    const notReady = schemaOf('/readyz', 'get', '503');
    const down = { code: 'NOT_READY', message: 'down', timestamp: 1, node: 'n1', checks: { store: 'unreachable' } };
    expect(notReady(down)).toBe(true);
    expect(notReady({ ...down, checks: { store: 'sleeping' } })).toBe(false);
  });

  it('serves a browsable page at /docs', async () => {
    const page = await fetch(`${gw.url}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('swagger');
    // Swagger UI's CSP covers its own pages, not the API's answers.
    const docsHeaders = (await fetch(`${gw.url}/docs/static/index.html`)).headers;
    expect(docsHeaders.get('content-security-policy')).toContain("default-src 'self'");
    expect((await gw.http('GET', '/healthz')).headers.get('content-security-policy')).toBeNull();
    // The UI loads the document the gateway serves.
    const json = await gw.http('GET', '/docs/json');
    expect(json.status).toBe(200);
    expect(json.body).toEqual(doc);
  });
});
