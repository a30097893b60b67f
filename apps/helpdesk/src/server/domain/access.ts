import { grantCovers, TetherError } from '@tether/protocol';

/**
 * Visibility follows Tether's scope rule exactly, so what a staff member can list over HTTP is what
 * their connections receive live: a ticket in ward W is theirs iff one of their grants covers W.
 */
export function canSeeWard(grants: readonly string[], ward: string): boolean {
  return grants.some((g) => grantCovers(g, ward));
}

/** Throws NOT_FOUND (not FORBIDDEN: a ticket's existence is not disclosed) when the ward is not covered. */
export function assertCanSeeWard(grants: readonly string[], ward: string): void {
  if (!canSeeWard(grants, ward)) throw new TetherError('NOT_FOUND', 'No such ticket');
}

/** A SQL-friendly form of the grants: null = everything; else exact paths and `prefix/` prefixes. */
export function wardFilter(grants: readonly string[]): { exact: string[]; prefixes: string[] } | null {
  if (grants.includes('*')) return null;
  return { exact: [...grants], prefixes: grants.map((g) => `${g}/`) };
}
