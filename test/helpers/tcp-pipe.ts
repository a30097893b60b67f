import type { Socket } from 'node:net';

/** Pipes two sockets both ways, tracked in `sockets` until closed; either side failing closes both. */
export function pipeBoth(client: Socket, upstream: Socket, sockets: Set<Socket>): void {
  const pair = [client, upstream];
  for (const s of pair) {
    sockets.add(s);
    s.on('error', () => pair.forEach((p) => p.destroy()));
    s.on('close', () => {
      sockets.delete(s);
      pair.forEach((p) => p.destroy());
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
}
