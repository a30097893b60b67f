import { normalizeScope } from '@tether/protocol';

/** Most scopes one connection may narrow to. */
export const MAX_NARROW_SCOPES = 100;

/**
 * A narrowing request's scopes, normalized and de-duplicated; undefined when it is not a list of at
 * most `MAX_NARROW_SCOPES` valid scope paths. Whether each lies inside the grants is the hub's check
 * (grants change; the request is kept as asked and re-applied).
 */
export function readNarrow(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length > MAX_NARROW_SCOPES) return undefined;
  const out = new Set<string>();
  for (const item of value) {
    const scope = typeof item === 'string' ? normalizeScope(item) : undefined;
    if (scope === undefined) return undefined;
    out.add(scope);
  }
  return [...out];
}
