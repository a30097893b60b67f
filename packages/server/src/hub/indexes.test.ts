import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../util/rate-limit.js';
import { SessionIndexes, SetIndex, adoptGrants } from './indexes.js';
import { HubSession } from './session.js';
import { FakeClock, RecordingSink, createTestHub, makePrincipal } from './testing.js';

/** What the index holds for `key`: the value itself, a Set, or nothing. */
function held<V>(index: SetIndex<V>, key: string): unknown {
  return (index as unknown as { map: Map<string, unknown> }).map.get(key);
}

describe('SetIndex', () => {
  it('holds a single value itself and makes a Set from the second, back to the value at one', () => {
    const index = new SetIndex<object>();
    const [a, b, c] = [{}, {}, {}];
    index.add('k', a);
    expect(held(index, 'k')).toBe(a);
    expect(index.count('k')).toBe(1);
    expect([...index.get('k')!]).toEqual([a]);
    index.add('k', a);
    expect(index.count('k')).toBe(1);

    index.add('k', b);
    index.add('k', c);
    expect(held(index, 'k')).toBeInstanceOf(Set);
    expect(index.count('k')).toBe(3);
    expect([...index.get('k')!]).toEqual([a, b, c]);

    index.delete('k', a);
    index.delete('k', c);
    expect(held(index, 'k')).toBe(b);
    expect([...index.get('k')!]).toEqual([b]);
    index.delete('k', a);
    expect(index.count('k')).toBe(1);
    index.delete('k', b);
    expect(index.get('k')).toBeUndefined();
    expect(index.count('k')).toBe(0);
    expect(index.size).toBe(0);
  });

  it('forEach visits each value of a key, held directly or in a Set, and nothing for an absent key', () => {
    const index = new SetIndex<string>();
    const seen = (key: string): string[] => {
      const out: string[] = [];
      index.forEach(key, (value) => out.push(value));
      return out;
    };
    index.add('one', 'a');
    index.add('two', 'b');
    index.add('two', 'c');
    expect(seen('one')).toEqual(['a']);
    expect(seen('two')).toEqual(['b', 'c']);
    expect(seen('none')).toEqual([]);
  });

  it('counts distinct keys, and deleting an absent value or key changes nothing', () => {
    const index = new SetIndex<string>();
    index.add('x', 'v1');
    index.add('y', 'v2');
    index.add('y', 'v3');
    index.delete('x', 'other');
    index.delete('z', 'v1');
    expect(index.size).toBe(2);
    expect(index.count('x')).toBe(1);
    expect(index.count('y')).toBe(2);
  });
});

describe('SessionIndexes', () => {
  it('a user with one connection holds no Set in the user index; a second connection makes one', () => {
    const indexes = new SessionIndexes();
    const clock = new FakeClock();
    const open = (id: string, userId: string) =>
      new HubSession(
        id,
        makePrincipal({ userId, expiresAt: clock.now() + 60_000, sessionFamilyId: `fam-${id}` }),
        new RecordingSink('ws'),
        { ip: '127.0.0.1', userAgent: 'vitest', tokenSource: 'auth' },
        clock.now(),
        () => new TokenBucket(10, 1, clock),
      );
    const a1 = open('s1', 'a');
    const a2 = open('s2', 'a');
    indexes.add(a1);
    expect(held(indexes.byUser, 'a')).toBe(a1);
    expect(held(indexes.byFamily, 'fam-s1')).toBe(a1);
    indexes.add(a2);
    expect(held(indexes.byUser, 'a')).toBeInstanceOf(Set);
    expect(indexes.byUser.count('a')).toBe(2);
    indexes.remove(a1);
    expect(held(indexes.byUser, 'a')).toBe(a2);
    expect(indexes.stats()).toMatchObject({ sessions: 1, users: 1 });
  });

  it("the hub keeps a verified token's normalized scopes array as the session's grants, and copies others", () => {
    const { connect } = createTestHub();
    const scopes = ['ke/muranga', 'ke/nairobi'];
    const { session } = connect({ userId: 'a', scopes, claims: { sub: 'a', scopes } });
    expect(session.principal.scopes).toBe(scopes);
    expect(session.principal.claims.scopes).toBe(session.principal.scopes);

    const messy = ['/ke/muranga/', 'ke/muranga'];
    const other = connect({ userId: 'b', scopes: messy }).session;
    expect(other.principal.scopes).toEqual(['ke/muranga']);
    expect(messy).toEqual(['/ke/muranga/', 'ke/muranga']);
  });
});

describe('adoptGrants', () => {
  it('keeps an already normalized, duplicate-free array itself and copies any other', () => {
    const normal = ['ke/muranga', '*'];
    expect(adoptGrants(normal)).toBe(normal);
    const messy = ['/ke/muranga/', 'ke/muranga', 'ke//x'];
    const adopted = adoptGrants(messy);
    expect(adopted).not.toBe(messy);
    expect(adopted).toEqual(['ke/muranga']);
    expect(adoptGrants(['a', 'a'])).toEqual(['a']);
  });
});
