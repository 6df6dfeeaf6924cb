// `pulse broker` configuration (CONTRIBUTING.md §Config): every key has a flag, an environment
// variable, a default and a doc line; docs/configuration.md is generated from this declaration.
import { defineConfig, loadConfig, parse, type ConfigOf } from '../shared/config-schema.ts';
import { DEFAULT_SKEW_MS } from '../shared/protocol/constants.ts';

/** A listener port, or `off` (undefined) to disable the listener. 0 picks a free port. */
function portOrOff(raw: string): number | undefined {
  if (/^(off|none|disabled)$/i.test(raw)) return undefined;
  return parse.port(raw);
}

/** `user:password` pairs, comma separated. Service accounts get read-only subscribe access. */
export function parseServiceAccounts(raw: string): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const item of parse.list(raw)) {
    const i = item.indexOf(':');
    if (i <= 0 || i === item.length - 1) throw new Error('expected user:password pairs separated by commas');
    const user = item.slice(0, i);
    // A service account must never be mistaken for a device (docs/broker.md §Service accounts).
    if (/^[0-9a-f]{64}$/.test(user)) throw new Error(`service account ${user} looks like a device id`);
    out.set(user, item.slice(i + 1));
  }
  return out;
}

function positive(raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error('must be a positive number');
  return n;
}

