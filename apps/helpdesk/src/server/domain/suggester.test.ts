import { describe, expect, it } from 'vitest';
import { suggestReplies } from './suggester.js';

describe('suggestReplies', () => {
  it('suggests the nitrogen advice for yellowing maize before the generic fertilizer rule', () => {
    const out = suggestReplies('My MAIZE leaves are turning yellow, which fertilizer?');
    expect(out.map((s) => s.rule)).toEqual(['maize-yellowing', 'fertilizer']);
  });

  it('needs every word group of a rule: maize alone is not yellowing', () => {
    expect(suggestReplies('When do I harvest maize?').map((s) => s.rule)).not.toContain('maize-yellowing');
  });

  it('falls back to an acknowledgement when no rule matches', () => {
    expect(suggestReplies('hello')).toEqual([expect.objectContaining({ rule: 'acknowledge' })]);
  });

  it('returns at most the limit', () => {
    expect(suggestReplies('maize yellow fertilizer cow price rain seed', 3)).toHaveLength(3);
  });

  it('matches Swahili keywords', () => {
    expect(suggestReplies('Bei ya mahindi?')[0]?.rule).toBe('market-price');
  });
});
