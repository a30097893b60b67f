import { TetherError } from '@tether/protocol';
import { z } from 'zod';

/** A client-chosen message id (a UUID in our UI): what makes a retried send idempotent. */
const messageId = z
  .string()
  .regex(/^[A-Za-z0-9-]{8,64}$/, 'must be 8–64 letters, digits or dashes')
  .optional();
const text = z.string().trim().min(1, 'must not be empty').max(4000);

export const MessageBody = z.object({ id: messageId, body: text });
export const OpenTicketBody = z.object({
  id: messageId,
  ward: z.string().min(1).max(200),
  name: z.string().trim().min(1).max(80),
  body: text,
});
export const StatusQuery = z.object({ status: z.enum(['open', 'resolved']).default('open') });
/** A user's timeline: the newest `limit` entries, before entry id `before` for the page before. */
export const TimelineQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: z.coerce.number().int().min(1).optional(),
});

/** Parses with a zod schema; a failure is VALIDATION_FAILED naming the first bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'body';
  throw new TetherError('VALIDATION_FAILED', `${where}: ${issue?.message ?? 'invalid'}`);
}

export function idParam(params: unknown, name = 'id'): string {
  const value = (params as Record<string, unknown>)[name];
  if (typeof value !== 'string' || value.length === 0 || value.length > 200)
    throw new TetherError('VALIDATION_FAILED', `${name}: invalid`);
  return value;
}
