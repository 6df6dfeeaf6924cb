// `pulse sim --load` against the real edge broker: pre-signed heartbeats over many connections spread
// across several 127.0.0.x source addresses. Checks counts and shapes only; speed is measured in
// bench/, never asserted here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { MemoryBus } from '../bus/memory.ts';
import { SimState } from '../device-sim/sim-state.ts';
import { defaultLocalAddresses, quantile, runLoad } from '../device-sim/load-run.ts';
import { createClient, parseBrokerUrl } from '../device-sim/mqtt-transport.ts';

const NETWORK = 3;

describe('load mode', () => {
  let dir: string;
  let bus: MemoryBus;
  let directory: MemoryDirectory;
  let broker: BrokerHandle;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pulse-sim-load-'));
    bus = new MemoryBus();
    directory = new MemoryDirectory();
    broker = await startBroker(
      brokerConfig({
        mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, tlsPort: undefined, wssPort: undefined, metricsPort: undefined,
        networkId: NETWORK, bus: 'memory', publishRate: 1000, publishBurst: 1000, connectRate: 10_000, connectBurst: 10_000,
      }),
      { bus, directory },
    );
  });

  afterAll(async () => {
    await broker?.close();
    await bus?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('sockets really leave from the requested source address', async () => {
    const remotes: string[] = [];
    const server = createServer((s: Socket) => {
      remotes.push(s.remoteAddress ?? '');
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    for (const localAddress of ['127.0.0.2', '127.0.0.3']) {
      const c = createClient(parseBrokerUrl(`mqtt://127.0.0.1:${port}`), { clientId: 'x', reconnectPeriod: 0 }, { localAddress });
      c.on('error', () => undefined);
      await new Promise<void>((r) => {
        c.once('close', () => r());
        c.connect();
      });
      c.end(true);
    }
    server.close();
    expect(remotes.map((a) => a.replace(/^::ffff:/, ''))).toEqual(['127.0.0.2', '127.0.0.3']);
  });

  it('sends every pre-signed heartbeat over many connections and reports PUBACK latency', async () => {
    const connections = 150;
    const pre = await SimState.open(dir, NETWORK, connections);
    for (const d of pre.devices) directory.set(d.deviceId);
    const lines: string[] = [];
    const report = await runLoad({
      brokerUrl: `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`,
      networkId: NETWORK,
      connections,
      messagesPerConnection: 4,
      window: 2,
      localAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
      stateDir: dir,
      log: (l) => lines.push(l),
    });
    expect(report.connectFailures).toEqual({});
    expect(report.connected).toBe(connections);
    expect(report.messages).toBe(600);
    expect(report.acknowledged).toBe(600);
    expect(report.rejected).toEqual({});
    expect(report.latencyMs.p50).toBeGreaterThan(0);
    expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p99);
    expect(report.latencyMs.p99).toBeLessThanOrEqual(report.latencyMs.max);
    expect(lines.join('\n')).toContain('from 3 source addresses');

    // Every heartbeat reached the bus once, and a second run continues above the first run's seqs.
    const consumer = bus.consumer('load-test');
    const seen = new Map<string, bigint[]>();
    for (;;) {
      const batch = await consumer.fetch(1000, 200);
      if (batch.length === 0) break;
      for (const d of batch) {
        seen.set(d.message.deviceId, [...(seen.get(d.message.deviceId) ?? []), d.message.seq]);
        await d.ack();
      }
    }
    expect(seen.size).toBe(connections);
    for (const seqs of seen.values()) expect(seqs.sort()).toEqual([1n, 2n, 3n, 4n]);

    const paced = await runLoad({ brokerUrl: `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, networkId: NETWORK, connections: 10, messagesPerConnection: 3, rate: 200, stateDir: dir });
    expect(paced.acknowledged).toBe(30);
    expect(paced.rejected).toEqual({});
    const again = await consumer.fetch(100, 500);
    expect(again).toHaveLength(30);
    for (const d of again) expect(d.message.seq > 4n).toBe(true);
    await consumer.close();
  });

  it('chooses loopback source addresses by connection count', () => {
    expect(defaultLocalAddresses('127.0.0.1', 5)).toEqual(['127.0.0.1']);
    expect(defaultLocalAddresses('localhost', 25_000)).toEqual(['127.0.0.1', '127.0.0.2', '127.0.0.3']);
    expect(defaultLocalAddresses('10.0.0.5', 25_000)).toEqual([]);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.99)).toBe(4);
  });
});
