// What a simulated device writes to its outbox log (outbox-log.ts) when the broker rejects a
// heartbeat it also PUBACKs: the entry must mean "PUBACKed and not rejected" (issue 10, A1). The
// broker answers a rejected heartbeat with a PUBACK and an event on devices/<id>/events
// (docs/protocol.md §MQTT), so the device only knows the outcome if its events subscription is in
// place before the heartbeat goes out on that connection, and if the event reaches it.
//
// The first tests run the real edge broker (broker/broker.ts) on the in-memory bus behind a TCP
// front end that can cut the link; the bus is the ground truth ("stored"). The last one runs a bare
// Aedes whose publish hook loses the connection between a PUBACK and the rejection event, an ordering
// the edge broker produces only by bad luck.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig, type BrokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { MemoryBus } from '../bus/memory.ts';
import { TcpForwarder } from '../test/faults/harness/tcp-forwarder.ts';
import { toHex } from '../shared/hex.ts';
import { eventsTopic } from '../shared/protocol/topics.ts';
import { readOutbox } from './outbox-log.ts';
import { SimState } from './sim-state.ts';
import { startFleet, type FleetHandle } from './start-fleet.ts';
import { drainBus } from '../test/support/drain-bus.ts';

const NETWORK = 9;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pulse-simdev-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The edge broker on the memory bus, one registered device, and a TCP front end the device uses. */
async function edgeSetup(overrides: Partial<BrokerConfig>): Promise<{ dir: string; bus: MemoryBus; front: TcpForwarder; broker: BrokerHandle }> {
  const dir = await tempDir();
  const pre = await SimState.open(dir, NETWORK, 1);
  await pre.close();
  const directory = new MemoryDirectory();
  directory.set(pre.devices[0]!.deviceId);
  const bus = new MemoryBus();
  const broker = await startBroker(
    brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, tlsPort: undefined, wssPort: undefined, metricsPort: undefined, networkId: NETWORK, bus: 'memory', ...overrides }),
    { bus, directory },
  );
  cleanups.push(() => bus.close());
  cleanups.push(() => broker.close());
  const front = await TcpForwarder.start([{ host: '127.0.0.1', port: broker.addresses.mqtt!.port }]);
  cleanups.push(() => front.close());
  return { dir, bus, front, broker };
}

/**
 * Every outbox entry is on the bus with the very bytes the device signed (acknowledged ⊆ stored).
 * Returns the entries and how many lines took a logged heartbeat back (a rejection that arrived
 * after the device had settled it).
 */
/** One honest device sending every 100 ms, with an outbox log in `dir`; stopped after the test. */
async function oneHonestDevice(brokerUrl: string, dir: string, seed: number): Promise<{ fleet: FleetHandle; outboxPath: string }> {
  const outboxPath = join(dir, 'outbox.jsonl');
  const fleet = await startFleet({
    devices: 1, brokerUrl, networkId: NETWORK, intervalMs: 100, mix: { honest: 1 }, stateDir: dir, outboxPath, seed,
    tuning: { reconnectPeriodMs: 200, keepaliveSeconds: 5, maxPending: 400 },
  });
  cleanups.push(() => fleet.stop(0));
  return { fleet, outboxPath };
}

async function expectOutboxStored(outboxPath: string, bus: MemoryBus): Promise<{ entries: number; retracted: number }> {
  const onBus = new Map((await drainBus(bus, 'sim-device-test', 100)).map((m) => [`${m.deviceId}/${m.seq}`, toHex(m.raw)]));
  const text = await readFile(outboxPath, 'utf8');
  const outbox = readOutbox(text);
  const notStored = [...outbox.keys()].filter((k) => onBus.get(k) !== outbox.get(k)!.hex);
  expect(notStored, `outbox entries the broker never stored (of ${outbox.size})`).toEqual([]);
  return { entries: outbox.size, retracted: text.split('\n').filter((l) => l.includes('"rejected":')).length };
}

