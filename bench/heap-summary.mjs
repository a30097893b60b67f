#!/usr/bin/env node
// What a server's heap holds, grouped by node type and constructor (or function) name, per
// connection: `node bench/heap-summary.mjs <snapshot> [<baseline snapshot>] [--top=N]`.
// Snapshots come from `node bench/run.mjs --heap-snapshot ...` (bench/results/profiles/<date>/
// <target>-idle-<connections>.heapsnapshot); the connection count is read from the file name, and
// the same server's snapshot before its connections (`-idle-0`), when there, is subtracted: what is
// left is what the connections hold, not the code and state every process has.
// With two snapshots, the rows are sorted by how much more the first holds per connection.
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 40);
if (files.length === 0) {
  console.error('usage: node bench/heap-summary.mjs <snapshot> [<baseline snapshot>] [--top=N]');
  process.exit(2);
}

/** Idle connections of a snapshot, from its file name (`<target>-idle-<N>.heapsnapshot`); 1 if none. */
const connectionsOf = (file) => Number(/-idle-(\d+)\.heapsnapshot$/.exec(basename(file))?.[1] ?? 1);

/** A parsed snapshot with its field offsets, and `groupOf(n)`: the row a node counts in. */
function readSnapshot(file) {
  const { snapshot, nodes, edges, strings } = JSON.parse(readFileSync(file, 'utf8'));
  const { node_fields: nf, edge_fields: ef, node_types: nodeTypes, edge_types: edgeTypes } = snapshot.meta;
  const at = (fields, names) => names.map((f) => fields.indexOf(f));
  const [typeAt, nameAt, sizeAt, countAt] = at(nf, ['type', 'name', 'self_size', 'edge_count']);
  const groupOf = (n) => {
    const type = nodeTypes[0][nodes[n + typeAt]];
    // Strings, numbers and code vary by content; group them by type alone.
    const named = type === 'object' || type === 'closure' || type === 'native' || type === 'hidden' || type === 'array';
    const name = named ? strings[nodes[n + nameAt]] : '';
    return `${type} ${name.length > 60 ? name.slice(0, 57) + '...' : name}`;
  };
  return {
    nodes,
    edges,
    strings,
    nf,
    ef,
    edgeTypes: edgeTypes[0],
    sizeAt,
    countAt,
    edgeAt: at(ef, ['type', 'name_or_index', 'to_node']),
    groupOf,
  };
}

/** Map of "type name" → { bytes, count } per connection, and the total per connection. */
function summarize(file) {
  const connections = connectionsOf(file);
  const after = groupsOf(file);
  const beforeFile = file.replace(/-idle-\d+\.heapsnapshot$/, '-idle-0.heapsnapshot');
  const before = beforeFile !== file && existsSync(beforeFile) ? groupsOf(beforeFile) : undefined;
  const groups = new Map();
  for (const [key, group] of after.groups) {
    const was = before?.groups.get(key) ?? { bytes: 0, count: 0 };
    groups.set(key, { bytes: (group.bytes - was.bytes) / connections, count: (group.count - was.count) / connections });
  }
  for (const [key, was] of before?.groups ?? [])
    if (!after.groups.has(key)) groups.set(key, { bytes: -was.bytes / connections, count: -was.count / connections });
  const total = (after.total - (before?.total ?? 0)) / connections;
  return { file: before ? `${basename(file)} − ${basename(beforeFile)}` : file, connections, groups, total };
}

function groupsOf(file) {
  const { nodes, nf, sizeAt, groupOf } = readSnapshot(file);
  const groups = new Map();
  let total = 0;
  for (let n = 0; n < nodes.length; n += nf.length) {
    const size = nodes[n + sizeAt];
    total += size;
    const key = groupOf(n);
    const group = groups.get(key) ?? { bytes: 0, count: 0 };
    group.bytes += size;
    group.count += 1;
    groups.set(key, group);
  }
  return { groups, total };
}

