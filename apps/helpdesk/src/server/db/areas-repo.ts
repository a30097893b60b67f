import type { Kysely } from 'kysely';
import type { AreaDto } from '../domain/dto.js';
import type { HelpdeskDatabase } from './schema.js';

/** The administrative tree (regions → districts → wards). Small and read-mostly: kept in memory too. */
export class AreasRepository {
  private cache: AreaDto[] = [];

  constructor(private readonly db: Kysely<HelpdeskDatabase>) {}

  /** Inserts the areas that are missing (seeding is repeatable across restarts). */
  async ensure(areas: readonly AreaDto[]): Promise<void> {
    for (const a of areas) {
      await this.db
        .insertInto('hd_areas')
        .values({ path: a.path, name: a.name, level: a.level, parent: a.parent })
        .onConflict((oc) => oc.column('path').doNothing())
        .execute();
    }
    await this.load();
  }

  async load(): Promise<AreaDto[]> {
    const rows = await this.db.selectFrom('hd_areas').selectAll().orderBy('path').execute();
    this.cache = rows.map((r) => ({ path: r.path, name: r.name, level: r.level, parent: r.parent }));
    return this.cache;
  }

  all(): readonly AreaDto[] {
    return this.cache;
  }

  /** The areas `scopes` cover, as people name them: `All regions`, or `Kiharu district, Njoro district`. */
  describe(scopes: readonly string[]): string {
    if (scopes.includes('*')) return 'All regions';
    const byPath = this.byPath();
    return scopes
      .map((scope) => {
        const area = byPath.get(scope);
        return area === undefined ? scope : `${area.name} ${area.level}`;
      })
      .join(', ');
  }

  byPath(): Map<string, AreaDto> {
    return new Map(this.cache.map((a) => [a.path, a]));
  }

  isWard(path: string): boolean {
    return this.cache.some((a) => a.path === path && a.level === 'ward');
  }
}
