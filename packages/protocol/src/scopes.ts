/**
 * Scope paths: `ke/muranga/kiharu/ward-5`. `*` is the root and matches everything.
 * A grant matches an event scope when it is the scope itself or one of its ancestors.
 */
export const ROOT_SCOPE = '*';
const SEGMENT = /^[A-Za-z0-9_.:-]+$/;
const SLASH = 0x2f; // '/'

/** Normalizes a scope path (trims slashes); returns undefined when it is not a valid path. */
export function normalizeScope(scope: string): string | undefined {
  if (scope === ROOT_SCOPE) return ROOT_SCOPE;
  const trimmed = scope.replace(/^\/+|\/+$/g, '');
  if (trimmed.length === 0 || trimmed.length > 512) return undefined;
  const parts = trimmed.split('/');
  return parts.every((p) => SEGMENT.test(p)) ? parts.join('/') : undefined;
}

/** The scope and each of its ancestors, root last: `a/b/c` → `a/b/c`, `a/b`, `a`, `*`. */
export function scopeAncestry(scope: string): string[] {
  if (scope === ROOT_SCOPE) return [ROOT_SCOPE];
  const out: string[] = [];
  let end = scope.length;
  for (;;) {
    out.push(scope.slice(0, end));
    end = scope.lastIndexOf('/', end - 1);
    if (end <= 0) break;
  }
  out.push(ROOT_SCOPE);
  return out;
}

/** Whether holding `grant` entitles one to events published to `scope`. */
export function grantCovers(grant: string, scope: string): boolean {
  if (grant === ROOT_SCOPE) return true;
  return scope === grant || (scope.startsWith(grant) && scope.charCodeAt(grant.length) === SLASH);
}
