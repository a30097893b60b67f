import { Server } from 'socket.io';
import { describe, expect, it } from 'vitest';
import { encodeSioEvent, wsFrame } from './sio-encoding.js';

describe('Socket.IO event encoding', () => {
  it('frames the packet every plain recipient shares once, as a finished WebSocket frame', () => {
    expect(typeof wsFrame).toBe('function'); // the ESM build of ws exports it as `Sender.frame`
    const io = new Server();
    const event = { id: 'e1', event: 'ping', data: { a: 1 }, publishedAt: 0, encoded: {} };
    const first = encodeSioEvent(io.encoder, event, undefined, false);
    const frame = first.options.wsPreEncodedFrame;
    expect(frame).toBeDefined();
    // 0x81: FIN + text; then the engine.io message packet "4" and socket.io's EVENT "2".
    const bytes = Buffer.concat(frame!);
    expect(bytes[0]).toBe(0x81);
    expect(bytes.subarray(2).toString()).toBe('42["ping",{"a":1}]');
    expect(encodeSioEvent(io.encoder, event, undefined, false)).toBe(first);
  });
});
