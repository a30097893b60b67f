/** How a set of scope grants reads to a person. */
export function describeScope(scopes: readonly string[]): string {
  if (scopes.includes('*')) return 'Admin · all regions';
  return scopes
    .map((s) => {
      const parts = s.split('/').slice(1);
      const level = parts.length === 1 ? 'region' : parts.length === 2 ? 'district' : 'ward';
      return `EO · ${parts[parts.length - 1] ?? s} (${level})`;
    })
    .join(', ');
}
