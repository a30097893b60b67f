import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ServerDrain } from './server-drain.js';

describe('ServerDrain', () => {
  it('tracks each open socket and forgets it when it closes (no socket is kept after its close)', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    const drain = ServerDrain.of(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sockets = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const socket = connect(port, '127.0.0.1', () => resolve(socket));
          }),
      ),
    );
    await waitFor(() => drain.tracked === 5);
    for (const socket of sockets.slice(0, 3)) socket.destroy();
    await waitFor(() => drain.tracked === 2);
    for (const socket of sockets.slice(3)) socket.destroy();
    await waitFor(() => drain.tracked === 0);
    await new Promise((resolve) => server.close(resolve));
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}
