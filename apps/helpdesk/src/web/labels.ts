/** How a staff member reads to a person: `Administrator · All regions`, `Extension officer · Kiharu district`. */
export function describeStaff(staff: { scopes: readonly string[]; area: string }): string {
  return `${staff.scopes.includes('*') ? 'Administrator' : 'Extension officer'} · ${staff.area}`;
}