const [a, b] = files.map(summarize);
const fmt = (n) => n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2);
console.log(`${basename(a.file)}: ${a.connections} connections, ${fmt(a.total)} B of heap per connection`);
if (b) console.log(`${basename(b.file)}: ${b.connections} connections, ${fmt(b.total)} B of heap per connection`);
const keys = new Set([...a.groups.keys(), ...(b ? b.groups.keys() : [])]);
const rows = [...keys].map((key) => {
  const x = a.groups.get(key) ?? { bytes: 0, count: 0 };
  const y = b?.groups.get(key) ?? { bytes: 0, count: 0 };
  return { key, bytes: x.bytes, count: x.count, base: y.bytes, baseCount: y.count, diff: x.bytes - y.bytes };
});
rows.sort((p, q) => (b ? Math.abs(q.diff) - Math.abs(p.diff) : q.bytes - p.bytes));
console.log(b ? '\nB/conn  objs/conn  | baseline B/conn  objs/conn | difference  group' : '\nB/conn  objs/conn  group');
for (const r of rows.slice(0, top)) {
  const own = `${fmt(r.bytes).padStart(6)}  ${fmt(r.count).padStart(9)}`;
  const diff = ((r.diff >= 0 ? '+' : '') + fmt(r.diff)).padStart(10);
  console.log(
    b
      ? `${own}  | ${fmt(r.base).padStart(15)}  ${fmt(r.baseCount).padStart(9)} | ${diff}  ${r.key}`
      : `${own}  ${r.key}`,
  );
}

// `--owners=<group>` (a row's group, e.g. "closure " or "object Object"): who holds that group's
// objects in the first snapshot, by owner and edge, per connection; `--depth=2` follows one step more.
const ownersOf = args.find((a) => a.startsWith('--owners='))?.slice(9);
if (ownersOf !== undefined)
  owners(files[0], ownersOf, Number(args.find((a) => a.startsWith('--depth='))?.slice(8) ?? 1));

function owners(file, group, depth) {
  const connections = connectionsOf(file);
  const { nodes, edges, strings, nf, ef, edgeTypes, sizeAt, countAt, edgeAt, groupOf } = readSnapshot(file);
  const [eTypeAt, eNameAt, eToAt] = edgeAt;
  // Reverse edges: for each node, its retainers (owner index, edge label), weak edges left out.
  const retainers = new Map();
  for (let n = 0, e = 0; n < nodes.length; n += nf.length) {
    for (let k = 0; k < nodes[n + countAt]; k++, e += ef.length) {
      const type = edgeTypes[edges[e + eTypeAt]];
      if (type === 'weak') continue;
      const name = type === 'element' || type === 'hidden' ? `[${edges[e + eNameAt]}]` : strings[edges[e + eNameAt]];
      const to = edges[e + eToAt];
      let list = retainers.get(to);
      if (list === undefined) retainers.set(to, (list = []));
      list.push([n, `${type}:${name}`]);
    }
  }
  const counts = new Map();
  for (let n = 0; n < nodes.length; n += nf.length) {
    const key = groupOf(n);
    if (key.trimEnd() !== group.trimEnd() && !key.startsWith(group)) continue;
    const walk = (m, level, path) => {
      const list = retainers.get(m) ?? [];
      for (const [owner, edge] of list.slice(0, 3)) {
        const step = `${groupOf(owner).trimEnd()} .${edge}`;
        const key = path ? `${path}  ⟸  ${step}` : step;
        if (level === depth) {
          const row = counts.get(key) ?? { count: 0, bytes: 0 };
          row.count += 1;
          row.bytes += nodes[n + sizeAt];
          counts.set(key, row);
        } else walk(owner, level + 1, key);
      }
    };
    walk(n, 1, '');
  }
  const rows = [...counts].sort((p, q) => q[1].bytes - p[1].bytes).slice(0, top);
  console.log(`\nowners of "${group}" in ${basename(file)} (per connection: objects, their bytes):`);
  for (const [key, { count, bytes }] of rows)
    console.log(
      `${(count / connections).toFixed(2).padStart(7)} ${(bytes / connections).toFixed(0).padStart(6)} B  ${key}`,
    );
}
