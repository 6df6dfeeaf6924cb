// Crash safety on the real services (issue 4 §Ingest): `pulse oracle` ingests from NATS JetStream
// into PostgreSQL; it is SIGKILLed while batches are in flight, restarted, and every heartbeat the
// bus held ends up stored exactly once (ack only after commit + unique (device_id, seq) + duplicate
// detection on redelivery). Then SIGTERM shuts it down gracefully.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DATABASE_URL, NATS_URL, freshDatabase, needs, uniqueName } from './support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { TEST_NETWORK, heartbeatMessage, newDevice, registerDevices } from '../oracle/ingest/testing.ts';
import { JetStreamBus } from '../bus/jetstream.ts';

const ok = await needs('postgres', 'nats');
const PULSE = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));

const children: ChildProcess[] = [];

function startOracle(env: Record<string, string>): { child: ChildProcess; ready: Promise<void>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [PULSE, 'oracle'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (b: Buffer) => {
      log += b.toString();
      if (log.includes('"ingest started"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`oracle exited early (${code}): ${log}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  children.push(child);
  return { child, ready, exited };
}

describe.skipIf(!ok)('ingest survives SIGKILL (JetStream → PostgreSQL)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: PgStore;
  let bus: JetStreamBus;
  const stream = uniqueName('PULSE_CRASH');
  const prefix = uniqueName('pcrash');
  beforeAll(async () => {
    db = await freshDatabase();
    store = new PgStore({ url: db.url });
    await migrate(store);
    bus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: prefix, name: 'crash-test' });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await bus?.jsm.streams.delete(stream).catch(() => undefined);
    await bus?.close();
    await store?.close();
    await db?.drop();
  });

  it('stores every heartbeat the bus held exactly once across a SIGKILL and restart', async () => {
    expect(DATABASE_URL).toBeTruthy();
    const devices = Array.from({ length: 20 }, () => newDevice());
    await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), devices);
    const perDevice = 250;
    const total = devices.length * perDevice;
    const env = {
      DATABASE_URL: db.url,
      NATS_URL,
      PULSE_BUS: 'jetstream',
      PULSE_STREAM: stream,
      PULSE_SUBJECT_PREFIX: prefix,
      PULSE_INGEST_DURABLE: 'ingest',
      PULSE_INGEST_WORKERS: '2',
      PULSE_INGEST_BATCH: '250',
      PULSE_INGEST_ACK_WAIT: '2s',
      PULSE_NETWORK_ID: String(TEST_NETWORK),
      PULSE_HTTP_PORT: '0',
    };
    const count = async () => (await store.query<{ n: number }>('SELECT count(*)::integer AS n FROM heartbeats'))[0]!.n;

    const first = startOracle(env);
    await first.ready;
    // Publish while the oracle ingests; every publish resolves only on the JetStream PubAck.
    const pub = bus.publisher();
    const publishing = (async () => {
      for (let s = 1; s <= perDevice; s++) await Promise.all(devices.map((d) => pub.publish(heartbeatMessage(d, s))));
    })();
    let atKill = 0;
    for (;;) {
      atKill = await count();
      if (atKill >= total / 5) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull(); // killed by the signal, no exit code
    await publishing;
    expect(atKill).toBeLessThan(total); // it really died mid-stream

    const second = startOracle(env);
    await second.ready;
    const deadline = Date.now() + 180_000;
    while ((await count()) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // Past the ack wait: any delivery the killed process held has been redelivered and handled.
    await new Promise((r) => setTimeout(r, 3_000));
    const [hb] = await store.query<{ n: number; distinct_n: number }>('SELECT count(*)::integer AS n, count(DISTINCT (device_id, seq))::integer AS distinct_n FROM heartbeats');
    expect(hb).toEqual({ n: total, distinct_n: total });
    const [roll] = await store.query<{ n: string }>('SELECT sum(heartbeats)::text AS n FROM slot_rollups');
    expect(roll!.n).toBe(String(total)); // credited exactly once
    const reasons = await store.query<{ reason: string }>('SELECT DISTINCT reason FROM rejections');
    expect(reasons.every((r) => r.reason === 'HB_DUPLICATE')).toBe(true); // only redeliveries of committed batches
    const info = await bus.jsm.consumers.info(stream, 'ingest');
    expect(info.num_pending + info.num_ack_pending).toBe(0);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0); // graceful shutdown
  }, 300_000);
});
