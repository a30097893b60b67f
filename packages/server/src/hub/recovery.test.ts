import { describe, expect, it } from 'vitest';
import { configFrom } from '../config/index.js';
import { formatPosition, type EventLog, type LoggedEvent, type ReadResult } from '../history/types.js';
import { createLogger } from '../util/logger.js';
import { createHub } from './hub.js';
import { FakeClock, makePrincipal, RecordingSink, TableAuthenticator } from './testing.js';
import type { PublishEnvelope } from './types.js';

/** An in-memory log whose reads wait until the test releases them (to hold a handshake mid-replay). */
class GatedLog implements EventLog {
  readonly kind = 'memory' as const;
  readonly events: LoggedEvent[] = [];
  gate: Promise<void> = Promise.resolve();
  epoch = (): string => 'ep1';
  append(envelope: PublishEnvelope): Promise<LoggedEvent> {
    const logged = { epoch: 'ep1', offset: String(this.events.length + 1), envelope, at: 0 };
    this.events.push(logged);
    return Promise.resolve(logged);
  }
  async readAfter(epoch: string, offset: string, limit: number): Promise<ReadResult> {
    await this.gate;
    const after = Number(offset);
    if (epoch !== 'ep1' || after > this.events.length) return { events: [], complete: false };
    const events = this.events.slice(after, after + limit);
    return { events, complete: this.events.length - after <= limit };
  }
  head = (): Promise<{ epoch: string; offset: string }> =>
    Promise.resolve({ epoch: 'ep1', offset: String(this.events.length) });
  trim = (): Promise<number> => Promise.resolve(0);
  close = (): Promise<void> => Promise.resolve();
}

function setup(env: Record<string, string> = {}) {
  const clock = new FakeClock();
  const log = new GatedLog();
  const hub = createHub({
    config: configFrom({ RECOVERY_MAX_EVENTS: '50', ...env }),
    authenticator: new TableAuthenticator(clock),
    clock,
    logger: createLogger('silent'),
    log,
  });
  const info = { ip: '127.0.0.1', userAgent: undefined, tokenSource: 'auth' as const };
  const connect = (userId: string, position?: string) => {
    const sink = new RecordingSink();
    const session = hub.register(
      makePrincipal({ userId, expiresAt: clock.now() + 600_000 }),
      sink,
      info,
      position === undefined ? undefined : { position },
    );
    return { sink, session };
  };
  const envelope = (n: number): PublishEnvelope => ({
    id: `e${n}`,
    event: 'tick',
    data: { n },
    to: { users: ['u'], scopes: [], channels: [] },
  });
  return { hub, log, connect, envelope };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));
const ns = (sink: RecordingSink) => sink.events.map((e) => (e.data as { n: number }).n);

describe('recovery at the seam between replay and live', () => {
  it('live events arriving while the replay is read follow it, in order, and the ones the replay sent are dropped', async () => {
    const { hub, log, connect, envelope } = setup();
    for (let n = 1; n <= 5; n++) await hub.publish({ ...envelope(n), to: { users: ['u'] } });
    let release!: () => void;
    log.gate = new Promise((resolve) => (release = resolve));
    const { sink } = connect('u', formatPosition('ep1', '2'));

    // Published while the read is pending: 6 and 7 are in the log (the read will see them) and
    // delivered live too; the session must get each once.
    await hub.publish({ ...envelope(6), to: { users: ['u'] } });
    await hub.publish({ ...envelope(7), to: { users: ['u'] } });
    expect(sink.events).toEqual([]);
    release();
    await settle();
    await hub.publish({ ...envelope(8), to: { users: ['u'] } });

    expect(ns(sink)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(sink.systemOf('session_created')[0]?.payload).toMatchObject({ recovered: true, position: 'ep1:2' });
    expect(sink.events.map((e) => e.position)).toEqual(['ep1:3', 'ep1:4', 'ep1:5', 'ep1:6', 'ep1:7', 'ep1:8']);
  });

  it('a live copy delivered again by a broker after the replay is not sent twice', async () => {
    const { hub, connect, envelope } = setup();
    for (let n = 1; n <= 3; n++) await hub.publish({ ...envelope(n), to: { users: ['u'] } });
    const { sink } = connect('u', 'ep1:1');
    await settle();
    hub.deliverLocal(envelope(3), undefined, 'ep1:3'); // e.g. a late pub/sub copy
    expect(ns(sink)).toEqual([2, 3]);
  });

  it('a gap larger than RECOVERY_MAX_EVENTS replays nothing and says recovered:false with the head', async () => {
    const { hub, connect, envelope } = setup({ RECOVERY_MAX_EVENTS: '3' });
    for (let n = 1; n <= 6; n++) await hub.publish({ ...envelope(n), to: { users: ['u'] } });
    const { sink } = connect('u', 'ep1:1');
    await settle();
    expect(sink.events).toEqual([]);
    expect(sink.systemOf('session_created')[0]?.payload).toMatchObject({ recovered: false, position: 'ep1:6' });
  });

  it('a session closed while its replay is read gets nothing', async () => {
    const { hub, log, connect, envelope } = setup();
    await hub.publish({ ...envelope(1), to: { users: ['u'] } });
    let release!: () => void;
    log.gate = new Promise((resolve) => (release = resolve));
    const { sink, session } = connect('u', 'ep1:0');
    hub.disconnectUser('u');
    release();
    await settle();
    expect(session.closed).toBe(true);
    expect(sink.events).toEqual([]);
    expect(sink.systemOf('session_created')).toEqual([]);
  });
});
