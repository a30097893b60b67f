// The markdown of the cluster-publish figure (bench/lib/cluster-publish.mjs) for the run's report.
import { PATTERNS } from './cluster-publish.mjs';

const n = (v) => (v === undefined || v === null ? '–' : typeof v === 'number' ? v.toLocaleString('en-US') : String(v));
const x = (v) => (v === undefined || v === null ? '–' : `${v}×`);

const ROWS = [
  ['publishes/s accepted (202)', (f) => n(f.publishesPerSecond)],
  ['errors (non-202)', (f) => (f.errors ? `${n(f.errors)} ${JSON.stringify(f.statuses)}` : '0')],
  ['latency p50 / p99 (ms)', (f) => `${n(f.latency.p50)} / ${n(f.latency.p99)}`],
  ['stream appends per publish (XADD)', (f) => n(f.streamsPerPublish)],
  ['scripts per publish', (f) => n(f.scriptsPerPublish)],
  ['gateway CPU per publish (µs, all gateways)', (f) => n(f.gatewayCpuMicrosPerPublish)],
  ['Redis CPU per publish (µs, all servers)', (f) => n(f.redisCpuMicrosPerPublish)],
  ['time inside scripts per publish (µs, commandstats: wall clock)', (f) => n(f.scriptMicrosPerPublish)],
  ['load generator CPU per publish (µs)', (f) => n(f.loadgenCpuMicrosPerPublish)],
  [
    'CPU over the run, % of one core: gateways / Redis / load gen / other processes',
    (f) =>
      `${n(f.cpuPercent.gateways)} / ${n(f.cpuPercent.redis)} / ${n(f.cpuPercent.loadgen)} / ${n(f.cpuPercent.others)}`,
  ],
  ['scripts not from the bench (other clients)', (f) => n(f.foreignScripts)],
];

const RATIOS = {
  'publishes/s accepted (202)': 'publishesPerSecond',
  'latency p50 / p99 (ms)': 'p99',
  'gateway CPU per publish (µs, all gateways)': 'gatewayCpuMicrosPerPublish',
  'Redis CPU per publish (µs, all servers)': 'redisCpuMicrosPerPublish',
};

/** `s:*`, or `s:*` ×3 for three of its sub-streams: what a shard holds of the hot streams. */
function holdsText(holds) {
  const counts = new Map();
  for (const h of holds) {
    const scope = h.replace(/#.*$/, '');
    counts.set(scope, (counts.get(scope) ?? 0) + (h.includes('#') ? 1 : 0));
  }
  return [...counts].map(([scope, k]) => (k > 0 ? `\`${scope}\` ×${k}` : `\`${scope}\``)).join(', ');
}

function shardLines(name, f, label = 'Redis Cluster') {
  return [
    '',
    `${label}, ${name} pattern, per master:`,
    '',
    '| master | Redis CPU per publish (µs) | share of Redis CPU | % of one core | scripts (share) | Redis CPU per script (µs) | stream keys | holds |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...f.shards.map(
      (s) =>
        `| ${s.node} | ${n(s.cpuMicrosPerPublish)} | ${n(s.cpuShare)}% | ${n(s.cpuPercent)} | ${n(s.scripts)} (${n(s.scriptShare)}%) | ` +
        `${n(s.cpuMicrosPerScript)} | ${n(s.streamKeys)} | ${holdsText(s.holds)} |`,
    ),
  ];
}

