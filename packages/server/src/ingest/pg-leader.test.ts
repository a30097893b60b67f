import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../util/clock.js';
import { advisoryLockKey, createPgLeader, type LockKey, type PgLeader } from './pg-leader.js';

/** Real PostgreSQL (advisory locks are its own); each test takes a lock key of its own. */
const URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const APP = `tether-leader-test-${randomBytes(4).toString('hex')}`;

interface Candidate {
  leader: PgLeader;
  /** Every election (true) and deposition (false), in order. */
  events: boolean[];
  session: pg.Client | undefined;
}

const started: Candidate[] = [];

function candidate(lock: LockKey | undefined): Candidate {
  const c: Candidate = { events: [], session: undefined, leader: undefined as unknown as PgLeader };
  c.leader = createPgLeader({
    url: URL,
    lock,
    name: 'test role',
    applicationName: APP,
    logger: pino({ level: 'silent' }),
    clock: systemClock,
    attemptMs: 200,
    onElected(session) {
      c.session = session;
      c.events.push(true);
      return Promise.resolve();
    },
    onDeposed() {
      c.events.push(false);
    },
  });
  c.leader.start();
  started.push(c);
  return c;
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const leading = (c: Candidate) => c.leader.state === 'leading';

afterEach(async () => {
  await Promise.all(started.splice(0).map((c) => c.leader.stop()));
});

describe('advisoryLockKey', () => {
  it('is the same for the same name on every node, and differs between names', () => {
    expect(advisoryLockKey('outbox:tether')).toEqual(advisoryLockKey('outbox:tether'));
    expect(advisoryLockKey('outbox:tether')).not.toEqual(advisoryLockKey('notify:tether'));
    for (const part of advisoryLockKey('x')) expect(Number.isInteger(part) && Math.abs(part) < 2 ** 31).toBe(true);
  });
});

describe('createPgLeader', () => {
  it('elects exactly one of the sessions waiting on one lock', async () => {
    const key = advisoryLockKey(randomBytes(8).toString('hex'));
    const all = [candidate(key), candidate(key), candidate(key)];
    await until('a leader', () => all.some(leading));
    await until('the others waiting', () => all.filter((c) => c.leader.state === 'waiting').length === 2);
    expect(all.filter(leading)).toHaveLength(1);
  });

  it('a stopped leader hands over at once to a waiting session', async () => {
    const key = advisoryLockKey(randomBytes(8).toString('hex'));
    const first = candidate(key);
    await until('the first to lead', () => leading(first));
    const second = candidate(key);
    await until('the second to wait', () => second.leader.state === 'waiting');
    const stoppedAt = Date.now();
    await first.leader.stop();
    await until('the second to lead', () => leading(second));
    // Granted when the lock is released, not at the next attempt.
    expect(Date.now() - stoppedAt).toBeLessThan(2_000);
    expect(first.events).toEqual([true, false]);
  });

  it('a leader whose session is terminated steps down, another leads, and it waits again', async () => {
    const key = advisoryLockKey(randomBytes(8).toString('hex'));
    const first = candidate(key);
    await until('the first to lead', () => leading(first));
    const second = candidate(key);
    await until('the second to wait', () => second.leader.state === 'waiting');

    const admin = new pg.Client({ connectionString: URL });
    await admin.connect();
    const pid = (await first.session!.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();

    await until('the first to step down', () => first.events.length === 2);
    expect(first.events).toEqual([true, false]);
    await until('the second to lead', () => leading(second));
    await until('the first to wait again', () => first.leader.state === 'waiting');
  });

  it('without a lock (one node), leads as soon as it is connected', async () => {
    const one = candidate(undefined);
    const two = candidate(undefined);
    await until('both to lead', () => leading(one) && leading(two));
  });
});
