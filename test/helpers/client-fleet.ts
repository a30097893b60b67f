import { Worker } from 'node:worker_threads';
import { WAIT_MS } from './realtime.js';

/** What every client of the fleet saw, once the server had closed them all. */
export interface FleetSummary {
  ws: { sessions: number; shutdownNotices: number; closeCodes: Record<string, number> };
  sio: { sessions: number; shutdownNotices: number; disconnectReasons: Record<string, number> };
}

export type FleetMessage =
  | { type: 'ready' }
  | { type: 'server_shutdown' }
  | { type: 'first_close'; transport: 'ws' | 'socket.io'; code?: number; reason?: string }
  | { type: 'all_closed'; summary: FleetSummary }
  | { type: 'error'; message: string };

/**
 * Hundreds of real clients (`ws` on `/ws`, socket.io-client over websocket) that read everything,
 * run in a worker thread: their event loop is not the gateway's, so their work does not delay the
 * server's timers a test measures. Each token is one client. The fleet reports the first
 * `server_shutdown`, the first close, and a summary once every client has been closed.
 *
 * @example
 *   const fleet = await ClientFleet.start(gw.url, wsTokens, sioTokens);
 *   await fleet.next('server_shutdown');
 */
export class ClientFleet {
  private readonly received: FleetMessage[] = [];
  private readonly pokes = new Set<() => void>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (message: FleetMessage) => this.record(message));
    worker.on('error', (err) => {
      this.failure = err;
      this.poke();
    });
  }

  /** Resolves once every client has its session. */
  static async start(url: string, wsTokens: string[], sioTokens: string[]): Promise<ClientFleet> {
    const worker = new Worker(new URL('./client-fleet-worker.mjs', import.meta.url), {
      workerData: { url, wsTokens, sioTokens },
    });
    const fleet = new ClientFleet(worker);
    await fleet.next('ready');
    return fleet;
  }

  /** The first message of `type` (already received or future); rejects on a client error. */
  next<T extends FleetMessage['type']>(type: T, ms = WAIT_MS): Promise<Extract<FleetMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for the client fleet to report ${type}`));
      }, ms);
      const check = (): void => {
        const error = this.received.find((m) => m.type === 'error');
        const problem = this.failure ?? (error === undefined ? undefined : new Error(`client fleet: ${error.message}`));
        const found = this.received.find((m): m is Extract<FleetMessage, { type: T }> => m.type === type);
        if (problem === undefined && found === undefined) return;
        done();
        if (found !== undefined) resolve(found);
        else reject(problem);
      };
      const done = (): void => {
        clearTimeout(timer);
        this.pokes.delete(check);
      };
      this.pokes.add(check);
      check();
    });
  }

  async stop(): Promise<void> {
    await this.worker.terminate();
  }

  private record(message: FleetMessage): void {
    this.received.push(message);
    this.poke();
  }

  private poke(): void {
    for (const poke of [...this.pokes]) poke();
  }
}
