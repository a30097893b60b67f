import { pollUntil, type GatewayProcess } from './cluster.js';

/** Whether `node` says (in /metrics) it is the one node doing `role` (`outbox` or `notify`). */
export async function leads(node: GatewayProcess, role: 'outbox' | 'notify'): Promise<boolean> {
  if (node.exited !== undefined) return false;
  try {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    return new RegExp(`^tether_pg_leader\\{role="${role}"\\} 1$`, 'm').test(text);
  } catch {
    return false;
  }
}

/** The one node of `nodes` doing `role`, once exactly one says so. */
export async function leaderOf(nodes: GatewayProcess[], role: 'outbox' | 'notify'): Promise<GatewayProcess> {
  let found: GatewayProcess[] = [];
  await pollUntil(`one ${role} leader`, async () => {
    const flags = await Promise.all(nodes.map((node) => leads(node, role)));
    found = nodes.filter((_, i) => flags[i]);
    return found.length === 1;
  });
  return found[0]!;
}
