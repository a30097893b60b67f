import { TetherError, type PublishRequest } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { validatePublish } from './publish.js';

function failure(request: unknown): string {
  try {
    validatePublish(request as PublishRequest);
  } catch (err) {
    expect(err).toBeInstanceOf(TetherError);
    expect((err as TetherError).code).toBe('VALIDATION_FAILED');
    return (err as TetherError).message;
  }
  throw new Error('expected VALIDATION_FAILED');
}

describe('validatePublish', () => {
  it('keeps a given id, generates one otherwise, and defaults data to {}', () => {
    expect(validatePublish({ event: 'e', to: { users: ['u1'] }, id: 'evt-1' }).id).toBe('evt-1');
    const generated = validatePublish({ event: 'e', to: { users: ['u1'] } });
    expect(generated.id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(generated.data).toEqual({});
    expect(validatePublish({ event: 'e', to: { users: ['u1'] } }).id).not.toBe(generated.id);
  });

  it('normalizes scopes and fills absent target lists', () => {
    const envelope = validatePublish({ event: 'e', data: { a: 1 }, to: { scopes: ['/ke/muranga/'] } });
    expect(envelope.to).toEqual({ users: [], scopes: ['ke/muranga'], channels: [] });
    expect(envelope.data).toEqual({ a: 1 });
  });

  it('refuses data nested past the depth limit, at any depth, without overflowing the stack', () => {
    const nest = (levels: number): Record<string, unknown> => {
      let value: Record<string, unknown> = {};
      for (let i = 1; i < levels; i++) value = { a: value };
      return value;
    };
    expect(validatePublish({ event: 'e', data: nest(64), to: { users: ['u'] } }).data).toBeDefined();
    expect(failure({ event: 'e', data: nest(65), to: { users: ['u'] } })).toMatch(/^data nests deeper than 64/);
    expect(failure({ event: 'e', data: nest(100_000), to: { users: ['u'] } })).toMatch(/^data nests/);
    expect(() => validatePublish({ event: 'e', data: nest(8), to: { users: ['u'] } }, 4)).toThrow(/deeper than 4/);
  });

  it('names the field that is wrong', () => {
    expect(failure({ to: { users: ['u'] } })).toMatch(/^event/);
    expect(failure({ event: '', to: { users: ['u'] } })).toMatch(/^event/);
    expect(failure({ event: 'x'.repeat(129), to: { users: ['u'] } })).toMatch(/^event/);
    expect(failure({ event: 'session_created', to: { users: ['u'] } })).toMatch(/reserved/);
    expect(failure({ event: 'connect', to: { users: ['u'] } })).toMatch(/reserved/);
    expect(failure({ event: 'e', data: [1], to: { users: ['u'] } })).toMatch(/^data/);
    expect(failure({ event: 'e', data: 'x', to: { users: ['u'] } })).toMatch(/^data/);
    expect(failure({ event: 'e', data: null, to: { users: ['u'] } })).toMatch(/^data/);
    expect(failure({ event: 'e', to: { users: ['u'] }, id: '' })).toMatch(/^id/);
    expect(failure({ event: 'e', to: { users: ['u'] }, id: 7 })).toMatch(/^id/);
    expect(failure({ event: 'e' })).toMatch(/^to/);
    expect(failure({ event: 'e', to: {} })).toMatch(/at least one/);
    expect(failure({ event: 'e', to: { users: [], scopes: [] } })).toMatch(/at least one/);
    expect(failure({ event: 'e', to: { users: 'u1' } })).toMatch(/^to\.users must be an array/);
    expect(failure({ event: 'e', to: { users: ['u', ''] } })).toMatch(/^to\.users\[1\]/);
    expect(failure({ event: 'e', to: { scopes: ['ke//x'] } })).toMatch(/^to\.scopes\[0\]/);
    expect(failure({ event: 'e', to: { scopes: [5] } })).toMatch(/^to\.scopes\[0\]/);
    expect(failure({ event: 'e', to: { channels: ['bad name'] } })).toMatch(/^to\.channels\[0\]/);
    expect(failure(null)).toMatch(/^body/);
  });
});
