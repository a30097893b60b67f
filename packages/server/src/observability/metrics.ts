import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HubObserver, Session } from '../hub/types.js';

/**
 * Prometheus metrics, one registry per gateway (several gateways in one test process must not
 * share counters). Fed through the hub's observer, so the hub itself knows nothing of prom-client.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly observer: HubObserver;
  recordHttpAuth(kind: 'login' | 'refresh' | 'logout' | 'guest', outcome: string): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const connections = new Gauge({
    name: 'tether_connections',
    help: 'Live authenticated connections',
    labelNames: ['transport', 'kind'] as const,
    registers: [registry],
  });
  const closes = new Counter({
    name: 'tether_connections_closed_total',
    help: 'Connections closed, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const authResults = new Counter({
    name: 'tether_auth_results_total',
    help: 'Socket authentication results by phase and code (ok for success)',
    labelNames: ['phase', 'code'] as const,
    registers: [registry],
  });
  const reauths = new Counter({
    name: 'tether_reauths_total',
    help: 'In-place reauthentications by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const warnings = new Counter({
    name: 'tether_token_expiry_warnings_total',
    help: 'token_expiring messages sent',
    registers: [registry],
  });
  const publishes = new Counter({
    name: 'tether_publishes_total',
    help: 'Events published',
    registers: [registry],
  });
  const deliveries = new Counter({
    name: 'tether_deliveries_total',
    help: 'Event writes to connections',
    registers: [registry],
  });
  const publishToSend = new Histogram({
    name: 'tether_publish_to_send_seconds',
    help: 'Time from a publish entering the hub to its last local write',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const httpAuth = new Counter({
    name: 'tether_http_auth_total',
    help: 'Token service requests by kind and outcome',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });

  const kindOf = (s: Session) => (s.isGuest ? 'guest' : 'user');
  const observer: HubObserver = {
    onSessionOpened(session) {
      connections.inc({ transport: session.transport, kind: kindOf(session) });
      authResults.inc({ phase: 'handshake', code: 'ok' });
    },
    onSessionClosed(session, reason) {
      connections.dec({ transport: session.transport, kind: kindOf(session) });
      closes.inc({ reason });
    },
    onAuthFailed(code, info) {
      authResults.inc({ phase: info.phase, code });
    },
    onReauth(_session, ok, code) {
      reauths.inc({ result: ok ? 'ok' : (code ?? 'error') });
    },
    onExpiryWarning() {
      warnings.inc();
    },
    onPublish() {
      publishes.inc();
    },
    onDelivered(count, ms) {
      if (count > 0) deliveries.inc(count);
      publishToSend.observe(ms / 1000);
    },
  };

  return {
    registry,
    observer,
    recordHttpAuth: (kind, outcome) => httpAuth.inc({ kind, outcome }),
  };
}

/** Calls every observer's callback in turn; one observer's exception never stops the others. */
export function combineObservers(...observers: (HubObserver | undefined)[]): HubObserver {
  const list = observers.filter((o): o is HubObserver => o !== undefined);
  const call =
    <K extends keyof HubObserver>(key: K) =>
    (...args: Parameters<NonNullable<HubObserver[K]>>) => {
      for (const o of list) {
        const fn = o[key] as ((...a: unknown[]) => void) | undefined;
        if (fn === undefined) continue;
        try {
          fn.apply(o, args);
        } catch {
          // Observers are for metrics and logs; they must not break delivery.
        }
      }
    };
  return {
    onSessionOpened: call('onSessionOpened'),
    onSessionClosed: call('onSessionClosed'),
    onAuthFailed: call('onAuthFailed'),
    onReauth: call('onReauth'),
    onExpiryWarning: call('onExpiryWarning'),
    onPublish: call('onPublish'),
    onDelivered: call('onDelivered'),
  };
}
