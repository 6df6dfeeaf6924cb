// The simulated fleet against the real edge broker (broker/broker.ts startBroker) on a real socket,
// with the in-memory bus behind it: honest devices are acknowledged, every misbehaviour meets the
// outcome its behaviour declares (behaviours.ts), and the outbox log holds exactly the heartbeats
// the bus received, each once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { MemoryBus } from '../bus/memory.ts';
import { BEHAVIOURS, BEHAVIOUR_INFO, type BehaviourName } from '../device-sim/behaviours.ts';
import { SimState } from '../device-sim/sim-state.ts';
import { startFleet, type FleetHandle } from '../device-sim/start-fleet.ts';
import { readOutbox } from '../device-sim/outbox-log.ts';
import { emptyCounters, type FleetStats } from '../device-sim/fleet-stats.ts';
import { toHex } from '../shared/hex.ts';
import { drainBus } from './support/drain-bus.ts';

const NETWORK = 7;

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('pulse sim fleet against the edge broker', () => {
  let dir: string;
  let bus: MemoryBus;
  let directory: MemoryDirectory;
  let broker: BrokerHandle;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pulse-sim-'));
    bus = new MemoryBus();
    directory = new MemoryDirectory();
    broker = await startBroker(
      brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, tlsPort: undefined, wssPort: undefined, metricsPort: undefined, networkId: NETWORK, bus: 'memory' }),
      { bus, directory },
    );
    url = `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`;
  });

  afterAll(async () => {
    await broker?.close();
    await bus?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('each behaviour meets its expected outcome; the outbox matches what the bus holds', async () => {
    // One device per behaviour. Keys are created first and registered, as an operator would.
    const mix = Object.fromEntries(BEHAVIOURS.map((b) => [b, 1]));
    const pre = await SimState.open(dir, NETWORK, BEHAVIOURS.length);
    for (const d of pre.devices) directory.set(d.deviceId);
    const outboxPath = join(dir, 'outbox.jsonl');
    const events: { behaviour: BehaviourName; reason: string }[] = [];
    const errors: string[] = [];
    const fleet: FleetHandle = await startFleet({
      devices: BEHAVIOURS.length,
      brokerUrl: url,
      networkId: NETWORK,
      intervalMs: 1000,
      mix,
      stateDir: dir,
      outboxPath,
      seed: 42,
      connectRate: 50,
      seqLease: 5,
      tuning: { misbehaveRate: 1, flakyRate: 0.5, offlineChance: 0.5, offlineTicks: 2, burstSize: 30, reconnectPeriodMs: 300 },
      onEvent: (_id, behaviour, ev) => events.push({ behaviour, reason: ev.reason }),
      onError: (id, e) => errors.push(`${id.slice(0, 8)}: ${e.message}`),
    });
    expect(fleet.devices.map((d) => d.behaviour).sort()).toEqual([...BEHAVIOURS].sort());

    const s = () => fleet.stats();
    const per = (b: BehaviourName) => s().byBehaviour[b] ?? emptyCounters();
    const edgeBehaviours = BEHAVIOURS.filter((b) => {
      const e = BEHAVIOUR_INFO[b].expect;
      return e.outcome === 'rejected' && e.stage === 'edge';
    });
    try {
      await until('every edge misbehaviour to be rejected with its reason', () =>
        edgeBehaviours.every((b) => {
          const e = BEHAVIOUR_INFO[b].expect;
          return e.outcome === 'rejected' && (per(b).rejected[e.reason] ?? 0) > 0;
        }),
      );
      await until('honest, flaky, offline, inflate and replay devices to be acknowledged several times', () =>
        (['honest', 'flaky', 'offline', 'inflate', 'replay'] as const).every((b) => per(b).acknowledged >= 3),
      );
      await until('the skewed device to be refused at CONNECT', () => Object.values(per('skew').refused).reduce((a, b) => a + b, 0) > 0);
      await until('the replaying device to resend an old heartbeat', () => per('replay').sent > per('replay').acknowledged || per('replay').sent >= 4);
    } finally {
      await fleet.stop(3000);
    }
    const final: FleetStats = fleet.stats();

    // Devices that only send valid heartbeats are never rejected.
    for (const b of ['honest', 'flaky', 'offline', 'inflate', 'replay'] as const) expect(final.byBehaviour[b]!.rejected, b).toEqual({});
    // Each edge misbehaviour is rejected only with its own reason (burst: some heartbeats pass).
    for (const b of edgeBehaviours) {
      const e = BEHAVIOUR_INFO[b].expect;
      if (e.outcome !== 'rejected') continue;
      expect(Object.keys(final.byBehaviour[b]!.rejected), b).toEqual([e.reason]);
    }
    // The skewed device never got a session: CONNACK 4 (bad user name or password) every time.
    expect(final.byBehaviour.skew!.connects).toBe(0);
    expect(Object.keys(final.byBehaviour.skew!.refused)).toEqual(['4']);
    expect(final.byBehaviour.flaky!.connects).toBeGreaterThan(1); // it did drop and come back
    expect(final.connected).toBe(0);
    expect(events.every((e) => edgeBehaviours.includes(e.behaviour))).toBe(true);

    // Bus: each (device, seq) at most once (a replayed heartbeat is acknowledged but dropped as a
    // duplicate, never stored twice); outbox entries are exactly the audited heartbeats the bus holds.
    const onBus = await drainBus(bus, 'sim-test', 200);
    const keys = onBus.map((m) => `${m.deviceId}/${m.seq}`);
    expect(new Set(keys).size).toBe(keys.length);
    // The replaying device was acknowledged more often than it has distinct heartbeats stored.
    const replayId = fleet.devices.find((d) => d.behaviour === 'replay')!.deviceId;
    expect(final.byBehaviour.replay!.acknowledged).toBeGreaterThan(onBus.filter((m) => m.deviceId === replayId).length);
    if (process.env['SIM_TEST_DEBUG']) console.log(JSON.stringify(final, null, 1));
    const byKey = new Map(onBus.map((m) => [`${m.deviceId}/${m.seq}`, toHex(m.raw)]));
    const outbox = readOutbox(await readFile(outboxPath, 'utf8'));
    expect(outbox.size).toBeGreaterThan(10);
    for (const [key, entry] of outbox) expect(byKey.get(key), `outbox entry ${key} is on the bus byte for byte`).toBe(entry.hex);
    // Devices that kept one session the whole run saw every PUBACK: the bus holds exactly their
    // outbox. A device whose connection dropped may have a heartbeat on the bus whose PUBACK it never
    // saw (acknowledged ⊆ stored is the invariant, not equality), so for those only the inclusion
    // above holds.
    for (const d of fleet.devices) {
      if (d.behaviour === 'burst' || d.behaviour === 'skew' || final.byBehaviour[d.behaviour]!.connects !== 1) continue;
      const onBusForDevice = onBus.filter((m) => m.deviceId === d.deviceId).length;
      const inOutbox = [...outbox.values()].filter((e) => e.deviceId === d.deviceId).length;
      expect(inOutbox, `${d.behaviour}: outbox = bus`).toBe(onBusForDevice);
    }
    expect(errors.filter((e) => !/ECONNRESET|EPIPE|disconnecting|Message removed/.test(e))).toEqual([]);
  });

  it('restarting from the state dir keeps the keys and continues above every seq used', async () => {
    const before = await SimState.open(dir, NETWORK, BEHAVIOURS.length);
    const reservedBefore = before.devices.map((d) => d.reservedSeq);
    const onBusBefore = new Map<string, bigint>();
    // Highest seq the bus has seen per device so far (the first test drained it; read the outbox).
    for (const e of readOutbox(await readFile(join(dir, 'outbox.jsonl'), 'utf8')).values()) {
      const prev = onBusBefore.get(e.deviceId) ?? 0n;
      if (e.seq > prev) onBusBefore.set(e.deviceId, e.seq);
    }
    const fleet = await startFleet({
      devices: 1,
      brokerUrl: url,
      networkId: NETWORK,
      intervalMs: 500,
      mix: { honest: 1 },
      stateDir: dir,
      seed: 1,
      seqLease: 5,
    });
    expect(fleet.devices[0]!.deviceId).toBe(before.devices[0]!.deviceId);
    try {
      await until('two acknowledged heartbeats', () => fleet.stats().acknowledged >= 2);
    } finally {
      await fleet.stop();
    }
    expect(fleet.stats().rejected).toEqual({});
    const after = await drainBus(bus, 'sim-test', 200);
    const mine = after.filter((m) => m.deviceId === fleet.devices[0]!.deviceId);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    for (const m of mine) {
      expect(m.seq > reservedBefore[0]!).toBe(true);
      expect(m.seq > (onBusBefore.get(m.deviceId) ?? 0n)).toBe(true);
    }
  });
});
