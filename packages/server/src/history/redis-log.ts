import { createHash } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { Cluster, Redis } from 'ioredis';
import type { PublishEnvelope } from '../hub/types.js';
import { StreamLayout } from './streams.js';
import {
  NO_EPOCH,
  contiguous,
  continues,
  type Cursor,
  type EventLog,
  type LoggedEvent,
  type StreamEntry,
  type StreamRead,
} from './types.js';

/**
 * The cluster's event log: one Redis Stream per addressee stream, shared by every node, so a client
 * recovers on whichever node it reconnects to, including after its node died.
 *
 * Keys, per stream `<name>`: `{<prefix>:<name>}:x` (entries, ids `0-<offset>`, fields `e` envelope
 * JSON, `t` append time, `q` append order) and `{<prefix>:<name>}:m` (hash: `epoch`, `head`, `run`). The
 * hash tag keeps a stream's two keys in one slot. Per log: `<prefix>:log:meta` (hash: `seq`, `at`)
 * and `<prefix>:log:id:<event id>` (a publish already appended, for retries).
 *
 * One script per publish appends to every stream of the event and PUBLISHes one message with all
 * of its cursors to each interest channel: Redis runs scripts one at a time, so every node receives
 * events in the same order whoever published them, with the cursors every recipient stores.
 * A stream's epoch is made when its hash is (first append, or after Redis lost its data), and made
 * anew, at the same head, when the Redis process serving the stream is not the one that wrote it
 * last (`run`: its run id): a failover to a replica that had not received every acknowledged
 * append, or a restart from a snapshot older than the last appends, would otherwise give old
 * offsets to new events. Readers of the old epoch are told they cannot continue (`recovered:
 * false`) instead of skipping them; appends and head reads both check, whichever comes first.
 *
 * Retention per stream: `MAXLEN ~ HISTORY_MAX_EVENTS` on each append; by age, an append whose
 * stream's oldest entry (`t0` in the hash) is older than HISTORY_MAX_AGE_SECONDS drops up to 8 of the
 * oldest entries older than that, and a stream nobody appends to expires whole after that age (its
 * hash, with epoch and head, stays).
 */
export interface RedisLogOptions {
  /** Key prefix (`REDIS_PREFIX`). */
  prefix: string;
  /** Size retention per stream (approximate: whole radix nodes are dropped). 0 = none. */
  maxEvents: number;
  /** Age retention in seconds, by Redis's own clock. 0 = none. */
  maxAgeSeconds: number;
  /**
   * Redis Cluster: the streams of one event live on different shards, so each stream is appended
   * by its own script, which SPUBLISHes that stream's copy (its cursor only) on the stream's
   * interest channel. Standalone (false): one script for all streams and one message with every
   * cursor, PUBLISHed to the channels given.
   */
  sharded?: boolean;
  /** Scope stream layout (`HISTORY_SPREAD`). Default one stream per scope. */
  layout?: StreamLayout;
}

/** What a node receives on an interest channel: the logged event, ready for `deliverLocal`. */
export interface LogMessage {
  env: PublishEnvelope;
  at: number;
  seq: number;
  /** `[stream, epoch, offset]` for every stream the event went to. */
  cur: [string, string, number][];
}

export interface RedisEventLog extends EventLog {
  readonly kind: 'redis';
  /** Whether each stream's copy of an event is published on its own (Redis Cluster). */
  readonly sharded: boolean;
  /** Appends and PUBLISHes the `LogMessage` JSON to each channel, atomically. */
  appendAndPublish(envelope: PublishEnvelope, channels: readonly string[]): Promise<LoggedEvent>;
}

/**
 * How long a publish id is remembered for retries: a publish that failed part-way is retried within
 * minutes. Longer would cost a key per event (per stream on a Redis Cluster) for nothing.
 */
const ID_TTL_SECONDS = 600;
/** Oldest entries looked at per append for age retention. */
const AGE_TRIM_PER_APPEND = 8;

/**
 * Lua shared by both scripts: appends `body` to one stream (its Redis Stream `x` and hash `m`),
 * creating the stream's epoch if the hash is missing, and applies retention. Returns epoch, offset.
 */
