import type { AreaDto } from './dto.js';

/** The country every demo path starts with. */
export const COUNTRY = 'ke';

interface RegionSeed {
  slug: string;
  name: string;
  districts: { slug: string; name: string; wards: { slug: string; name: string }[] }[];
}

/** Demo administrative tree: 2 regions, 4 districts, 10 wards. */
export const DEMO_TREE: readonly RegionSeed[] = [
  {
    slug: 'muranga',
    name: "Murang'a",
    districts: [
      {
        slug: 'kiharu',
        name: 'Kiharu',
        wards: [
          { slug: 'mbiri', name: 'Mbiri' },
          { slug: 'township', name: 'Township' },
          { slug: 'murarandia', name: 'Murarandia' },
        ],
      },
      {
        slug: 'kandara',
        name: 'Kandara',
        wards: [
          { slug: 'ithiru', name: 'Ithiru' },
          { slug: 'ruchu', name: 'Ruchu' },
        ],
      },
    ],
  },
  {
    slug: 'nakuru',
    name: 'Nakuru',
    districts: [
      {
        slug: 'njoro',
        name: 'Njoro',
        wards: [
          { slug: 'mauche', name: 'Mauche' },
          { slug: 'kihingo', name: 'Kihingo' },
          { slug: 'nessuit', name: 'Nessuit' },
        ],
      },
      {
        slug: 'molo',
        name: 'Molo',
        wards: [
          { slug: 'elburgon', name: 'Elburgon' },
          { slug: 'turi', name: 'Turi' },
        ],
      },
    ],
  },
];

/** The demo tree flattened to rows, parents before children. */
export function demoAreas(): AreaDto[] {
  const out: AreaDto[] = [];
  for (const r of DEMO_TREE) {
    const rPath = `${COUNTRY}/${r.slug}`;
    out.push({ path: rPath, name: r.name, level: 'region', parent: null });
    for (const d of r.districts) {
      const dPath = `${rPath}/${d.slug}`;
      out.push({ path: dPath, name: d.name, level: 'district', parent: rPath });
      for (const w of d.wards) out.push({ path: `${dPath}/${w.slug}`, name: w.name, level: 'ward', parent: dPath });
    }
  }
  return out;
}

/** How a staff member's grants read to a person: "Admin", "EO · Kiharu (district)". */
export function describeGrant(grant: string, areas: ReadonlyMap<string, AreaDto>): string {
  if (grant === '*') return 'All regions';
  const area = areas.get(grant);
  return area === undefined ? grant : `${area.name} (${area.level})`;
}
