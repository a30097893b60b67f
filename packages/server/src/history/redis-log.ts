import { randomBytes } from 'node:crypto';
import { TetherError } from '@tether/protocol';
import type { Redis } from 'ioredis';
import type { PublishEnvelope } from '../hub/types.js';
import type { EventLog, LoggedEvent, ReadResult } from './types.js';

/**
 * The cluster's event log: one Redis Stream shared by every node, so a client recovers on whichever
 * node it reconnects to, including after its node died.
 *
 * Offsets are stream ids `<ms>-<seq>` that the append script chooses itself: `seq` is a counter
 * that grows by exactly one per event within the epoch, so "nothing is missing after offset O"
 * is exact — the first event after O must carry seq(O)+1, or history was trimmed past O.
 * The epoch is a random id in the metadata hash; a Redis that lost its data has no hash, and the
 * next append starts a new epoch (with an empty stream), so old positions get `recovered: false`.
 *
 * Append and fan-out are one Lua script (XADD, then PUBLISH to each interest channel): Redis runs
 * scripts one at a time, so every node receives events in stream order whoever published them.
 */
export interface RedisLogOptions {
  stream: string;
  meta: string;
  /** Size retention: `XADD … MAXLEN ~ n` (approximate: whole radix nodes are dropped). 0 = none. */
  maxEvents: number;
  /** Age retention, applied on every append with `XTRIM MINID ~` (Redis's own clock). 0 = none. */
  maxAgeSeconds: number;
}

/** What a node receives on an interest channel: the logged event, ready for `deliverLocal`. */
export interface LogMessage {
  ep: string;
  o: string;
  env: PublishEnvelope;
}

export interface RedisEventLog extends EventLog {
  readonly kind: 'redis';
  /** Loads (or creates) the epoch. Call once before use. */
  init(): Promise<void>;
  /** Appends and PUBLISHes `LogMessage` JSON to each channel, atomically. */
  appendAndPublish(envelope: PublishEnvelope, channels: readonly string[]): Promise<LoggedEvent>;
  /** Records an epoch seen on the wire (another node started a new one). */
  observeEpoch(epoch: string): void;
}

// KEYS: stream, meta. ARGV: candidate epoch, maxEvents, maxAgeMs, envelope JSON, channels…
const APPEND_SCRIPT = `
local ep = redis.call('HGET', KEYS[2], 'epoch')
if not ep then
  ep = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', ep, 'seq', 0, 'ms', 0)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('HGET', KEYS[2], 'ms') or '0')
if ms < last then ms = last end
redis.call('HSET', KEYS[2], 'ms', ms)
local id = string.format('%.0f', ms) .. '-' .. seq
local maxEvents = tonumber(ARGV[2])
if maxEvents > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxEvents, id, 'e', ARGV[4])
else
  redis.call('XADD', KEYS[1], id, 'e', ARGV[4])
end
local maxAge = tonumber(ARGV[3])
if maxAge > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', ms - maxAge))
end
local msg = '{"ep":"' .. ep .. '","o":"' .. id .. '","env":' .. ARGV[4] .. '}'
for i = 5, #ARGV do redis.call('PUBLISH', ARGV[i], msg) end
return {ep, id}
`;

/**
 * @example
 *   const log = createRedisLog(redis, { stream: 'tether:log', meta: 'tether:log:meta', maxEvents: 100_000, maxAgeSeconds: 86_400 });
 *   await log.init();
 *   const { offset } = await log.append(envelope);
 */