/** The report's "Cluster publish" section; nothing when the section did not run. */
export function clusterPublishLines(cp) {
  if (!cp || cp.note) return [];
  if (!cp.backends) return ['', '## Cluster publish', '', `Not measured: ${cp.error ?? 'no figures'}.`];
  const { standalone: sa, cluster: cl } = cp.backends;
  const sz = cp.sizes;
  const lines = [
    '',
    '## Cluster publish',
    '',
    `POST /v1/publish at saturation: ${sz.concurrency} requests in flight over ${sz.nodes} gateways ` +
      `(${sz.idlePerNode} idle /ws connections each, reading nothing published), ${sz.durationMs / 1000} s per figure after ` +
      `${sz.warmupMs / 1000} s of warm-up, each backend with its own REDIS_PREFIX (deleted afterwards). Load average ` +
      `${cp.loadAverageAtStart?.toFixed(1) ?? '–'} / ${cp.loadAverageAtEnd?.toFixed(1) ?? '–'} at start / end.`,
    '',
    `**Read with care:** this machine has ${cp.cores} cores shared by the load generator, the gateways and every Redis ` +
      'process, so publishes/s cannot show cluster scaling; what this shows is Redis CPU per publish and how it ' +
      'splits over the shards.',
  ];
  for (const [name, b] of Object.entries(cp.backends)) if (b.error) lines.push('', `- **${name} failed**: ${b.error}`);
  const cols = [];
  for (const p of PATTERNS) {
    cols.push([`standalone: ${p.name}`, sa?.patterns?.[p.name], null]);
    cols.push([`cluster: ${p.name}`, cl?.patterns?.[p.name], null]);
    cols.push([`cluster ÷ standalone`, null, cp.comparison?.[p.name]]);
  }
  lines.push(
    '',
    `Patterns: ${PATTERNS.map((p) => `**${p.name}** = to ${p.label} (${p.streams} stream${p.streams > 1 ? 's' : ''})`).join('; ')}.`,
    '',
    `| figure | ${cols.map(([label]) => label).join(' | ')} |`,
    `| --- |${cols.map(() => ' ---: |').join('')}`,
  );
  for (const [label, get] of ROWS)
    lines.push(
      `| ${label} | ${cols
        .map(([, f, cmp]) => (cmp ? x(RATIOS[label] && cmp[RATIOS[label]]) : f ? get(f) : '–'))
        .join(' | ')} |`,
    );
  lines.push('', '(The latency ratio is of p99.)');
  for (const p of PATTERNS) if (cl?.patterns?.[p.name]) lines.push(...shardLines(p.name, cl.patterns[p.name]));
  const star = cl?.patterns?.scope?.starShard;
  const hot = cl?.patterns?.scope?.hottestShard;
  const base = sa?.patterns?.scope?.starShard;
  const holds = (s) => holdsText(s.holds);
  const per = (s) =>
    `${n(s.mainCpuMicrosPerPublish)} µs of main-thread CPU per scope publish (${n(s.cpuShare)}% of the cluster's ` +
    `Redis CPU, ${n(s.scriptShare)}% of its scripts)`;
  if (star && hot)
    lines.push(
      '',
      `Hot streams: every scope event of the tree is appended to one sub-stream of \`s:*\` and one of \`s:ke\` ` +
        `(HISTORY_SPREAD=8: 8 each). ${star.node} holds ` +
        `${holds(star)}: ${per(star)}.` +
        (hot.node === star.node
          ? ''
          : ` The hottest shard is ${hot.node}, holding ${holds(hot) || 'neither'}: ${per(hot)}.`) +
        ` Scope publishes of the whole deployment top out near 1 s ÷ ${n(hot.mainCpuMicrosPerPublish)} µs ≈ ` +
        `**${n(hot.ceilingPerSecond)}/s** on these 3 shards.` +
        (base
          ? ` Standalone Redis: ${n(base.mainCpuMicrosPerPublish)} µs per scope publish, ≈ ${n(base.ceilingPerSecond)}/s.`
          : ''),
    );
  const un = cp.backends.clusterUnspread?.patterns?.scope;
  if (un) lines.push(...shardLines('scope', un, 'Redis Cluster with HISTORY_SPREAD=1 (`*` and `ke` one stream each)'));
  const sp = cp.spread;
  if (sp)
    lines.push(
      '',
      `**Spreading** (scope pattern, same run): the busiest shard spent ${n(sp.hottestMicrosPerPublish[0])} µs of ` +
        `main-thread CPU per scope publish with \`*\` and \`ke\` one stream each, ${n(sp.hottestMicrosPerPublish[1])} µs ` +
        `spread over 8 sub-streams each: a ceiling of ≈ ${n(sp.ceilingPerSecond[0])}/s → ≈ ${n(sp.ceilingPerSecond[1])}/s ` +
        `(${x(sp.ceilingRatio)}). Shares of the Redis CPU per master: ${sp.cpuShares[0].map((v) => `${v}%`).join(' / ')} → ` +
        `${sp.cpuShares[1].map((v) => `${v}%`).join(' / ')}; Redis CPU per scope publish, all masters: ` +
        `${n(sp.redisCpuMicrosPerPublish[0])} → ${n(sp.redisCpuMicrosPerPublish[1])} µs (the same appends, moved).`,
    );
  const idle = Object.values(cp.backends)
    .flatMap((b) => b.idle ?? [])
    .map((s) => `${s.node} ${n(s.cpuMillisPerSecond)} ms/s`);
  if (idle.length)
    lines.push('', `Redis CPU with the gateways idle (cluster bus, heartbeats, other clients): ${idle.join(', ')}.`);
  return lines;
}
