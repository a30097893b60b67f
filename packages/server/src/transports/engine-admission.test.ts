import type { IncomingMessage } from 'node:http';
import { TetherError } from '@tether/protocol';
import { describe, expect, it, vi } from 'vitest';
import { EngineAdmission } from './engine-admission.js';
import type { HandshakeGate } from './handshake.js';

function request(): IncomingMessage {
  return { headers: {}, socket: { remoteAddress: '10.0.0.1' } } as unknown as IncomingMessage;
}

/** A gate whose connect rate is exceeded whenever `over()` says so. */
function gate(over: () => boolean) {
  const takeConnect = vi.fn(async () => {
    if (over()) throw new TetherError('RATE_LIMITED', undefined, { retryAfterMs: 100 });
  });
  return { takeConnect, refused: (err: TetherError) => err } as unknown as HandshakeGate & {
    takeConnect: typeof takeConnect;
  };
}

function handshake(admission: EngineAdmission, req: IncomingMessage): Promise<[string | null, boolean]> {
  return new Promise((resolve) => admission.allowRequest(req, (message, success) => resolve([message, success])));
}

describe('EngineAdmission', () => {
  it('covers the first CONNECT with the handshake token, and makes every later one pay', async () => {
    const g = gate(() => false);
    const admission = new EngineAdmission(g, false);
    const req = request();
    expect(await handshake(admission, req)).toEqual([null, true]);
    expect(g.takeConnect).toHaveBeenCalledTimes(1);
    await admission.admitConnect(req, '10.0.0.1');
    expect(g.takeConnect).toHaveBeenCalledTimes(1);
    await admission.admitConnect(req, '10.0.0.1');
    await admission.admitConnect(req, '10.0.0.1');
    expect(g.takeConnect).toHaveBeenCalledTimes(3);
  });

  it('refuses every CONNECT of a session opened over the rate', async () => {
    const g = gate(() => true);
    const admission = new EngineAdmission(g, false);
    const req = request();
    expect(await handshake(admission, req)).toEqual([null, true]);
    for (let i = 0; i < 2; i++)
      await expect(admission.admitConnect(req, '10.0.0.1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(g.takeConnect).toHaveBeenCalledTimes(1);
  });
});
