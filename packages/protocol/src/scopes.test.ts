import { describe, expect, it } from 'vitest';
import { grantCovers, normalizeScope, scopeAncestry } from './scopes.js';

describe('scopes', () => {
  it('lists a scope and its ancestors up to the root', () => {
    expect(scopeAncestry('ke/muranga/kiharu/ward-5')).toEqual([
      'ke/muranga/kiharu/ward-5',
      'ke/muranga/kiharu',
      'ke/muranga',
      'ke',
      '*',
    ]);
    expect(scopeAncestry('*')).toEqual(['*']);
  });

  it('a grant covers itself and descendants, not siblings sharing a prefix', () => {
    expect(grantCovers('ke/muranga', 'ke/muranga/kiharu')).toBe(true);
    expect(grantCovers('ke/muranga', 'ke/muranga')).toBe(true);
    expect(grantCovers('ke/muranga', 'ke/murangax')).toBe(false);
    expect(grantCovers('*', 'anything/at/all')).toBe(true);
    expect(grantCovers('ke/nyeri', 'ke/muranga/kiharu')).toBe(false);
  });

  it('normalizes slashes and refuses invalid paths', () => {
    expect(normalizeScope('/ke/muranga/')).toBe('ke/muranga');
    expect(normalizeScope('ke//x')).toBeUndefined();
    expect(normalizeScope('ke/has space')).toBeUndefined();
    expect(normalizeScope('')).toBeUndefined();
  });
});