const APPEND_TO_STREAM = `
local function this_run()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end
local function new_epoch(name, salt)
  local ep = string.sub(redis.sha1hex(name .. ':' .. salt), 1, 8)
  if ep == '00000000' then ep = 'f0000000' end
  return ep
end
-- The stream's epoch and head, after making sure this Redis process is the one that wrote them:
-- replication is asynchronous and persistence periodic, so a promoted replica or a restarted
-- master may lack entries it (or its predecessor) acknowledged, with the same epoch and a lower
-- head. Offsets would then be handed out twice and a reader past the old head would skip the new
-- entries. Another run id starts a new epoch at the current head instead: no cursor of the old
-- epoch continues, so every reader is told what cannot be proven.
local function checked(m, name, run, salt)
  local meta = redis.call('HMGET', m, 'epoch', 'head', 'run')
  local ep, head = meta[1], tonumber(meta[2] or '0')
  if ep and meta[3] == run then return ep, head end
  if ep then
    ep = new_epoch(name, 'run:' .. run .. ':' .. ep .. ':' .. salt)
    redis.call('HSET', m, 'epoch', ep, 'run', run)
    return ep, head
  end
  return nil, 0
end
local function append_to(x, m, name, body, now, seq, maxEvents, maxAge, run)
  local ep = checked(m, name, run, now)
  if not ep then
    ep = new_epoch(name, now .. ':' .. seq .. ':' .. body)
    redis.call('DEL', x)
    redis.call('HSET', m, 'epoch', ep, 'head', 0, 'run', run)
  end
  local off = redis.call('HINCRBY', m, 'head', 1)
  if maxEvents > 0 then
    redis.call('XADD', x, 'MAXLEN', '~', maxEvents, '0-' .. off, 'e', body, 't', now, 'q', seq)
  else
    redis.call('XADD', x, '0-' .. off, 'e', body, 't', now, 'q', seq)
  end
  if maxAge > 0 then
    -- t0: when the stream's oldest entry was appended, as last seen (0: not known). Until it is older
    -- than the age limit there is nothing to trim, so most appends skip the scan. MAXLEN trimming
    -- only makes t0 too old, which costs one scan that corrects it.
    local cutoff = now - maxAge
    if tonumber(redis.call('HGET', m, 't0') or '0') < cutoff then
      local oldest = redis.call('XRANGE', x, '-', '+', 'COUNT', ${AGE_TRIM_PER_APPEND})
      local keep, keepAt, last = nil, 0, nil
      for _, entry in ipairs(oldest) do
        local fields = entry[2]
        local at = 0
        for j = 1, #fields, 2 do if fields[j] == 't' then at = tonumber(fields[j + 1]) end end
        if at >= cutoff then keep = entry[1] keepAt = at break end
        last = entry[1]
      end
      if keep then
        if last then redis.call('XTRIM', x, 'MINID', keep) end
        redis.call('HSET', m, 't0', keepAt)
      elseif last then
        -- All of those are too old: drop them; the next append looks at the following ones.
        redis.call('XTRIM', x, 'MINID', '0-' .. (tonumber(string.match(last, '%-(%d+)$')) + 1))
        redis.call('HSET', m, 't0', 0)
      end
    end
    redis.call('PEXPIRE', x, maxAge)
  end
  return ep, off
end
local function message(body, now, seq, cur)
  return '{"env":' .. body .. ',"at":' .. string.format('%.0f', now) .. ',"seq":' .. seq .. ',"cur":' .. cjson.encode(cur) .. '}'
end
`;

// Standalone: every stream of the event in one script, one message with every cursor.
// KEYS: log meta, id key, then (stream key, meta key) per stream.
// ARGV: envelope JSON, maxEvents, maxAgeMs, id ttl (s), stream count n, n stream names, channels…
const APPEND_SCRIPT = `${APPEND_TO_STREAM}
local done = redis.call('GET', KEYS[2])
if done then return done end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if now < last then now = last end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'at', now)
local maxEvents, maxAge, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local run = this_run()
local cur = {}
for i = 1, n do
  local ep, off = append_to(KEYS[1 + 2 * i], KEYS[2 + 2 * i], ARGV[5 + i], ARGV[1], now, seq, maxEvents, maxAge, run)
  cur[i] = {ARGV[5 + i], ep, off}
end
local msg = message(ARGV[1], now, seq, cur)
redis.call('SET', KEYS[2], msg, 'EX', tonumber(ARGV[4]))
for i = 6 + n, #ARGV do redis.call('PUBLISH', ARGV[i], msg) end
return msg
`;

// Redis Cluster: one stream per call, all keys in its slot; its copy is SPUBLISHed on its shard.
// "at" is the publisher's clock, never less than the stream's last (per-stream order by time).
// KEYS: stream key, meta key, id key. ARGV: envelope JSON, maxEvents, maxAgeMs, id ttl (s), stream
// name, publisher's clock (ms), channel to SPUBLISH on ('' for none).
const STREAM_SCRIPT = `${APPEND_TO_STREAM}
local done = redis.call('GET', KEYS[3])
if done then return done end
local now = tonumber(ARGV[6])
local last = tonumber(redis.call('HGET', KEYS[2], 'at') or '0')
if now < last then now = last end
local ep, off = append_to(KEYS[1], KEYS[2], ARGV[5], ARGV[1], now, 0, tonumber(ARGV[2]), tonumber(ARGV[3]), this_run())
redis.call('HSET', KEYS[2], 'at', now)
local msg = message(ARGV[1], now, 0, {{ARGV[5], ep, off}})
redis.call('SET', KEYS[3], msg, 'EX', tonumber(ARGV[4]))
if ARGV[7] ~= '' then redis.call('SPUBLISH', ARGV[7], msg) end
return msg
`;

