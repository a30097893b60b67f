import { describe, expect, it } from 'vitest';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from './passwords.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe('passwords', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const stored = await hashPassword('s3cret pass', FAST);
    expect(stored).toMatch(/^scrypt\$1024\$8\$1\$[\w-]+\$[\w-]+$/);
    expect(await verifyPassword('s3cret pass', stored)).toBe(true);
    expect(await verifyPassword('s3cret pasS', stored)).toBe(false);
  });

  it('salts every hash, so equal passwords hash differently', async () => {
    expect(await hashPassword('same', FAST)).not.toBe(await hashPassword('same', FAST));
  });

  it('treats a malformed stored hash as a mismatch, never an exception', async () => {
    for (const bad of [
      '',
      'plain',
      'scrypt$3$8$1$c2FsdHNhbHQ$aGFzaA',
      'scrypt$1024$8$1$$',
      'bcrypt$1024$8$1$a$b',
      'scrypt$1024$99$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA',
    ]) {
      expect(await verifyPassword('x', bad)).toBe(false);
    }
  });

  it('normalizes Unicode, so composed and decomposed forms of one password match', async () => {
    const stored = await hashPassword('caf\u00e9', FAST);
    expect(await verifyPassword('cafe\u0301', stored)).toBe(true);
  });

  it('flags hashes made with weaker parameters for re-hashing', async () => {
    expect(needsRehash(await hashPassword('x', FAST))).toBe(true);
    expect(needsRehash(await hashPassword('x', FAST), FAST)).toBe(false);
  });

  it('keeps one dummy hash with the default parameters for unknown accounts', async () => {
    const a = await dummyHash();
    expect(a).toBe(await dummyHash());
    expect(needsRehash(a)).toBe(false);
  });
});
