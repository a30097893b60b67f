import { EventEmitter, errorMonitor } from 'node:events';
import { describe, expect, it } from 'vitest';
import { compactListeners, listenShaped } from './listeners.js';

const tableOf = (emitter: EventEmitter): object => (emitter as unknown as { _events: object })._events;

describe('listenShaped', () => {
  it('adds every listener to an emitter without any, in a plain object table instead of the dictionary', () => {
    const emitter = new EventEmitter();
    expect(Object.getPrototypeOf(tableOf(emitter))).toBe(null); // Node's own table
    const calls: string[] = [];
    listenShaped(emitter, {
      message(this: EventEmitter, text: string) {
        expect(this).toBe(emitter);
        calls.push(`message ${text}`);
      },
      pong: () => calls.push('pong'),
      error: (err: Error) => calls.push(`error ${err.message}`),
      close: (code: number) => calls.push(`close ${code}`),
    });
    expect(Object.getPrototypeOf(tableOf(emitter))).toBe(Object.prototype);
    expect(emitter.eventNames()).toEqual(['message', 'pong', 'error', 'close']);
    expect(emitter.listenerCount('close')).toBe(1);
    emitter.emit('message', 'hi');
    emitter.emit('pong');
    emitter.emit('error', new Error('boom')); // a listener: not thrown
    emitter.emit('close', 1000);
    expect(calls).toEqual(['message hi', 'pong', 'error boom', 'close 1000']);
  });

  it('keeps the listeners already there, in order, and the emitter keeps working as an emitter', () => {
    const emitter = new EventEmitter();
    const calls: string[] = [];
    emitter.on('error', () => calls.push('old error'));
    emitter.once('close', () => calls.push('old close once'));
    emitter.on('data', () => calls.push('old data'));
    listenShaped(emitter, { close: () => calls.push('new close'), heartbeat: () => calls.push('new heartbeat') });
    expect(emitter.eventNames()).toEqual(['error', 'close', 'data', 'heartbeat']);
    expect(emitter.listenerCount('close')).toBe(2);

    emitter.emit('close');
    emitter.emit('close'); // the `once` one is gone
    emitter.emit('heartbeat');
    emitter.emit('error', new Error('x'));
    expect(calls).toEqual(['old close once', 'new close', 'new close', 'new heartbeat', 'old error']);

    const later = (): number => calls.push('later data');
    emitter.on('data', later);
    emitter.emit('data');
    emitter.off('data', later);
    emitter.emit('data');
    expect(calls.slice(-3)).toEqual(['old data', 'later data', 'old data']);
    emitter.removeAllListeners();
    expect(emitter.emit('close')).toBe(false);
  });

  it('adds them with `on` when the table holds symbol-named listeners it cannot copy', () => {
    const emitter = new EventEmitter();
    const monitored: string[] = [];
    emitter.on(errorMonitor, (err: Error) => monitored.push(err.message));
    listenShaped(emitter, { error: () => undefined });
    expect(Object.getPrototypeOf(tableOf(emitter))).toBe(null);
    emitter.emit('error', new Error('seen'));
    expect(monitored).toEqual(['seen']);
  });
});

describe('compactListeners', () => {
  it('swaps a grown listener list for an exact copy: same listeners, same order, still removable', () => {
    const emitter = new EventEmitter();
    const calls: number[] = [];
    const third = (): number => calls.push(3);
    emitter.on('close', () => calls.push(1));
    emitter.once('close', () => calls.push(2));
    emitter.on('close', third);
    const tableOf = (e: EventEmitter) => (e as unknown as { _events: Record<string, unknown> })._events;
    const before = tableOf(emitter).close;
    compactListeners(emitter, 'close');
    expect(tableOf(emitter).close).not.toBe(before);
    expect(tableOf(emitter).close).toEqual(before);
    emitter.emit('close');
    emitter.off('close', third);
    emitter.emit('close');
    expect(calls).toEqual([1, 2, 3, 1]);
    compactListeners(emitter, 'nothing'); // no list: nothing to do
  });
});
