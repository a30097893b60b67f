import fc from 'fast-check';

/**
 * Generators for the fuzz suite (test/fuzz.test.ts): arbitrary values, and near-valid inputs made
 * by mutating the real shapes of `/ws` frames (`ClientFrame` in @tether/protocol), Socket.IO events
 * and HTTP bodies, so that most inputs get past the first check and reach the code behind it.
 */

/**
 * `size` inputs at a time (one batch per connection). A failing batch is reported by a summary of
 * each input, cut short: fast-check's own printer recurses into deeply nested values and overflows.
 */
export function batchOf<T>(input: fc.Arbitrary<T>, size: number): fc.Arbitrary<T[]> {
  return fc
    .array(input, { minLength: size, maxLength: size })
    .map((items) => Object.assign(items, { [fc.toStringMethod]: () => `[${items.map(summary).join(',\n ')}]` }));
}

function summary(value: unknown): string {
  let text: string;
  try {
    text =
      JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)) ?? 'undefined';
  } catch {
    text = '<too deep to print>';
  }
  return text.length > 240 ? `${text.slice(0, 240)}… (${text.length} chars)` : text;
}

/** Strings that tend to break things: empty, huge, control characters, lone surrogates, prototype keys. */
const nastyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '__proto__', 'constructor', '*', '..', '/', 'a'.repeat(201)),
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)),
  fc.stringMatching(/^[A-Za-z0-9_.:/-]{1,12}$/),
);

/** A deeply nested array or object (JSON depth), as a value. */
const deepValue = fc
  .record({ depth: fc.integer({ min: 50, max: 3_000 }), object: fc.boolean() })
  .map(({ depth, object }) => {
    let value: unknown = 0;
    for (let i = 0; i < depth; i++) value = object ? { a: value } : [value];
    return value;
  });

/** Any value a JSON field can hold, weighted towards the awkward ones. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 4 },
  { arbitrary: nastyString, weight: 3 },
  { arbitrary: fc.constantFrom(null, 0, -1, 1e308, -0, true, [], {}), weight: 2 },
  { arbitrary: fc.array(nastyString, { maxLength: 5 }), weight: 1 },
  { arbitrary: deepValue, weight: 1 },
);

/** Applies up to three mutations (set a field to any value, delete one, add one) to a template. */
export function mutated(templates: ReadonlyArray<Record<string, unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const mutation = fc.record({
    op: fc.constantFrom('set', 'set', 'delete', 'add'),
    pick: fc.nat(),
    key: fc.oneof(nastyString, fc.constantFrom('type', 'token', 'channel', 'rid', 'scopes', 'data', 'to', 'id')),
    value: anyValue,
  });
  return fc
    .tuple(fc.constantFrom(...templates), fc.array(mutation, { minLength: 0, maxLength: 3 }))
    .map(([template, mutations]) => {
      const out: Record<string, unknown> = { ...template };
      for (const m of mutations) {
        const keys = Object.keys(out);
        const target = keys.length === 0 || m.op === 'add' ? m.key : keys[m.pick % keys.length]!;
        if (m.op === 'delete') delete out[target];
        else
          Object.defineProperty(out, target, { value: m.value, enumerable: true, writable: true, configurable: true });
      }
      return out;
    });
}

const DEEP = '\u0000deep\u0000';

/**
 * A template with one field (or a field inside `data`/`to`) replaced by JSON nested `maxDepth`
 * levels deep at most, as text: too deep for this process to build and stringify as a value, and
 * what a server that recurses over client JSON (stringify, validate, copy) falls over on.
 */
