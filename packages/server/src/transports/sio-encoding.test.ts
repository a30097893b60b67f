import { Server } from 'socket.io';
import { describe, expect, it } from 'vitest';
import { fixedPosition } from '../hub/types.js';
import { encodeSioEvent, sioEventFrame, wsFrame } from './sio-encoding.js';

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

  it('builds the finished frame written straight to the socket: the same packet, shared or with meta', () => {
    const io = new Server();
    const event = { id: 'e✓', event: 'note', data: { text: 'é'.repeat(70) }, publishedAt: 0, encoded: {} };
    const body = (frame: Buffer | undefined): string => {
      expect(frame![0]).toBe(0x81);
      // A body of 126–65,535 bytes: the 16-bit length follows the marker 126.
      expect(frame![1]).toBe(126);
      expect(frame!.readUInt16BE(2)).toBe(frame!.length - 4);
      return frame!.subarray(4).toString();
    };
    const plain = sioEventFrame(io.encoder, event, fixedPosition('0-3'), false);
    expect(sioEventFrame(io.encoder, event, fixedPosition('0-4'), false)).toBe(plain); // built once per publish
    expect(body(plain)).toBe('4' + (encodeSioEvent(io.encoder, event, undefined, false).packets[0] as string));
    for (const position of ['0-3', undefined])
      expect(
        body(sioEventFrame(io.encoder, event, position === undefined ? undefined : fixedPosition(position), true)),
      ).toBe('4' + (encodeSioEvent(io.encoder, event, position, true).packets[0] as string));
    expect(JSON.parse(body(sioEventFrame(io.encoder, event, fixedPosition('0-3'), true)).slice(2))).toEqual([
      'note',
      event.data,
      { id: 'e✓', position: '0-3' },
    ]);
  });
});
