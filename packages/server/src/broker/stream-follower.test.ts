import { describe, expect, it } from 'vitest';
import type { RedisEventLog } from '../history/redis-log.js';
import type { Cursor } from '../history/types.js';
import { StreamCursors } from './stream-follower.js';

/** A log whose head reads answer only when the test says, with the head of that moment. */
function slowHeads(): { log: RedisEventLog; answer: (head: Cursor) => Promise<void> } {
  const pending: ((heads: Map<string, Cursor>) => void)[] = [];
  const names: string[][] = [];
  const log = {
    heads: (streams: readonly string[]) =>
      new Promise<Map<string, Cursor>>((resolve) => {
        names.push([...streams]);
        pending.push(resolve);
      }),
  } as unknown as RedisEventLog;
  const answer = async (head: Cursor): Promise<void> => {
    for (const [i, resolve] of pending.entries()) resolve(new Map(names[i]!.map((name) => [name, head])));
    await Promise.resolve();
  };
  return { log, answer };
}

describe('StreamCursors: where a node catches up from after an outage', () => {
  it('a head that came back late (re-sent after the reconnect) does not skip what the connections missed', async () => {
    const { log, answer } = slowHeads();
    const cursors = new StreamCursors(log, () => true);
    cursors.watch(['u:yusuf']);
    // The connection's handshake placed it at offset 4; Redis took events 5–7 while this node was cut
    // off, and the head read, re-sent on the new connection, answers 7.
    await answer({ epoch: 'e1', offset: 7 });
    expect(cursors.toCatchUp(new Map([['u:yusuf', { epoch: 'e1', offset: 4 }]]))).toEqual([
      ['u:yusuf', { epoch: 'e1', offset: 4 }],
    ]);
  });

  it('a stream whose head never came back is still caught up, from where its connections stand', () => {
    const { log } = slowHeads();
    const cursors = new StreamCursors(log, (stream) => stream !== 's:gone');
    cursors.watch(['u:yusuf']);
    expect(cursors.toCatchUp()).toEqual([]);
    const readers = new Map<string, Cursor>([
      ['u:yusuf', { epoch: 'e1', offset: 4 }],
      ['s:gone', { epoch: 'e1', offset: 1 }],
    ]);
    expect(cursors.toCatchUp(readers)).toEqual([['u:yusuf', { epoch: 'e1', offset: 4 }]]);
  });

  it('keeps the later cursor a message carried when the connections are further on, and the earlier otherwise', () => {
    const { log } = slowHeads();
    const cursors = new StreamCursors(log, () => true);
    cursors.saw('u:a', { epoch: 'e1', offset: 3 });
    cursors.saw('u:b', { epoch: 'e1', offset: 9 });
    cursors.saw('u:c', { epoch: 'e2', offset: 9 });
    const readers = new Map<string, Cursor>([
      ['u:a', { epoch: 'e1', offset: 5 }],
      ['u:b', { epoch: 'e1', offset: 2 }],
      ['u:c', { epoch: 'e1', offset: 2 }],
    ]);
    expect(new Map(cursors.toCatchUp(readers))).toEqual(
      new Map([
        ['u:a', { epoch: 'e1', offset: 3 }],
        ['u:b', { epoch: 'e1', offset: 2 }],
        ['u:c', { epoch: 'e2', offset: 9 }],
      ]),
    );
  });
});
