// Broker session reports over real sockets (docs/broker.md §Session reports): devices connect with
// mqtt.js to a real broker, and the reports that reach the bus carry their connected intervals,
// bounded by the times the test observed the connection open and close. On the memory bus and on the
// real NATS JetStream, including a bus outage: the report waits and is delivered once, with no gap.
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { startBroker } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, closed, connectDevice, tcpProxy } from '../broker/test-kit.ts';
import { MemoryBus } from '../bus/memory.ts';
import { JetStreamBus } from '../bus/jetstream.ts';
import type { Bus, BusConsumer, BusSessionReport, SessionReport } from '../bus/bus.ts';
import { sessionReportId } from '../bus/session-report.ts';
import { NATS_URL, needs, uniqueName } from './support/services.ts';

const natsOk = await needs('nats');
const NETWORK = 33;

function config(extra: Parameters<typeof brokerConfig>[0] = {}) {
  return brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, serviceAccounts: new Map([['dash', 'pw']]), ...extra });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Read reports until `done` holds for what was read (or the time budget runs out); acks each one. */
async function readReports(consumer: BusConsumer<BusSessionReport>, done: (rs: SessionReport[]) => boolean, budgetMs = 15_000): Promise<SessionReport[]> {
  const out: SessionReport[] = [];
  const until = Date.now() + budgetMs;
  while (!done(out) && Date.now() < until) {
    for (const d of await consumer.fetch(50, 200)) {
      if (!d.message.ok) throw new Error(`malformed report on the bus: ${d.message.message}`);
      out.push(d.message.value);
      await d.ack();
    }
  }
  return out;
}

function msOf(reports: readonly SessionReport[], deviceId: string): number {
  return reports.flatMap((r) => r.intervals).filter((i) => i.deviceId === deviceId).reduce((a, i) => a + (i.to - i.from), 0);
}

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not reached');
    await sleep(10);
  }
}