export const brokerConfigSection = defineConfig('Broker (`pulse broker`)', {
  mqttHost: { flag: 'mqtt-host', env: 'PULSE_MQTT_HOST', default: '0.0.0.0', doc: 'Address the MQTT/TCP listener binds to.', parse: parse.string },
  mqttPort: { flag: 'mqtt-port', env: 'PULSE_MQTT_PORT', default: 1883 as number | undefined, doc: 'MQTT over TCP port (`off` disables, 0 picks a free port).', parse: portOrOff },
  wsHost: { flag: 'ws-host', env: 'PULSE_WS_HOST', default: '0.0.0.0', doc: 'Address the MQTT-over-WebSocket listeners bind to.', parse: parse.string },
  wsPort: { flag: 'ws-port', env: 'PULSE_WS_PORT', default: 8083 as number | undefined, doc: 'MQTT over WebSocket port, path `/mqtt` or `/` (`off` disables).', parse: portOrOff },
  tlsPort: { flag: 'tls-port', env: 'PULSE_TLS_PORT', default: 8883 as number | undefined, doc: 'MQTT over TLS port; listens only when --tls-cert and --tls-key are set (`off` disables).', parse: portOrOff },
  wssPort: { flag: 'wss-port', env: 'PULSE_WSS_PORT', default: 8084 as number | undefined, doc: 'MQTT over secure WebSocket port; listens only when --tls-cert and --tls-key are set (`off` disables).', parse: portOrOff },
  tlsCert: { flag: 'tls-cert', env: 'PULSE_TLS_CERT', default: '', doc: 'PEM certificate (chain) file for the TLS and WSS listeners.', parse: parse.string, defaultDoc: '(none: TLS off)' },
  tlsKey: { flag: 'tls-key', env: 'PULSE_TLS_KEY', default: '', doc: 'PEM private key file for the TLS and WSS listeners.', parse: parse.string, defaultDoc: '(none: TLS off)' },
  networkId: { flag: 'network-id', env: 'PULSE_NETWORK_ID', default: 1, doc: 'Network id this broker serves; heartbeats and connect tokens for another network are refused.', parse: parse.int(0, 0xffffffff) },
  skewMs: { flag: 'skew', env: 'PULSE_SKEW', default: DEFAULT_SKEW_MS, doc: 'Allowed clock skew between device timestamps (heartbeats, connect tokens) and the broker clock.', parse: parse.durationMs, defaultDoc: '30s' },
  maxPayload: { flag: 'max-payload', env: 'PULSE_MAX_PAYLOAD', default: 1024, doc: 'Largest PUBLISH payload in bytes (HB_OVERSIZED above it); frames larger than this plus 1 KiB of headers close the connection before they are buffered.', parse: parse.int(128, 1 << 20) },
  publishRate: { flag: 'publish-rate', env: 'PULSE_PUBLISH_RATE', default: 1, doc: 'Sustained heartbeats per second per device (token bucket refill rate).', parse: positive },
  publishBurst: { flag: 'publish-burst', env: 'PULSE_PUBLISH_BURST', default: 20, doc: 'Token bucket size per device: heartbeats a device may send back to back (e.g. after reconnecting with a backlog).', parse: parse.int(1, 1_000_000) },
  maxConnections: { flag: 'max-connections', env: 'PULSE_MAX_CONNECTIONS', default: 50_000, doc: 'Open connections (all listeners) above which new connections are closed at once.', parse: parse.int(1, 10_000_000) },
  connectRate: { flag: 'connect-rate', env: 'PULSE_CONNECT_RATE', default: 20, doc: 'Sustained new connections per second per source address.', parse: positive },
  connectBurst: { flag: 'connect-burst', env: 'PULSE_CONNECT_BURST', default: 100, doc: 'New connections a source address may open back to back.', parse: parse.int(1, 10_000_000) },
  connectTimeoutMs: { flag: 'connect-timeout', env: 'PULSE_CONNECT_TIMEOUT', default: 10_000, doc: 'Time a new connection has to send CONNECT.', parse: parse.durationMs, defaultDoc: '10s' },
  directoryTtlMs: { flag: 'directory-ttl', env: 'PULSE_DIRECTORY_TTL', default: 5_000, doc: 'How long a device directory lookup is cached; also the interval at which changes (revocations, rotations) are polled.', parse: parse.durationMs, defaultDoc: '5s' },
  serviceAccounts: { flag: 'service-accounts', env: 'PULSE_SERVICE_ACCOUNTS', default: new Map<string, string>() as ReadonlyMap<string, string>, doc: 'Read-only MQTT accounts for dashboards and bridges, as user:password pairs separated by commas.', parse: parseServiceAccounts, defaultDoc: '(none)' },
  bus: { flag: 'bus', env: 'PULSE_BUS', default: 'jetstream' as 'jetstream' | 'memory', doc: '`jetstream` (NATS, production) or `memory` (in-process, for a single-process dev setup).', parse: (raw: string) => {
    if (raw !== 'jetstream' && raw !== 'memory') throw new Error('expected jetstream or memory');
    return raw;
  } },
  natsUrl: { flag: 'nats-url', env: 'NATS_URL', default: 'nats://127.0.0.1:4222', doc: 'NATS server(s), comma separated.', parse: parse.string },
  streamName: { flag: 'stream', env: 'PULSE_STREAM', default: 'PULSE_HEARTBEATS', doc: 'JetStream stream holding accepted heartbeats and broker session reports.', parse: parse.string },
  subjectPrefix: { flag: 'subject-prefix', env: 'PULSE_SUBJECT_PREFIX', default: 'pulse', doc: 'Subjects are `<prefix>.hb.<deviceId>`, one per device, and `<prefix>.sessions.<brokerId>` for session reports.', parse: parse.string },
  sessionReportMs: { flag: 'session-report-interval', env: 'PULSE_SESSION_REPORT_INTERVAL', default: 30_000, doc: 'How often the broker publishes the connected time of its device sessions (one report per interval, and one on shutdown); a crash loses at most one interval of it (connected time is informational, never paid).', parse: (raw: string) => {
    const ms = parse.durationMs(raw);
    if (ms < 100 || ms > 3_600_000) throw new Error('must be 100ms … 1h');
    return ms;
  }, defaultDoc: '30s' },
  databaseUrl: { flag: 'database-url', env: 'DATABASE_URL', default: '', doc: 'PostgreSQL holding the device registry (the oracle database); the broker reads devices and records connect tokens there.', parse: parse.string, defaultDoc: '(none)' },
  devicesFile: { flag: 'devices-file', env: 'PULSE_DEVICES_FILE', default: '', doc: 'Instead of the database: a JSON file of device entries (`[{deviceId, keyId?, status}]`), re-read on change. For single-broker dev setups; token replay protection is then per process.', parse: parse.string, defaultDoc: '(none)' },
  metricsHost: { flag: 'metrics-host', env: 'PULSE_BROKER_METRICS_HOST', default: '0.0.0.0', doc: 'Address of the /health and /metrics HTTP listener.', parse: parse.string },
  metricsPort: { flag: 'metrics-port', env: 'PULSE_BROKER_METRICS_PORT', default: 9464 as number | undefined, doc: 'Port of the /health and /metrics HTTP listener (`off` disables).', parse: portOrOff },
  shutdownGraceMs: { flag: 'shutdown-grace', env: 'PULSE_SHUTDOWN_GRACE', default: 10_000, doc: 'On SIGTERM/SIGINT, how long in-flight bus hand-offs may take before connections are closed.', parse: parse.durationMs, defaultDoc: '10s' },
  logLevel: { flag: 'log-level', env: 'PULSE_LOG_LEVEL', default: 'info' as 'debug' | 'info' | 'warn' | 'error', doc: 'debug, info, warn or error.', parse: (raw: string) => {
    if (raw !== 'debug' && raw !== 'info' && raw !== 'warn' && raw !== 'error') throw new Error('expected debug, info, warn or error');
    return raw;
  } },
});

export type BrokerConfig = ConfigOf<typeof brokerConfigSection.schema>;

/** Resolve the broker config: flag beats environment beats default. */
export function loadBrokerConfig(flags: Readonly<Record<string, string | undefined>> = {}, env: Readonly<Record<string, string | undefined>> = process.env): BrokerConfig {
  return loadConfig(brokerConfigSection, flags, env);
}

/** Defaults with overrides, for library use and tests (no environment). */
export function brokerConfig(overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return Object.freeze({ ...loadConfig(brokerConfigSection, {}, {}), ...overrides });
}
