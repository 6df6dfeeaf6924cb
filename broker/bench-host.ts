// Child-process host for broker benchmarks (bench/broker.ts, bench/connections.ts): runs either the
// Pulse broker (verification, JetStream or in-memory bus) or bare Aedes with no hooks, in its own
// process so the load generator and the broker do not share an event loop, and so RSS and CPU time
// are the broker's alone. Driven over IPC: start → {port}; rss → {rss}; cpu → {cpuMicros} (user +
// system time of the whole process, threadpool included); stop → exit.
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { startBroker, type BrokerHandle } from './broker.ts';
import { brokerConfig } from './config.ts';
import { MemoryDirectory } from './memory-directory.ts';
import { MemoryBus } from '../bus/memory.ts';
import { JetStreamBus } from '../bus/jetstream.ts';
import type { Bus } from '../bus/bus.ts';

export type HostStart = {
  readonly cmd: 'start';
  readonly mode: 'pulse' | 'bare';
  readonly bus: 'jetstream' | 'memory';
  readonly deviceIds: readonly string[];
  readonly networkId: number;
  readonly natsUrl: string;
  readonly stream: string;
  readonly prefix: string;
};
type HostMessage = HostStart | { readonly cmd: 'rss' } | { readonly cmd: 'cpu' } | { readonly cmd: 'stop' };

let pulse: BrokerHandle | undefined;
let bus: Bus | undefined;
let bare: { aedes: Aedes; server: Server } | undefined;
let stream: string | undefined;

function send(m: unknown): void {
  process.send?.(m);
}

async function start(m: HostStart): Promise<number> {
  if (m.mode === 'bare') {
    const aedes = await Aedes.createBroker();
    const server = createServer({ noDelay: true }, (s) => {
      s.setNoDelay(true);
      aedes.handle(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    bare = { aedes, server };
    return (server.address() as { port: number }).port;
  }
  const directory = new MemoryDirectory();
  for (const id of m.deviceIds) directory.set(id);
  if (m.bus === 'jetstream') {
    stream = m.stream;
    bus = await JetStreamBus.connect({ servers: m.natsUrl, stream: m.stream, subjectPrefix: m.prefix, name: 'pulse-bench' });
  } else {
    bus = new MemoryBus({ maxMessages: 10_000_000 });
  }
  pulse = await startBroker(
    brokerConfig({
      mqttHost: '127.0.0.1',
      mqttPort: 0,
      wsPort: undefined,
      metricsPort: undefined,
      networkId: m.networkId,
      // The load generator signs every heartbeat before the timed run; allow for that time.
      skewMs: 600_000,
      publishRate: 1e6,
      publishBurst: 1_000_000,
      connectRate: 1e6,
      connectBurst: 1_000_000,
      maxConnections: 1_000_000,
      connectTimeoutMs: 120_000,
    }),
    { bus, directory },
  );
  return pulse.addresses.mqtt!.port;
}

async function stop(): Promise<void> {
  await pulse?.close();
  if (bus instanceof JetStreamBus && stream !== undefined) await bus.jsm.streams.delete(stream).catch(() => undefined);
  await bus?.close();
  if (bare !== undefined) {
    bare.server.close();
    await new Promise<void>((r) => bare!.aedes.close(() => r()));
  }
}

process.on('message', (raw: unknown) => {
  const m = raw as HostMessage;
  void (async () => {
    try {
      if (m.cmd === 'start') send({ port: await start(m) });
      else if (m.cmd === 'rss') {
        const g = (globalThis as { gc?: () => void }).gc;
        g?.();
        await new Promise((r) => setTimeout(r, 50));
        g?.();
        send({ rss: process.memoryUsage().rss });
      } else if (m.cmd === 'cpu') {
        const u = process.cpuUsage();
        send({ cpuMicros: u.user + u.system });
      } else if (m.cmd === 'stop') {
        await stop();
        send({ stopped: true });
        process.exit(0);
      }
    } catch (e) {
      send({ error: (e as Error).message });
    }
  })();
});
send({ hello: true });
