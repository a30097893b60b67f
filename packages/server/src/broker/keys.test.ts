import { describe, expect, it } from 'vitest';
import { ClusterKeys } from './keys.js';

describe('cluster interest channels', () => {
  const keys = new ClusterKeys('t');

  it('sends a scope publish to the scope and every ancestor, each channel once', () => {
    const channels = keys.publishChannels({
      id: 'e1',
      event: 'x',
      data: {},
      to: { users: ['u1', 'u1'], scopes: ['ke/muranga/kiharu', 'ke/muranga'], channels: ['project:42'] },
    });
    expect(channels).toEqual([
      '{t:u:u1}',
      '{t:s:ke/muranga/kiharu}',
      '{t:s:ke/muranga}',
      '{t:s:ke}',
      '{t:s:*}',
      '{t:c:project:42}',
    ]);
  });

  it('has a connection listen on its user, the scopes it reads and its joined channels', () => {
    expect(keys.sessionChannels('u1', ['ke', '*'], ['room:1'])).toEqual([
      '{t:u:u1}',
      '{t:s:ke}',
      '{t:s:*}',
      '{t:c:room:1}',
    ]);
  });
});