export function deeplyNested(
  templates: ReadonlyArray<Record<string, unknown>>,
  maxDepth: number,
): fc.Arbitrary<string> {
  return fc
    .record({
      template: fc.constantFrom(...templates),
      pick: fc.nat(),
      inside: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
      depth: fc.integer({ min: 5_000, max: maxDepth }),
      object: fc.boolean(),
    })
    .map(({ template, pick, inside, depth, object }) => {
      // Mostly inside an object-valued field (`data`, `to`…), where the rest of the request stays valid.
      const objects = Object.keys(template).filter((k) => isObject(template[k]));
      const keys = inside && objects.length > 0 ? objects : Object.keys(template);
      const key = keys.length === 0 ? 'data' : keys[pick % keys.length]!;
      const field = template[key];
      const value = inside ? { ...(isObject(field) ? field : {}), nested: DEEP } : DEEP;
      const deep = object ? '{"a":'.repeat(depth) + '0' + '}'.repeat(depth) : '['.repeat(depth) + ']'.repeat(depth);
      return JSON.stringify({ ...template, [key]: value }).replace(JSON.stringify(DEEP), deep);
    });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Raw text: arbitrary strings, JSON of any shape, JSON nested deeper than any parser likes. */
const rawText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json({ maxDepth: 4 }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 5_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
);

// --- /ws ---------------------------------------------------------------------------------------

export type WsInput = { kind: 'text'; text: string } | { kind: 'binary'; bytes: Uint8Array };

/** The real client frame types, with a valid token for the fuzzing user. */
export function wsFrameTemplates(token: string): Array<Record<string, unknown>> {
  return [
    { type: 'authenticate', token, position: '1-0', channels: ['fuzz:1'], narrow: ['ke'] },
    { type: 'reauth', token },
    { type: 'subscribe', channel: 'fuzz:1', rid: 'r1' },
    { type: 'unsubscribe', channel: 'fuzz:1', rid: 'r2' },
    { type: 'narrow', scopes: ['ke/muranga'], rid: 'r3' },
    { type: 'narrow', scopes: null },
    { type: 'send', event: 'chat', data: { text: 'hi' }, key: 'k1', rid: 'r4' },
    { type: 'send', event: 'strict', data: {}, key: 'k2', rid: 'r5' },
  ];
}

/** One `/ws` frame: mostly near-valid frames, then raw text, binary, and frames over MAX_FRAME_BYTES. */
export function wsInput(token: string): fc.Arbitrary<WsInput> {
  return fc.oneof(
    { arbitrary: mutated(wsFrameTemplates(token)).map((f) => text(JSON.stringify(f))), weight: 6 },
    { arbitrary: rawText.map(text), weight: 3 },
    { arbitrary: deeplyNested(wsFrameTemplates(token), 30_000).map(text), weight: 1 },
    { arbitrary: fc.uint8Array({ maxLength: 256 }).map((bytes) => ({ kind: 'binary' as const, bytes })), weight: 1 },
    {
      arbitrary: fc.integer({ min: 65_000, max: 100_000 }).map((n) => text(`{"type":"send","rid":"${'r'.repeat(n)}"}`)),
      weight: 1,
    },
  );
}

function text(value: string): WsInput {
  return { kind: 'text', text: value };
}

// --- Socket.IO ---------------------------------------------------------------------------------

/** Events the gateway answers with an acknowledgement. */
export const SIO_ACKED_EVENTS = ['reauth', 'subscribe', 'unsubscribe', 'send', 'narrow'] as const;

export type SioInput =
  | { kind: 'event'; name: unknown; args: unknown[]; ack: boolean }
  /** A known event whose payload is given as JSON text (nested too deep to build here as a value). */
  | { kind: 'encoded'; name: string; payload: string; ack: boolean }
  | { kind: 'raw'; packet: string };

/** One Socket.IO input: an event (known or arbitrary name, arbitrary arguments), or a raw packet. */
export function sioInput(token: string): fc.Arbitrary<SioInput> {
  const templates = wsFrameTemplates(token).map(({ type: _type, rid: _rid, ...payload }) => payload);
  const name = fc.oneof(
    { arbitrary: fc.constantFrom(...SIO_ACKED_EVENTS), weight: 6 },
    { arbitrary: fc.string({ unit: 'binary', maxLength: 30 }), weight: 2 },
    { arbitrary: fc.constantFrom('error', 'toString', '__proto__', 'constructor', 'session_created'), weight: 1 },
    { arbitrary: fc.integer(), weight: 1 },
  );
  const args = fc.oneof(
    { arbitrary: mutated(templates).map((payload) => [payload]), weight: 3 },
    { arbitrary: fc.array(anyValue, { maxLength: 3 }), weight: 2 },
  );
  const event = fc
    .record({
      name,
      args,
      ack: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
    })
    .map((e): SioInput => ({ kind: 'event', ...e }));
  const raw = fc
    .oneof(
      rawText,
      fc.constantFrom(
        '0',
        '0{}',
        '0/admin,{}',
        '1',
        '3',
        '399[]',
        '4"x"',
        '51-["send",{"_placeholder":true,"num":0}]',
        '2["disconnect"]',
        '2["connect"]',
        '2[]',
        '2{}',
        '2/nope,["subscribe",{}]',
      ),
    )
    .map((packet): SioInput => ({ kind: 'raw', packet }));
  const encoded = fc
    .record({ name: fc.constantFrom(...SIO_ACKED_EVENTS), payload: deeplyNested(templates, 30_000) })
    .map((e): SioInput => ({ kind: 'encoded', ...e, ack: true }));
  return fc.oneof({ arbitrary: event, weight: 8 }, { arbitrary: encoded, weight: 1 }, { arbitrary: raw, weight: 2 });
}

// --- HTTP --------------------------------------------------------------------------------------

export interface HttpInput {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  /** Sent as is (undefined: no body). */
  body: string | undefined;
  contentType: string | undefined;
  /** Send the API key (routes under /v1), or a wrong one. */
  apiKey: 'right' | 'wrong' | 'none';
}

const ROUTES: ReadonlyArray<[HttpInput['method'], string, Record<string, unknown>]> = [
  // No `id`: a repeated id is answered from the first publish, and would hide what follows it.
  ['POST', '/v1/publish', { event: 'news', data: { a: 1 }, to: { users: ['fuzz-u'], scopes: ['ke'] } }],
  ['POST', '/v1/users', { email: 'f@example.test', password: 'pw-123456', name: 'F', role: 'user', scopes: ['ke'] }],
  ['PATCH', '/v1/users/:id', { name: 'N', role: 'agent', scopes: ['ke/a'], active: true }],
  ['POST', '/v1/users/:id/disconnect', {}],
  ['GET', '/v1/presence/users/:id', {}],
  ['POST', '/auth/login', { email: 'f@example.test', password: 'pw-123456' }],
  ['POST', '/auth/refresh', { refresh_token: 'r.t' }],
  ['POST', '/auth/refresh-mobile', { refresh_token: 'r.t' }],
  ['POST', '/auth/logout', { refresh_token: 'r.t' }],
  ['POST', '/auth/guest', {}],
];

/** One HTTP request to `/v1/*` or `/auth/*`: near-valid bodies, any JSON, raw text, odd content types. */
export const httpInput: fc.Arbitrary<HttpInput> = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    id: fc.oneof(fc.constantFrom('fuzz-u', 'missing'), fc.string({ unit: 'binary', maxLength: 40 })),
    shape: fc.oneof(
      { arbitrary: fc.constant('mutated' as const), weight: 6 },
      { arbitrary: fc.constant('deep' as const), weight: 2 },
      { arbitrary: fc.constant('raw' as const), weight: 2 },
    ),
    raw: fc.option(rawText, { nil: undefined }),
    contentType: fc.oneof(
      { arbitrary: fc.constant('application/json'), weight: 8 },
      {
        arbitrary: fc.constantFrom(
          undefined,
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/json; charset=latin1',
          '*/*',
        ),
        weight: 2,
      },
    ),
    apiKey: fc.oneof(
      { arbitrary: fc.constant('right' as const), weight: 8 },
      { arbitrary: fc.constantFrom('wrong' as const, 'none' as const), weight: 2 },
    ),
    method: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 9 },
      { arbitrary: fc.constantFrom('GET' as const, 'PUT' as const, 'DELETE' as const), weight: 1 },
    ),
  })
  .chain((r) =>
    (r.shape === 'mutated'
      ? mutated([r.route[2]]).map((b): string | undefined => JSON.stringify(b))
      : r.shape === 'deep'
        ? deeplyNested([r.route[2]], 100_000)
        : fc.constant(r.raw)
    ).map((body): HttpInput => {
      const method = r.method ?? r.route[0];
      const sent = method === 'GET' ? undefined : body;
      return {
        method,
        path: r.route[1].replace(':id', encodeURIComponent(r.id)),
        body: sent,
        contentType: sent === undefined ? undefined : r.contentType,
        apiKey: r.apiKey,
      };
    }),
  );
