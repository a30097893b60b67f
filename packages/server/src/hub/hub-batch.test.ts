import { TetherError } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { MemoryLog } from '../history/memory-log.js';
import type { PublishEnvelope } from './types.js';
import { createTestHub } from './testing.js';

/** A memory log whose `failAt`-th append (1-based) finds the log unreachable, as a lost store would. */
class FailingLog extends MemoryLog {
  appends = 0;
  constructor(private readonly failAt: number) {
    super();
  }
  override append(envelope: PublishEnvelope) {
    if (++this.appends === this.failAt) {
      return Promise.reject(new TetherError('PUBLISH_FAILED', 'The event log is unavailable'));
    }
    return super.append(envelope);
  }
}

const rows = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `e${i}`, event: 'row', data: { i }, to: { users: ['u'] } }));

describe('hub batch publish', () => {
  it("answers each event: a failed append is that event's error, the others are published in order", async () => {
    const log = new FailingLog(3);
    const { hub, connect } = createTestHub({ log });
    const client = connect({ userId: 'u' });

    const results = await hub.publishBatch(rows(5));

    expect(results.map((r) => r.id)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    expect(results.map((r) => ('error' in r ? r.error.code : r.delivered))).toEqual([1, 1, 'PUBLISH_FAILED', 1, 1]);
    expect(client.sink.events.map((e) => e.id)).toEqual(['e0', 'e1', 'e3', 'e4']);

    // Sent again whole, the batch appends only what was missing (the log knows the ids).
    const again = await hub.publishBatch(rows(5));
    expect(again.every((r) => !('error' in r))).toBe(true);
    const read = await log.read('u:u', { epoch: '', offset: 0 }, 10);
    expect(read.entries.map((e) => e.envelope.id)).toEqual(['e0', 'e1', 'e3', 'e4', 'e2']);
  });

  it('validates the whole batch before publishing any of it', async () => {
    const { hub, connect } = createTestHub({ log: new MemoryLog() });
    const client = connect({ userId: 'u' });
    const batch: unknown[] = rows(3);
    batch[2] = { event: 'session_created', to: { users: ['u'] } };
    await expect(hub.publishBatch(batch as never)).rejects.toThrow(/\[2\] event "session_created" is a reserved name/);
    expect(client.sink.events).toEqual([]);
  });

  it('counts publishes from acceptance to delivery in its backlog, failed ones too, and says when it empties', async () => {
    const log = new FailingLog(2);
    const { hub, connect } = createTestHub({ log });
    const client = connect({ userId: 'u' });
    const busyAtDelivery: boolean[] = [];
    client.sink.sendEvent = () => busyAtDelivery.push(hub.backlog.busy);
    let idle = 0;
    hub.backlog.onIdle(() => idle++);
    expect(hub.backlog.busy).toBe(false);

    const results = hub.publishBatch(rows(3));
    expect(hub.backlog.busy).toBe(true);
    await results;
    // Delivered while the later ones were still pending; the last one delivered emptied it.
    expect(busyAtDelivery).toEqual([true, true]);
    expect(hub.backlog.busy).toBe(false);
    expect(idle).toBe(1);

    await hub.publish({ event: 'alone', to: { users: ['u'] } });
    expect(idle).toBe(2);
  });
});