// The heads of streams, each checked as an append checks it (a reader must not continue an epoch
// the appender would abandon). KEYS: meta keys (one slot on a Redis Cluster). ARGV: stream names.
const HEADS_SCRIPT = `${APPEND_TO_STREAM}
local run = this_run()
local t = redis.call('TIME')
local out = {}
for i = 1, #KEYS do
  local ep, head = checked(KEYS[i], ARGV[i], run, t[1] .. t[2])
  out[2 * i - 1] = ep or ''
  out[2 * i] = head
end
return out
`;

type ScriptCall = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;
interface LogScripts {
  tetherLogAppend: ScriptCall;
  tetherLogStream: ScriptCall;
  tetherLogHeads: ScriptCall;
}

/**
 * The log's scripts sent as `EVALSHA` (the 40-character digest instead of ~3 KB of script text per
 * call, and no re-compilation by Redis), falling back to `EVAL` when a server does not have the
 * script yet (a new, restarted or promoted one answers NOSCRIPT; EVAL also loads it). Done by hand:
 * ioredis's `defineCommand` scripts fail under auto-pipelining on a Redis Cluster.
 */
function defineScripts(redis: Redis | Cluster): LogScripts {
  const script = (lua: string): ScriptCall => {
    const sha = createHash('sha1').update(lua).digest('hex');
    return async (numKeys, ...args) => {
      try {
        return await redis.evalsha(sha, numKeys, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return redis.eval(lua, numKeys, ...args);
      }
    };
  };
  return {
    tetherLogAppend: script(APPEND_SCRIPT),
    tetherLogStream: script(STREAM_SCRIPT),
    tetherLogHeads: script(HEADS_SCRIPT),
  };
}

/**
 * @example
 *   const log = createRedisLog(redis, { prefix: 'tether', maxEvents: 10_000, maxAgeSeconds: 86_400 });
 *   const { cursors } = await log.append(envelope);
 */
export function createRedisLog(redis: Redis | Cluster, options: RedisLogOptions): RedisEventLog {
  const { prefix } = options;
  const layout = options.layout ?? StreamLayout.SINGLE;
  const maxAgeMs = options.maxAgeSeconds * 1000;
  const idTtl = ID_TTL_SECONDS;
  const scripts = defineScripts(redis);
  const streamKey = (name: string): string => `${redisTag(prefix, name)}:x`;
  const metaKey = (name: string): string => `${redisTag(prefix, name)}:m`;

  /** Redis Cluster: one script per stream, on the stream's shard, each SPUBLISHing its copy. */
  async function appendSharded(envelope: PublishEnvelope, publish: boolean): Promise<LoggedEvent> {
    const body = JSON.stringify(envelope);
    const now = Date.now();
    let replies: unknown[];
    try {
      replies = await Promise.all(
        layout.streamsOf(envelope).map((name) => {
          const tag = redisTag(prefix, name);
          return scripts.tetherLogStream(
            3,
            `${tag}:x`,
            `${tag}:m`,
            `${tag}:id:${envelope.id}`,
            body,
            options.maxEvents,
            maxAgeMs,
            idTtl,
            name,
            now,
            publish ? tag : '',
          );
        }),
      );
    } catch (err) {
      // Streams appended before the failure keep their entry: a retry with the same id appends
      // each stream at most once (the id key), and delivers at most once per connection (cursors).
      throw new TetherError('PUBLISH_FAILED', 'The event log (Redis) is unavailable; the event was not published', {
        cause: err,
      });
    }
    const cursors = new Map<string, Cursor>();
    let at = 0;
    for (const reply of replies) {
      const message = parseLogMessage(String(reply));
      if (message === undefined) throw new TetherError('PUBLISH_FAILED', 'The event log (Redis) answered unexpectedly');
      for (const [stream, epoch, offset] of message.cur) cursors.set(stream, { epoch, offset });
      at = Math.max(at, message.at);
    }
    return { envelope, at, seq: 0, cursors };
  }

  async function appendAndPublish(envelope: PublishEnvelope, channels: readonly string[]): Promise<LoggedEvent> {
    if (options.sharded === true) return appendSharded(envelope, channels.length > 0);
    const streams = layout.streamsOf(envelope);
    const keys = [`${prefix}:log:meta`, `${prefix}:log:id:${envelope.id}`];
    for (const name of streams) keys.push(streamKey(name), metaKey(name));
    let reply: unknown;
    try {
      reply = await scripts.tetherLogAppend(
        keys.length,
        ...keys,
        JSON.stringify(envelope),
        options.maxEvents,
        maxAgeMs,
        idTtl,
        streams.length,
        ...streams,
        ...channels,
      );
    } catch (err) {
      throw new TetherError('PUBLISH_FAILED', 'The event log (Redis) is unavailable; the event was not published', {
        cause: err,
      });
    }
    const message = parseLogMessage(String(reply));
    if (message === undefined) throw new TetherError('PUBLISH_FAILED', 'The event log (Redis) answered unexpectedly');
    return loggedOf(message);
  }

  async function heads(streams: readonly string[]): Promise<Map<string, Cursor>> {
    // Standalone: one script for all. Redis Cluster: one per stream, sent together (a script
    // cannot span slots; auto-pipelining batches them per shard).
    if (streams.length === 0) return new Map();
    const groups = options.sharded === true ? streams.map((name) => [name]) : [streams];
    let replies: (string | number)[][];
    try {
      replies = (await Promise.all(
        groups.map((names) => scripts.tetherLogHeads(names.length, ...names.map(metaKey), ...names)),
      )) as (string | number)[][];
    } catch (err) {
      throw new TetherError('INTERNAL', 'The event log (Redis) is unavailable', { cause: err });
    }
    const out = new Map<string, Cursor>();
    groups.forEach((names, g) => {
      const reply = replies[g] ?? [];
      names.forEach((name, i) => {
        const epoch = String(reply[2 * i] ?? '');
        out.set(name, epoch === '' ? { epoch: NO_EPOCH, offset: 0 } : { epoch, offset: Number(reply[2 * i + 1]) });
      });
    });
    return out;
  }

  async function read(stream: string, from: Cursor, limit: number): Promise<StreamRead> {
    const head = (await heads([stream])).get(stream)!;
    if (!continues(from, head)) return { entries: [], complete: false, head };
    if (from.offset === head.offset) return { entries: [], complete: true, head };
    const raw = (await redis.xrange(streamKey(stream), `(0-${from.offset}`, '+', 'COUNT', limit + 1)) as [
      string,
      string[],
    ][];
    const entries = raw.slice(0, limit).map(([id, fields]) => toEntry(id, fields));
    // Contiguous from the cursor (entries leave only from the front) and not cut by the limit.
    const complete = contiguous(from, entries[0]?.offset, raw.length, limit);
    return { entries, complete, head };
  }

  return {
    kind: 'redis',
    layout,
    sharded: options.sharded === true,
    appendAndPublish,
    append: (envelope) => appendAndPublish(envelope, []),
    read,
    heads,
    // Retention runs on every append (see above); there is nothing to sweep.
    trim: () => Promise.resolve(0),
    // The connection belongs to the cluster layer, which closes it.
    close: () => Promise.resolve(),
  };
}

/**
 * A stream's Redis Cluster hash tag, `{<prefix>:<stream>}`: its keys (`…:x` entries, `…:m` epoch
 * and head) and its interest channel (the tag itself) share one slot, so one script can append and
 * SPUBLISH on the shard that owns the stream.
 */
export function redisTag(prefix: string, stream: string): string {
  return `{${prefix}:${stream}}`;
}

/** A logged event from its message. */
export function loggedOf(message: LogMessage): LoggedEvent {
  const cursors = new Map<string, Cursor>();
  for (const [stream, epoch, offset] of message.cur) cursors.set(stream, { epoch, offset });
  return { envelope: message.env, at: message.at, seq: message.seq, cursors };
}

/** Parses a message received on an interest channel; undefined when it is not one. */
export function parseLogMessage(text: string): LogMessage | undefined {
  try {
    const value = JSON.parse(text) as Partial<LogMessage>;
    if (
      typeof value.env !== 'object' ||
      value.env === null ||
      typeof value.at !== 'number' ||
      typeof value.seq !== 'number' ||
      !Array.isArray(value.cur)
    )
      return undefined;
    return value as LogMessage;
  } catch {
    return undefined;
  }
}

function toEntry(id: string, fields: string[]): StreamEntry {
  const get = (name: string): string | undefined => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  };
  return {
    offset: Number(id.slice(id.indexOf('-') + 1)),
    envelope: JSON.parse(get('e') ?? '{}') as PublishEnvelope,
    at: Number(get('t') ?? 0),
    seq: Number(get('q') ?? 0),
  };
}
