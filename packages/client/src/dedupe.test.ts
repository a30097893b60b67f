import { describe, expect, it } from 'vitest';
import { RecentIds } from './dedupe.js';

describe('RecentIds', () => {
  it('reports an id the second time it is seen', () => {
    const r = new RecentIds(10);
    expect(r.seen('a')).toBe(false);
    expect(r.seen('a')).toBe(true);
  });

  it('forgets the least recently seen id beyond capacity', () => {
    const r = new RecentIds(3);
    for (const id of ['a', 'b', 'c']) r.seen(id);
    expect(r.seen('a')).toBe(true); // a is now most recent
    r.seen('d'); // evicts b
    expect(r.size).toBe(3);
    expect(r.seen('b')).toBe(false);
    expect(r.seen('a')).toBe(true);
  });

  it('empties on clear', () => {
    const r = new RecentIds(3);
    r.seen('a');
    r.clear();
    expect(r.seen('a')).toBe(false);
  });
});
