// `pulse broker`: the MQTT edge broker (docs/broker.md). Options come from broker/config.ts (flag,
// environment variable, default); the device directory is the oracle database (DATABASE_URL) or a
// devices file; the bus is NATS JetStream (or in-memory). SIGINT/SIGTERM drain in-flight hand-offs
// before exiting.
import { PulseError } from '../../shared/errors.ts';
import type { DeviceDirectory } from '../../shared/device-directory.ts';
import type { Bus } from '../../bus/bus.ts';
import { brokerConfigSection, loadBrokerConfig, type BrokerConfig } from '../../broker/config.ts';
import { startBroker } from '../../broker/broker.ts';
import { jsonLogger, type Logger } from '../../broker/log.ts';
import { watchDevicesFile } from '../../broker/devices-file.ts';
import { configHelp, parseConfigFlags } from '../config-args.ts';

export const summary = 'MQTT edge broker: device auth, ACLs, limits, edge verification, durable hand-off to the bus';

const SECTIONS = [brokerConfigSection];

async function openDirectory(cfg: BrokerConfig, log: Logger): Promise<{ directory: DeviceDirectory; close(): Promise<void> }> {
  if (cfg.devicesFile !== '') {
    const w = watchDevicesFile(cfg.devicesFile, cfg.directoryTtlMs, (e) => log.warn('devices file not reloaded', { error: e }));
    return { directory: w.directory, close: async () => w.stop() };
  }
  if (cfg.databaseUrl === '') throw new PulseError('CLI_USAGE', 'the broker needs a device directory: --database-url (the oracle database, DATABASE_URL) or --devices-file');
  // Loaded on demand: the oracle store pulls in pg.
  const { openStore } = await import('../../oracle/store/open-store.ts');
  const { StoreDeviceDirectory } = await import('../../oracle/registry/store-device-directory.ts');
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: '', maxConnections: 5 });
  return { directory: new StoreDeviceDirectory(store), close: () => store.close() };
}

async function openBus(cfg: BrokerConfig, log: Logger): Promise<Bus> {
  if (cfg.bus === 'memory') {
    log.warn('in-memory bus: heartbeats stay in this process (use --bus jetstream with an oracle in another process)');
    const { MemoryBus } = await import('../../bus/memory.ts');
    return new MemoryBus();
  }
  const { JetStreamBus } = await import('../../bus/jetstream.ts');
  log.info('connecting to NATS', { servers: cfg.natsUrl, stream: cfg.streamName });
  return JetStreamBus.connect({
    servers: cfg.natsUrl,
    stream: cfg.streamName,
    subjectPrefix: cfg.subjectPrefix,
    name: 'pulse-broker',
    onStatus: (s) => log.info('nats status', { type: s.type, data: typeof s.data === 'string' || typeof s.data === 'number' ? s.data : undefined }),
  });
}

export async function run(argv: string[]): Promise<number> {
  // Flags and --help from the config declaration (cli/config-args.ts), like every service command.
  const { flags, help } = parseConfigFlags(argv, SECTIONS);
  if (help) {
    console.log(configHelp('Usage: pulse broker [options]', SECTIONS, ['Ports accept `off`. Logs are JSON lines on stderr. See docs/broker.md.']));
    return 0;
  }
  const cfg = loadBrokerConfig(flags);
  const log = jsonLogger('broker', cfg.logLevel);
  const dir = await openDirectory(cfg, log);
  let bus: Bus;
  try {
    bus = await openBus(cfg, log);
  } catch (e) {
    await dir.close();
    throw e;
  }
  let handle;
  try {
    handle = await startBroker(cfg, { bus, directory: dir.directory, logger: log });
  } catch (e) {
    await bus.close().catch(() => undefined);
    await dir.close();
    throw e;
  }
  const broker = handle;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      log.info('shutting down', { signal });
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await broker.close();
  await bus.close().catch((e: unknown) => log.warn('bus close failed', { error: e }));
  await dir.close().catch((e: unknown) => log.warn('directory close failed', { error: e }));
  return 0;
}