export function createRedisLog(redis: Redis, options: RedisLogOptions): RedisEventLog {
  const { stream, meta } = options;
  const maxAgeMs = options.maxAgeSeconds * 1000;
  let epoch = '';

  const newEpoch = (): string => randomBytes(8).toString('hex');

  async function currentEpoch(): Promise<string> {
    // HSETNX creates the epoch when Redis is new (or lost its data); a racing node's wins.
    await redis.hsetnx(meta, 'epoch', newEpoch());
    const value = await redis.hget(meta, 'epoch');
    epoch = value ?? epoch;
    return epoch;
  }

  async function appendAndPublish(envelope: PublishEnvelope, channels: readonly string[]): Promise<LoggedEvent> {
    let reply: unknown;
    try {
      reply = await redis.eval(
        APPEND_SCRIPT,
        2,
        stream,
        meta,
        newEpoch(),
        options.maxEvents,
        maxAgeMs,
        JSON.stringify(envelope),
        ...channels,
      );
    } catch (err) {
      throw new TetherError('PUBLISH_FAILED', 'The event log (Redis) is unavailable; the event was not published', {
        cause: err,
      });
    }
    const [ep, offset] = reply as [string, string];
    epoch = ep;
    return { epoch: ep, offset, envelope, at: offsetMs(offset) };
  }

  return {
    kind: 'redis',
    init: async () => void (await currentEpoch()),
    epoch: () => epoch,
    observeEpoch(value) {
      epoch = value;
    },
    appendAndPublish,
    append: (envelope) => appendAndPublish(envelope, []),

    async readAfter(askedEpoch, offset, limit): Promise<ReadResult> {
      const [current, seqText] = await redis.hmget(meta, 'epoch', 'seq');
      if (current !== null) epoch = current;
      const seq = offsetSeq(offset);
      const head = Number(seqText ?? 0);
      if (current === null || askedEpoch !== current || seq === undefined || seq > head)
        return { events: [], complete: false };
      if (seq === head) return { events: [], complete: true };
      const entries = (await redis.xrange(stream, `(${offset}`, '+', 'COUNT', limit + 1)) as [string, string[]][];
      const events = entries.slice(0, limit).map(([id, fields]) => toEvent(current, id, fields));
      // Contiguous from seq+1 (entries leave only from the front) and not cut by the limit.
      const first = events[0] === undefined ? undefined : offsetSeq(events[0].offset);
      const complete = first === seq + 1 && entries.length <= limit;
      return { events, complete };
    },

    async head() {
      // One round trip: create the epoch if Redis is new, then read it with the last id, which is
      // exactly `<ms>-<seq>` from the metadata even when trimming emptied the stream.
      const replies = await redis.multi().hsetnx(meta, 'epoch', newEpoch()).hmget(meta, 'epoch', 'ms', 'seq').exec();
      const [current, ms, seq] = (replies?.[1]?.[1] ?? []) as (string | null)[];
      if (current === null || current === undefined) throw new TetherError('INTERNAL', 'The event log has no epoch');
      epoch = current;
      return { epoch: current, offset: `${ms ?? 0}-${seq ?? 0}` };
    },

    async trim() {
      const removed = maxAgeMs > 0 ? await redis.xtrim(stream, 'MINID', `${Date.now() - maxAgeMs}`) : 0;
      const bySize = options.maxEvents > 0 ? await redis.xtrim(stream, 'MAXLEN', options.maxEvents) : 0;
      return removed + bySize;
    },

    // The connection belongs to the cluster layer, which closes it.
    close: () => Promise.resolve(),
  };
}

/** Parses a message received on an interest channel; undefined when it is not one. */
export function parseLogMessage(text: string): LogMessage | undefined {
  try {
    const value = JSON.parse(text) as Partial<LogMessage>;
    if (
      typeof value.ep !== 'string' ||
      typeof value.o !== 'string' ||
      typeof value.env !== 'object' ||
      value.env === null
    )
      return undefined;
    return value as LogMessage;
  } catch {
    return undefined;
  }
}

/** The per-epoch sequence number of an offset `<ms>-<seq>`. */
export function offsetSeq(offset: string): number | undefined {
  const match = /^\d+-(\d+)$/.exec(offset);
  return match === null ? undefined : Number(match[1]);
}

function offsetMs(offset: string): number {
  return Number(offset.slice(0, offset.indexOf('-')));
}

function toEvent(epoch: string, id: string, fields: string[]): LoggedEvent {
  const index = fields.indexOf('e');
  const envelope = JSON.parse(fields[index + 1] ?? '{}') as PublishEnvelope;
  return { epoch, offset: id, envelope, at: offsetMs(id) };
}
