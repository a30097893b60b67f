import { TetherError } from '@tether/protocol';
import type { z } from 'zod';

/** Parses with a zod schema; a failure is a VALIDATION_FAILED naming the first bad field. */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
  throw new TetherError('VALIDATION_FAILED', `${where}: ${issue?.message ?? 'invalid'}`);
}
