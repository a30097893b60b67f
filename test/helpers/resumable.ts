import type { NarrowAck, SessionCreatedPayload } from '@tether/protocol';
import { SioClient, WsClient, waitUntil } from './realtime.js';

export type Kind = 'socket.io' | 'ws';
export const kinds: Kind[] = ['socket.io', 'ws'];

export interface Resume {
  position?: string;
  channels?: string[];
  narrow?: string[];
}

/** One connection of either transport, seen as: its session_created, then its `tick` events in order. */
export interface Conn {
  session(): Promise<SessionCreatedPayload>;
  /** The data of every `tick` received, in arrival order, with the position it carried. */
  ticks<T = { n: number }>(): Array<T & { position: string | undefined }>;
  waitTicks(count: number, ms?: number): Promise<void>;
  refusal(): Promise<string>;
  /** The code of the first `auth_error` the server sent on an accepted connection (it closes next). */
  authError(): Promise<string>;
  /** Narrows live (`narrow` event / frame) and returns the answer. */
  narrow(scopes: string[] | null): Promise<NarrowAck>;
  close(): void;
  /** Closes and waits until the server can send nothing more (a `/ws` close handshake takes a round trip). */
  leave(): Promise<void>;
}

/** Connects to `url` with `token` over `kind`, presenting `resume` in the handshake. */
export function connect(url: string, kind: Kind, token: string, resume: Resume = {}): Conn {
  const wait =
    (ticks: () => unknown[], subscribe: (poke: () => void) => () => void) =>
    (count: number, ms = 30_000) =>
      waitUntil(`${count} ticks`, () => (ticks().length >= count ? true : undefined), subscribe, ms).then(
        () => undefined,
      );

  if (kind === 'socket.io') {
    const c = new SioClient(url, { auth: { token, meta: true, ...resume } });
    const ticks = <T>() =>
      c.received
        .filter((e) => e.event === 'tick')
        .map((e) => ({ ...(e.args[0] as T), position: (e.args[1] as { position?: string } | undefined)?.position }));
    return {
      session: () => c.session(),
      ticks,
      waitTicks: wait(ticks, (poke) => c.subscribe(poke)),
      refusal: async () => (await c.refusal()).data.code,
      authError: async () => ((await c.next((e) => e.event === 'auth_error')).args[0] as { code: string }).code,
      narrow: (scopes) => c.socket.timeout(10_000).emitWithAck('narrow', { scopes }) as Promise<NarrowAck>,
      close: () => c.close(),
      leave: async () => {
        c.close();
        await c.disconnected();
      },
    };
  }
  const c = new WsClient(url);
  c.ws.on('open', () => c.send({ type: 'authenticate', token, ...resume }));
  const ticks = <T>() =>
    c.frames
      .filter((f) => f.type === 'event' && f.event === 'tick')
      .map((f) => ({ ...(f.data as T), position: f.position as string | undefined }));
  let rid = 0;
  return {
    session: async () => {
      const f = await c.next((x) => x.type === 'session_created' || x.type === 'auth_error');
      if (f.type !== 'session_created') throw new Error(`refused: ${String(f.code)}`);
      return f as unknown as SessionCreatedPayload;
    },
    ticks,
    waitTicks: wait(ticks, (poke) => c.subscribe(poke)),
    refusal: async () => String((await c.first('auth_error')).code),
    authError: async () => String((await c.first('auth_error')).code),
    narrow: async (scopes) => {
      const id = String(++rid);
      c.send({ type: 'narrow', scopes, rid: id });
      const f = await c.next((x) => (x.type === 'narrowed' || x.type === 'narrow_error') && x.rid === id);
      return f.type === 'narrowed'
        ? { ok: true, ...(f.scopes === undefined ? {} : { scopes: f.scopes as string[] }) }
        : { ok: false, code: f.code as never, message: String(f.message) };
    },
    close: () => c.close(),
    leave: async () => {
      c.close();
      await c.closed();
    },
  };
}
