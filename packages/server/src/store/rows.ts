import { TetherError } from '@tether/protocol';
import type { Selectable } from 'kysely';
import type { AuditEvent, AuditEventType, RefreshFamilyRecord, RefreshTokenRecord, UserRecord } from './types.js';
import type { AuditLogTable, RefreshFamiliesTable, RefreshTokensTable, UsersTable } from './schema.js';

/** Row ↔ record mapping, kept apart from the queries so both read plainly. */

export function toUser(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    scopes: parseList(row.scopes),
    channels: parseList(row.channels),
    active: Number(row.active) === 1,
    passwordHash: row.password_hash,
    tokensRevokedBefore: row.tokens_revoked_before === null ? null : Number(row.tokens_revoked_before),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export function toFamily(row: Selectable<RefreshFamiliesTable>): RefreshFamilyRecord {
  return {
    id: row.id,
    // The migration's check guarantees exactly one owner.
    userId: row.user_id ?? row.guest_id ?? '',
    guest: row.guest_id !== null,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    revokeReason: row.revoke_reason,
    userAgent: row.user_agent,
    ip: row.ip,
  };
}

export function toToken(row: Selectable<RefreshTokensTable>): RefreshTokenRecord {
  return {
    id: row.id,
    familyId: row.family_id,
    userId: row.user_id,
    tokenHash: row.token_hash,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    usedAt: row.used_at === null ? null : Number(row.used_at),
    replacedById: row.replaced_by_id,
    graceCiphertext: row.grace_ciphertext,
  };
}

export function toAuditEvent(row: Selectable<AuditLogTable>): AuditEvent {
  return {
    id: Number(row.id),
    type: row.type as AuditEventType,
    userId: row.user_id,
    familyId: row.family_id,
    ip: row.ip,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as Record<string, unknown>),
    at: Number(row.at),
  };
}

function parseList(text: string): string[] {
  const value: unknown = JSON.parse(text);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Whether a driver error is a unique-constraint violation (SQLite or PostgreSQL). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function conflict(message: string, cause: unknown): TetherError {
  return new TetherError('CONFLICT', message, { cause });
}
