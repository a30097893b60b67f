import type { SendAck, SendRequest } from '@tether/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Outbox } from './outbox.js';
import { createPlatform } from './platform.js';
import type { Transport } from './transports/types.js';

/** A transport whose sends the test answers (or loses) by hand. */
function fakeTransport() {
  const sent: Array<{ request: SendRequest; answer(ack: SendAck): void; lose(): void }> = [];
  const transport = {
    kind: 'ws',
    send: (request: SendRequest) =>
      new Promise<SendAck>((resolve, reject) => {
        sent.push({ request, answer: resolve, lose: () => reject(new Error('no ack')) });
      }),
  } as unknown as Transport;
  return { transport, sent };
}

const flush = () => vi.advanceTimersByTimeAsync(0);

describe('outbox', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('holds sends until a transport is set, then sends them one at a time in order', async () => {
    const outbox = new Outbox({ platform: createPlatform(), bufferSize: 10, ttlMs: 60_000 });
    const a = outbox.send('e', 1);
    const b = outbox.send('e', 2);
    const { transport, sent } = fakeTransport();
    outbox.setTransport(transport);
    await flush();
    expect(sent.map((s) => s.request.data)).toEqual([1]);
    sent[0]?.answer({ ok: true, result: 'A' });
    await flush();
    expect(sent.map((s) => s.request.data)).toEqual([1, 2]);
    sent[1]?.answer({ ok: false, code: 'NOT_FOUND', message: 'x' });
    expect(await a).toEqual({ ok: true, result: 'A' });
    expect(await b).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });

  it('resends a send whose ack was lost with the same key, and waits while paused (reauth)', async () => {
    const outbox = new Outbox({ platform: createPlatform(), bufferSize: 10, ttlMs: 60_000 });
    const { transport, sent } = fakeTransport();
    outbox.setTransport(transport);
    const p = outbox.send('e', 'x');
    await flush();
    sent[0]?.lose();
    outbox.setPaused(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sent).toHaveLength(1);
    outbox.setPaused(false);
    await flush();
    expect(sent).toHaveLength(2);
    expect(sent[1]?.request.key).toBe(sent[0]?.request.key);
    sent[1]?.answer({ ok: true });
    expect(await p).toEqual({ ok: true });
  });

  it('rejects a send that overflows the buffer or outlives its TTL', async () => {
    const outbox = new Outbox({ platform: createPlatform(), bufferSize: 1, ttlMs: 5_000 });
    const waiting = outbox.send('e', 1);
    await expect(outbox.send('e', 2)).rejects.toMatchObject({ code: 'SEND_FAILED' });
    const expired = expect(waiting).rejects.toThrow(/expired/);
    await vi.advanceTimersByTimeAsync(5_001);
    await expired;
    expect(outbox.size).toBe(0);
  });

  it('once shut (client disposed), rejects waiting sends and every later one at once', async () => {
    const outbox = new Outbox({ platform: createPlatform(), bufferSize: 10, ttlMs: 60_000 });
    const waiting = expect(outbox.send('e', 1)).rejects.toThrow('Client disposed before the send was acknowledged');
    outbox.shut('Client disposed');
    await waiting;
    await expect(outbox.send('e', 2)).rejects.toMatchObject({
      code: 'SEND_FAILED',
      message: 'Client disposed; "e" was not sent',
    });
    expect(outbox.size).toBe(0);
  });
});