describe('SimDevice outbox: acknowledged means PUBACKed and not rejected', () => {
  it('a backlog resent after a link cut and rejected as stale is not logged (the events subscription comes first)', async () => {
    // A 1.5 s skew window and a 3 s cut: what the device queued early in the cut is stale when it
    // goes out again, and the broker PUBACKs it with HB_CLOCK_SKEW on the events topic.
    const { dir, bus, front } = await edgeSetup({ skewMs: 1_500, publishRate: 1_000, publishBurst: 10_000 });
    const { fleet, outboxPath } = await oneHonestDevice(`mqtt://${front.url}`, dir, 5);
    await until('10 acknowledged heartbeats', () => fleet.stats().acknowledged >= 10);
    front.cut();
    await new Promise((r) => setTimeout(r, 3_000));
    const ackedBeforeHeal = fleet.stats().acknowledged;
    front.heal();
    await until('the device to reconnect and be acknowledged again', () => fleet.stats().connects >= 2 && fleet.stats().acknowledged >= ackedBeforeHeal + 40);
    await fleet.stop(3_000);
    // The device learnt about the stale ones: the rejection events reached it.
    expect(fleet.stats().rejected['HB_CLOCK_SKEW'] ?? 0).toBeGreaterThan(0);
    const { entries, retracted } = await expectOutboxStored(outboxPath, bus);
    expect(entries).toBeGreaterThan(10);
    // Each event arrived before the device settled its heartbeat (the PINGREQ round trip after the
    // PUBACK), so no logged heartbeat had to be taken back. Settling on "the next packet" instead
    // took back 16 or 17 heartbeats per run here: Aedes can write later PUBACKs first.
    expect(retracted).toBe(0);
  });

  it('rate-limited heartbeats are not logged', async () => {
    // 2/s with a burst of 2 against a device sending 10/s: most heartbeats are PUBACKed and
    // rejected with HB_RATE_LIMITED.
    const { dir, bus, front } = await edgeSetup({ publishRate: 2, publishBurst: 2 });
    const { fleet, outboxPath } = await oneHonestDevice(`mqtt://${front.url}`, dir, 6);
    await until('30 rate-limited heartbeats', () => (fleet.stats().rejected['HB_RATE_LIMITED'] ?? 0) >= 30);
    await fleet.stop(3_000);
    expect((await expectOutboxStored(outboxPath, bus)).entries).toBeGreaterThan(0);
  });

  it('a PUBACK whose connection dies before the rejection event arrives is not taken as acceptance', async () => {
    // A bare Aedes with a scripted publish hook. Connection 1: the first heartbeat is PUBACKed, then
    // the connection drops before any event could follow (its event is lost with the session).
    // Later connections: that heartbeat is rejected (event, then PUBACK: the edge broker's order),
    // every other heartbeat is accepted. The device must not log the first one as acknowledged.
    const dir = await tempDir();
    const aedes = await Aedes.createBroker();
    const server: Server = createServer(aedes.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => aedes.close(() => r())));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const connectionOf = new WeakMap<Client, number>();
    let connections = 0;
    aedes.on('client', (c: Client) => connectionOf.set(c, ++connections));
    /** What the broker saw, in order: `<connection>:subscribe` or `<connection>:publish:<seq>`. */
    const seen: string[] = [];
    const accepted = new Set<string>();
    let victim: bigint | undefined;
    aedes.authorizeSubscribe = (client, sub, cb) => {
      seen.push(`${connectionOf.get(client!)}:subscribe`);
      cb(null, sub);
    };
    aedes.authorizePublish = (client, packet, cb) => {
      const conn = connectionOf.get(client!)!;
      const seq = (packet.payload as Buffer).readBigUInt64BE(38);
      seen.push(`${conn}:publish:${seq}`);
      const deviceId = client!.id;
      if (victim === undefined) {
        victim = seq;
        cb(null);
        // The PUBACK is written in cb; close before anything else can follow it.
        client!.conn.end();
        return;
      }
      if (seq === victim) {
        const event = Buffer.from(JSON.stringify({ seq: Number(seq), status: 'rejected', reason: 'HB_CLOCK_SKEW', message: 'stale' }));
        aedes.publish({ cmd: 'publish', topic: eventsTopic(deviceId), payload: event, qos: 1, retain: false, dup: false } as PublishPacket, () => undefined);
        packet.topic = 'rejected/nowhere';
        return cb(null);
      }
      accepted.add(`${deviceId}/${seq}`);
      cb(null);
    };
    const { fleet, outboxPath } = await oneHonestDevice(`mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, dir, 7);
    await until('the device to be back and acknowledged 10 times', () => connections >= 2 && accepted.size >= 10);
    await fleet.stop(3_000);
    // On every connection the events subscription came before the first heartbeat.
    for (let c = 1; c <= connections; c++) {
      const mine = seen.filter((s) => s.startsWith(`${c}:`));
      if (mine.some((s) => s.includes(':publish:'))) expect(mine[0], `connection ${c}: ${mine.slice(0, 3).join(', ')}`).toBe(`${c}:subscribe`);
    }
    // The victim was sent again after the cut (its outcome was unknown), and rejected then.
    expect(seen.filter((s) => s.endsWith(`:publish:${victim}`)).length).toBeGreaterThanOrEqual(2);
    expect(fleet.stats().rejected['HB_CLOCK_SKEW']).toBeGreaterThanOrEqual(1);
    const outbox = readOutbox(await readFile(outboxPath, 'utf8'));
    const deviceId = fleet.devices[0]!.deviceId;
    expect(outbox.has(`${deviceId}/${victim}`), 'the rejected heartbeat is not in the outbox').toBe(false);
    expect([...outbox.keys()].filter((k) => !accepted.has(k)), 'only accepted heartbeats are in the outbox').toEqual([]);
    expect(outbox.size).toBeGreaterThanOrEqual(5);
  });
});
