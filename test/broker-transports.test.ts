// Listeners and operations (docs/broker.md §Listeners, §Operations): MQTT over WebSocket, TLS and
// secure WebSocket; Mosquitto's command-line clients as an MQTT implementation nobody here wrote;
// PORT_IN_USE; /health and /metrics; graceful shutdown that drains in-flight hand-offs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { MemoryBus } from '../bus/memory.ts';
import type { Bus, BusConsumer, BusHeartbeat } from '../bus/bus.ts';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, connectDevice } from '../broker/test-kit.ts';
import { isPulseError } from '../shared/errors.ts';

const run = promisify(execFile);
const NETWORK = 41;

async function seqs(consumer: BusConsumer, waitMs = 1_000): Promise<bigint[]> {
  const ds = await consumer.fetch(100, waitMs);
  for (const d of ds) await d.ack();
  return ds.map((d) => d.message.seq);
}

describe('broker listeners and operations', () => {
  const bus = new MemoryBus();
  const directory = new MemoryDirectory();
  const device = new TestDevice(NETWORK);
  const dir = mkdtempSync(join(tmpdir(), 'pulse-broker-tls-'));
  let broker: BrokerHandle;
  let consumer: BusConsumer;

  beforeAll(async () => {
    directory.set(device.id);
    consumer = bus.consumer('transports');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    broker = await startBroker(
      brokerConfig({
        mqttHost: '127.0.0.1',
        wsHost: '127.0.0.1',
        metricsHost: '127.0.0.1',
        mqttPort: 0,
        wsPort: 0,
        tlsPort: 0,
        wssPort: 0,
        metricsPort: 0,
        tlsCert: join(dir, 'cert.pem'),
        tlsKey: join(dir, 'key.pem'),
        networkId: NETWORK,
        publishBurst: 100,
        serviceAccounts: new Map([['bridge', 'pw']]),
      }),
      { bus, directory },
    );
  });

  afterAll(async () => {
    await broker?.close();
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts devices over WebSocket, TLS and secure WebSocket', async () => {
    const ca = readFileSync(join(dir, 'cert.pem'));
    const urls = [
      `ws://127.0.0.1:${broker.addresses.ws!.port}/mqtt`,
      `mqtts://127.0.0.1:${broker.addresses.tls!.port}`,
      `wss://127.0.0.1:${broker.addresses.wss!.port}/mqtt`,
    ];
    for (const url of urls) {
      const c = await connectDevice(url, device, { ca, rejectUnauthorized: true });
      await c.publishAsync(device.topic, Buffer.from(device.heartbeat()), { qos: 1 });
      await c.endAsync();
      expect(await seqs(consumer), url).toEqual([device.seq]);
    }
  });

  it('works with mosquitto_pub and mosquitto_sub (QoS 1 heartbeat, rejection event)', async () => {
    const port = String(broker.addresses.mqtt!.port);
    const hbFile = join(dir, 'hb.bin');
    // A service account watches heartbeats and events with mosquitto_sub (-C: exit after 2 messages).
    // -d prints protocol events, so the test can wait for the SUBACK instead of sleeping.
    // stdbuf: stdout is a pipe here, and the debug lines would otherwise sit in stdio's buffer.
    const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-d', '-h', '127.0.0.1', '-p', port, '-i', 'bridge-1', '-u', 'bridge', '-P', 'pw', '-t', `devices/${device.id}/#`, '-C', '2', '-W', '30', '-F', '%t %x'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let subscribed: () => void = () => undefined;
    const subacked = new Promise<void>((r) => (subscribed = r));
    sub.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('received SUBACK')) subscribed();
    });
    const exited = new Promise<number | null>((r) => sub.once('exit', r));
    await subacked;
    const hb = device.heartbeat();
    writeFileSync(hbFile, hb);
    const pub = (file: string) => run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-i', device.id, '-u', device.id, '-P', device.password(), '-t', device.topic, '-q', '1', '-f', file]);
    await pub(hbFile); // exit status 0: the PUBACK came back
    expect(await seqs(consumer)).toEqual([device.seq]);
    const bad = device.heartbeat({ networkId: NETWORK + 1 });
    writeFileSync(hbFile, bad);
    await pub(hbFile);
    expect(await exited).toBe(0);
    // Keep the -F lines ("<topic> <hex>"), drop -d's protocol chatter.
    const lines = out.trim().split('\n').filter((l) => l.startsWith('devices/'));
    expect(lines[0]).toBe(`${device.topic} ${Buffer.from(hb).toString('hex')}`);
    const [topic, hex] = lines[1]!.split(' ');
    expect(topic).toBe(device.eventsTopic);
    expect(JSON.parse(Buffer.from(hex!, 'hex').toString())).toMatchObject({ seq: Number(device.seq), status: 'rejected', reason: 'HB_WRONG_NETWORK' });
    expect(await seqs(consumer, 100)).toEqual([]);
  });

  it('refuses mosquitto_pub with a replayed token', async () => {
    const pw = device.password();
    const args = (p: string) => ['-h', '127.0.0.1', '-p', String(broker.addresses.mqtt!.port), '-i', device.id, '-u', device.id, '-P', p, '-t', device.topic, '-q', '1', '-m', 'x'];
    await run('mosquitto_pub', args(pw));
    await expect(run('mosquitto_pub', args(pw))).rejects.toMatchObject({ code: expect.any(Number) });
    await seqs(consumer, 100);
  });

  it('serves /health and Prometheus /metrics', async () => {
    const base = `http://127.0.0.1:${broker.addresses.metrics!.port}`;
    const h = await fetch(`${base}/health`);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', busUp: true });
    const m = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['pulse_broker_connections', 'pulse_broker_connects_total', 'pulse_broker_messages_received_total', 'pulse_broker_messages_accepted_total', 'pulse_broker_messages_rejected_total', 'pulse_broker_bus_handoff_seconds_bucket', 'pulse_broker_process_resident_memory_bytes'])
      expect(m, name).toContain(name);
    expect(m).toMatch(/pulse_broker_messages_rejected_total\{reason="HB_WRONG_NETWORK"\} 1/);
    expect(m).toMatch(/pulse_broker_connects_total\{outcome="TOKEN_STALE"\} 1/);
  });

  it('names the port and the flag when a port is taken (PORT_IN_USE)', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const err = await startBroker(brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsHost: '127.0.0.1', wsPort: port, metricsPort: undefined }), { bus, directory }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isPulseError(err, 'PORT_IN_USE')).toBe(true);
      expect((err as Error).message).toContain(`port ${port}`);
      expect((err as Error).message).toContain('--ws-port');
    } finally {
      blocker.close();
    }
  });

  it('drains in-flight hand-offs on close: the PUBACK still goes out', async () => {
    // A bus that is slow to confirm (the real MemoryBus behind a delay), to hold a hand-off in flight.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const slow: Bus = {
      kind: 'memory',
      publisher: () => {
        const inner = bus.publisher();
        return { publish: async (m: BusHeartbeat) => (await gate, inner.publish(m)), close: () => inner.close() };
      },
      consumer: (n) => bus.consumer(n),
      sessionPublisher: () => bus.sessionPublisher(),
      sessionConsumer: (n) => bus.sessionConsumer(n),
      close: async () => undefined,
    };
    const b = await startBroker(brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, metricsPort: undefined, networkId: NETWORK, shutdownGraceMs: 5_000 }), { bus: slow, directory });
    const c = await connectDevice(`mqtt://127.0.0.1:${b.addresses.mqtt!.port}`, device);
    let acked = false;
    const pub = c.publishAsync(device.topic, Buffer.from(device.heartbeat()), { qos: 1 }).then(() => (acked = true));
    for (let i = 0; i < 100 && b.health().inFlight < 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect(b.health().inFlight).toBe(1);
    const closing = b.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(b.health().status).toBe('closing');
    release();
    await closing;
    await pub;
    expect(acked).toBe(true);
    expect(await seqs(consumer)).toEqual([device.seq]);
    await c.endAsync().catch(() => undefined);
  });
});
