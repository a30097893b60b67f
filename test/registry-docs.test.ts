import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, AUTH_MESSAGES } from '@tether/protocol';

// The registry is the one source of error codes; docs/PROTOCOL.md must say the same.
describe('error registry and docs', () => {
  const doc = readFileSync('docs/PROTOCOL.md', 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `([A-Z_]+)` \|(.*)\|$/.exec(line);
    if (m)
      rows.set(
        m[1]!,
        m[2]!.split('|').map((c) => c.trim()),
      );
  }

  it('documents every code with its HTTP status, close code, retryability and message', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      const row = rows.get(code);
      expect(row, `docs/PROTOCOL.md has no row for ${code}`).toBeDefined();
      expect(row!.slice(0, 4)).toEqual([
        String(spec.httpStatus),
        String(spec.closeCode),
        spec.retryable ? 'yes' : 'no',
        spec.message,
      ]);
    }
  });

  it('documents no code the registry does not have', () => {
    const codeRows = [...rows.keys()].filter((c) => /^[A-Z]+_[A-Z_]+$|^INTERNAL$|^CONFLICT$|^FORBIDDEN$/.test(c));
    for (const code of codeRows) expect(Object.keys(ERRORS)).toContain(code);
  });

  it('keeps the contract messages exactly', () => {
    expect(ERRORS.AUTH_EXPIRED.message).toBe(
      'Authentication token has expired. Please refresh your token and reconnect.',
    );
    expect(AUTH_MESSAGES.malformed).toBe('Invalid authentication token format');
    expect(ERRORS.AUTH_INVALID.message).toBe('Invalid authentication token');
  });
});
