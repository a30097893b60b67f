import type { EventEmitter } from 'node:events';

/** The fields of Node's `EventEmitter` this relies on (the same ones Node's own streams preset). */
interface EmitterInternals {
  _events?: unknown;
  _eventsCount?: unknown;
}

type Listener = (...args: never[]) => void;

/**
 * Adds one listener per event name to `emitter`, and leaves its listener table a plain object of
 * fixed shape — what Node's own streams make theirs. An `EventEmitter` starts with a dictionary-mode
 * table (`{ __proto__: null }`) that grows as names are added: at four names it holds ~0.35 KB, a
 * plain object ~0.13 KB, on every connection. The listeners already there are kept, in order, and the
 * emitter behaves as before: `on`, `off`, `emit` and `listenerCount` read the same fields. (The object
 * has `Object.prototype`, as streams' has: no event may be named after one of its members, which no
 * emitter here uses.)
 *
 * Falls back to `on` for each listener when the emitter does not keep its listeners where this
 * expects; a name that already has listeners gets the new one by `on` too.
 *
 * @example
 *   listenShaped(ws, { message: onMessage, close: onClose });
 */
export function listenShaped<L extends { [Name in keyof L]: Listener }>(emitter: EventEmitter, listeners: L): void {
  const internals = emitter as unknown as EmitterInternals;
  const names = Object.keys(listeners) as Array<keyof L & string>;
  const events = internals._events;
  let later = names;
  if (
    typeof events === 'object' &&
    events !== null &&
    typeof internals._eventsCount === 'number' &&
    Object.getOwnPropertySymbols(events).length === 0 // `for … in` would drop them (e.g. errorMonitor)
  ) {
    const table: Record<string, unknown> = {};
    for (const name in events) table[name] = (events as Record<string, unknown>)[name];
    const before = internals._eventsCount;
    let added: string | undefined;
    later = [];
    for (const name of names) {
      if (table[name] !== undefined) later.push(name);
      else {
        table[name] = listeners[name];
        added ??= name;
      }
    }
    internals._events = table;
    internals._eventsCount = before + names.length - later.length;
    if (added !== undefined && emitter.listenerCount(added) === 0) {
      // Not the internals this expects: put the table back, and add them the documented way.
      internals._events = events;
      internals._eventsCount = before;
      later = names;
    }
  }
  for (const name of later) emitter.on(name, listeners[name] as unknown as (...args: unknown[]) => void);
}

/**
 * Replaces `name`'s listener list with a copy of its exact length. `on` pushes a third listener onto
 * the two-slot array the second made, which V8 grows to 19 slots (~0.14 KB more, on every
 * connection whose TCP socket has three `close` listeners). The listeners and their order are
 * unchanged; `emit` iterates a copy of the list and `off` reads it afresh, so swapping it is safe.
 */
export function compactListeners(emitter: EventEmitter, name: string): void {
  const events = (emitter as unknown as EmitterInternals)._events as Record<string, unknown> | null | undefined;
  if (typeof events !== 'object' || events === null) return;
  const list = events[name];
  if (Array.isArray(list) && list.length > 2) events[name] = list.slice();
}