describe('broker session reports', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  async function start(bus: Bus, extra: Parameters<typeof brokerConfig>[0] = {}) {
    const directory = new MemoryDirectory();
    const broker = await startBroker(config(extra), { bus, directory });
    cleanup.push(() => broker.close());
    return { broker, directory, url: `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}` };
  }

  it('reports a device connected interval, bounded by when it connected and disconnected, in contiguous windows', async () => {
    const bus = new MemoryBus();
    const { broker, directory, url } = await start(bus, { sessionReportMs: 150 });
    const a = new TestDevice(NETWORK);
    const b = new TestDevice(NETWORK);
    directory.set(a.id);
    directory.set(b.id);
    const consumer = bus.sessionConsumer('sessions');

    const beforeA = Date.now();
    const ca = await connectDevice(url, a);
    const afterA = Date.now();
    // A service account is a session, but not a device: it is never reported.
    const dash = await connectDevice(url, b, { clientId: 'dashboard', username: 'dash', password: 'pw' });
    const first = await readReports(consumer, (rs) => rs.some((r) => r.intervals.some((i) => i.deviceId === a.id)));
    const ia = first.flatMap((r) => r.intervals).find((i) => i.deviceId === a.id)!;
    expect(ia.from).toBeGreaterThanOrEqual(beforeA);
    expect(ia.from).toBeLessThanOrEqual(afterA);

    const beforeEnd = Date.now();
    await ca.endAsync();
    await waitFor(() => broker.health().sessions === 1); // only the service account is left
    const afterEnd = Date.now();
    // Keep reading until a window that starts after the disconnect arrives without device a.
    const cb = await connectDevice(url, b); // keeps later reports non-empty
    const rest = await readReports(consumer, (rs) => rs.some((r) => r.from >= afterEnd && !r.intervals.some((i) => i.deviceId === a.id)));
    const all = [...first, ...rest];
    expect(all.every((r) => r.brokerId === broker.id && r.parts === 1)).toBe(true);
    // Report seqs count up from 1; windows follow each other without a gap while someone is connected.
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
    for (let i = 1; i < all.length; i++) expect(all[i]!.from).toBe(all[i - 1]!.to);
    const lastA = all.flatMap((r) => r.intervals).filter((i) => i.deviceId === a.id).at(-1)!;
    expect(lastA.to).toBeGreaterThanOrEqual(beforeEnd);
    expect(lastA.to).toBeLessThanOrEqual(afterEnd);
    // Connected time is exactly the session: from its start to its end, however many windows it spans.
    expect(msOf(all, a.id)).toBe(lastA.to - ia.from);
    expect(all.flatMap((r) => r.intervals).every((i) => i.deviceId === a.id || i.deviceId === b.id)).toBe(true);
    await cb.endAsync();
    await dash.endAsync();
  });

  it('publishes a final report on graceful shutdown covering every open session up to the close', async () => {
    const bus = new MemoryBus();
    const { broker, directory, url } = await start(bus, { sessionReportMs: 3_600_000 });
    const devices = [new TestDevice(NETWORK), new TestDevice(NETWORK)];
    const clients = [];
    const before = Date.now();
    for (const d of devices) {
      directory.set(d.id);
      clients.push(await connectDevice(url, d));
    }
    const afterConnect = Date.now();
    // The second device reconnects: the old session is taken over (MQTT-3.1.4-2), and the overlap of
    // its two sessions must not count twice.
    const again = await connectDevice(url, devices[1]!);
    await closed(clients[1]!, 2_000);
    await sleep(50);
    const beforeClose = Date.now();
    await broker.close();
    const afterClose = Date.now();
    const reports = await readReports(bus.sessionConsumer('final'), (rs) => rs.length > 0, 3_000);
    expect(reports).toHaveLength(1);
    const [r] = reports;
    expect(r!.seq).toBe(1);
    expect(r!.to).toBeGreaterThanOrEqual(beforeClose);
    expect(r!.to).toBeLessThanOrEqual(afterClose);
    for (const d of devices) {
      const mine = r!.intervals.filter((i) => i.deviceId === d.id);
      expect(mine).toHaveLength(1); // merged: one interval even for the device that reconnected
      expect(mine[0]!.from).toBeGreaterThanOrEqual(before);
      expect(mine[0]!.from).toBeLessThanOrEqual(afterConnect);
      // Ends when the broker closed the connection, during close(): never past the window's end.
      expect(mine[0]!.to).toBeGreaterThanOrEqual(beforeClose);
      expect(mine[0]!.to).toBeLessThanOrEqual(r!.to);
    }
    expect(broker.metrics.registry.getSingleMetric('pulse_broker_session_reports_total')).toBeDefined();
    const published = (await broker.metrics.registry.getSingleMetricAsString('pulse_broker_session_reports_total')).match(/outcome="published"\} (\d+)/);
    expect(published?.[1]).toBe('1');
    await again.endAsync().catch(() => undefined);
  });

  it('reports nothing for a window in which no device was connected', async () => {
    const bus = new MemoryBus();
    const { broker } = await start(bus, { sessionReportMs: 100 });
    await sleep(450);
    await broker.close();
    expect(bus.sessionReportsHeld).toBe(0);
    expect(await bus.sessionConsumer('none').fetch(10, 50)).toEqual([]);
  });

  describe.skipIf(!natsOk)('on NATS JetStream', () => {
    const streams: string[] = [];
    afterAll(async () => {
      const nc = await connect({ servers: NATS_URL });
      const jsm = await nc.jetstreamManager();
      for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
      await nc.close();
    });

    it('holds reports while the bus is unreachable and delivers each once when it returns, with no gap', async () => {
      const u = new URL(NATS_URL);
      const proxy = await tcpProxy({ host: u.hostname, port: Number(u.port || 4222) });
      cleanup.push(() => proxy.close());
      const stream = uniqueName('PULSE_SESS');
      streams.push(stream);
      const prefix = uniqueName('sess');
      const bus = await JetStreamBus.connect({ servers: `nats://127.0.0.1:${proxy.port}`, stream, subjectPrefix: prefix, publishTimeoutMs: 300 });
      cleanup.push(() => bus.close());
      const reader = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: prefix });
      cleanup.push(() => reader.close());
      const { broker, directory, url } = await start(bus, { sessionReportMs: 200 });
      const device = new TestDevice(NETWORK);
      directory.set(device.id);
      const start0 = Date.now();
      const c = await connectDevice(url, device);
      const consumer = reader.sessionConsumer('sessions');
      const early = await readReports(consumer, (rs) => rs.length >= 1);
      proxy.cut();
      await sleep(900); // several report windows pass while the bus is unreachable
      proxy.restore();
      const late = await readReports(consumer, (rs) => rs.some((r) => r.from > start0 + 1_500), 20_000);
      await c.endAsync();
      const all = [...early, ...late];
      const ids = all.map((r) => sessionReportId(r));
      expect(new Set(ids).size).toBe(ids.length); // each report once, although its publish was retried
      expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
      for (let i = 1; i < all.length; i++) expect(all[i]!.from).toBe(all[i - 1]!.to); // no window lost
      const text = await broker.metrics.registry.getSingleMetricAsString('pulse_broker_session_reports_total');
      expect(Number(/outcome="retried"\} (\d+)/.exec(text)?.[1] ?? 0)).toBeGreaterThan(0);
    });
  });
});
