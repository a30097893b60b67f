import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_JSON_DEPTH, exceedsJsonDepth, jsonTextExceedsDepth } from './json-depth.js';

const objects = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const arrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** A value `depth` objects deep, built with a loop (no recursion to build it either). */
function deepValue(depth: number): unknown {
  const root: Record<string, unknown> = {};
  let at = root;
  for (let i = 1; i < depth; i++) {
    const next: Record<string, unknown> = {};
    at.a = next;
    at = next;
  }
  return root;
}

describe('jsonTextExceedsDepth', () => {
  it('counts containers: scalars are 0, {} and [] are 1', () => {
    expect(jsonTextExceedsDepth('1', 0)).toBe(false);
    expect(jsonTextExceedsDepth('"s"', 0)).toBe(false);
    expect(jsonTextExceedsDepth('{}', 0)).toBe(true);
    expect(jsonTextExceedsDepth('{}', 1)).toBe(false);
    expect(jsonTextExceedsDepth('{"a":[1]}', 1)).toBe(true);
    expect(jsonTextExceedsDepth('{"a":[1]}', 2)).toBe(false);
  });

  it('takes the deepest branch, not the total number of containers', () => {
    const wide = `[${Array.from({ length: 1000 }, () => '{"a":[1]}').join(',')}]`;
    expect(jsonTextExceedsDepth(wide, 3)).toBe(false);
    expect(jsonTextExceedsDepth(wide, 2)).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(jsonTextExceedsDepth(JSON.stringify({ s: '[[[{{{' }), 1)).toBe(false);
    expect(jsonTextExceedsDepth(JSON.stringify({ s: 'quote " then [[[' }), 1)).toBe(false);
    expect(jsonTextExceedsDepth(JSON.stringify({ s: 'backslash \\', t: [[1]] }), 2)).toBe(true);
    expect(jsonTextExceedsDepth(JSON.stringify({ s: 'backslash \\', t: [[1]] }), 3)).toBe(false);
  });

  it('answers at the limit exactly, and at 100,000 levels without overflowing the stack', () => {
    expect(jsonTextExceedsDepth(objects(DEFAULT_MAX_JSON_DEPTH), DEFAULT_MAX_JSON_DEPTH)).toBe(false);
    expect(jsonTextExceedsDepth(objects(DEFAULT_MAX_JSON_DEPTH + 1), DEFAULT_MAX_JSON_DEPTH)).toBe(true);
    expect(jsonTextExceedsDepth(objects(100_000), DEFAULT_MAX_JSON_DEPTH)).toBe(true);
    expect(jsonTextExceedsDepth(arrays(100_000), DEFAULT_MAX_JSON_DEPTH)).toBe(true);
  });
});

describe('exceedsJsonDepth', () => {
  it('agrees with the text check on parsed documents', () => {
    for (const text of ['1', '{}', '[]', '{"a":[1]}', objects(10), arrays(10), '[{"a":[]},[[[]]]]']) {
      for (const max of [0, 1, 2, 3, 4, 9, 10, 11]) {
        expect(exceedsJsonDepth(JSON.parse(text), max), `${text} / ${max}`).toBe(jsonTextExceedsDepth(text, max));
      }
    }
  });

  it('handles values 200,000 levels deep without overflowing the stack', () => {
    expect(exceedsJsonDepth(deepValue(200_000), DEFAULT_MAX_JSON_DEPTH)).toBe(true);
    expect(exceedsJsonDepth(JSON.parse(arrays(100_000)), DEFAULT_MAX_JSON_DEPTH)).toBe(true);
  });

  it('treats a cyclic value as too deep instead of looping', () => {
    const cyclic: Record<string, unknown> = { b: 1 };
    cyclic.self = cyclic;
    expect(exceedsJsonDepth(cyclic, DEFAULT_MAX_JSON_DEPTH)).toBe(true);
  });

  it('enters a shared container again only when it is reached deeper', () => {
    const shared = { x: { y: 1 } };
    const value = { a: shared, b: { c: { d: shared } } };
    // shared.x is 2 below shared; reached via b.c.d, shared is at depth 4, so the deepest is 5.
    expect(exceedsJsonDepth(value, 5)).toBe(false);
    expect(exceedsJsonDepth(value, 4)).toBe(true);
  });
});
