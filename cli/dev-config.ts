// `pulse dev` / `npm start` configuration: the whole network in one process on embedded defaults
// (issue 8 §2). Ports default away from the standard MQTT port because a system Mosquitto often
// holds 1883.
import { defineConfig, loadConfig, parse, type ConfigOf } from '../shared/config-schema.ts';

export const devConfigSection = defineConfig('Development network (`pulse dev`, `npm start`)', {
  mqttPort: { flag: 'mqtt-port', env: 'PULSE_DEV_MQTT_PORT', default: 1884, doc: 'MQTT over TCP port of the embedded broker.', parse: parse.port },
  wsPort: { flag: 'ws-port', env: 'PULSE_DEV_WS_PORT', default: 8083, doc: 'MQTT over WebSocket port of the embedded broker.', parse: parse.port },
  httpPort: { flag: 'http-port', env: 'PULSE_DEV_HTTP_PORT', default: 8080, doc: 'Oracle API and dashboard port.', parse: parse.port },
  rpcPort: { flag: 'rpc-port', env: 'PULSE_DEV_RPC_PORT', default: 8545, doc: 'JSON-RPC port of the local anvil chain.', parse: parse.port },
  host: { flag: 'host', env: 'PULSE_DEV_HOST', default: '127.0.0.1', doc: 'Address every listener binds to.', parse: parse.string },
  dataDir: { flag: 'data-dir', env: 'PULSE_DEV_DATA_DIR', default: './data', doc: 'Where the database (PGlite), chain state, bundles, keys and simulator state live; a restart resumes from it.', parse: parse.string },
  devices: { flag: 'devices', env: 'PULSE_DEV_DEVICES', default: 50, doc: 'Simulated fleet size (0 for none).', parse: parse.int(0, 100_000) },
  epochSeconds: { flag: 'epoch-seconds', env: 'PULSE_DEV_EPOCH_SECONDS', default: 60, doc: 'Epoch length in seconds; a multiple of the slot length.', parse: parse.int(1, 86_400) },
  slotSeconds: { flag: 'slot-seconds', env: 'PULSE_DEV_SLOT_SECONDS', default: 5, doc: 'Slot length (heartbeat interval) in seconds for the dev network (the protocol default is 60 s).', parse: parse.int(1, 3600) },
  graceSeconds: { flag: 'grace-seconds', env: 'PULSE_DEV_GRACE_SECONDS', default: 5, doc: 'How long after an epoch ends late heartbeats are still taken before it closes.', parse: parse.int(0, 3600) },
  challengeSeconds: { flag: 'challenge-seconds', env: 'PULSE_DEV_CHALLENGE_SECONDS', default: 30, doc: 'Challenge period of posted roots on the dev chain.', parse: parse.int(0, 30 * 86_400) },
  operatorToken: { flag: 'operator-token', env: 'PULSE_DEV_OPERATOR_TOKEN', default: '', doc: 'Bearer token for operator endpoints; empty generates one and keeps it in <data-dir>/operator-token.', parse: parse.string, defaultDoc: '(generated)' },
  networkId: { flag: 'network-id', env: 'PULSE_DEV_NETWORK_ID', default: 1, doc: 'Network id of the dev network.', parse: parse.int(0, 0xffffffff) },
  mix: { flag: 'mix', env: 'PULSE_DEV_MIX', default: 'honest=70,flaky=10,offline=6,skew=3,replay=3,forge=3,impersonate=2,oversized=1,burst=1,inflate=1', doc: 'Behaviour mix of the simulated fleet (docs/simulator.md).', parse: parse.string },
  quiet: { flag: 'quiet', env: 'PULSE_DEV_QUIET', default: false, doc: 'No live status line; only the startup summary and errors.', parse: parse.bool },
});

export type DevConfig = ConfigOf<typeof devConfigSection.schema>;

export function loadDevConfig(flags: Readonly<Record<string, string | undefined>> = {}, env: Readonly<Record<string, string | undefined>> = process.env): DevConfig {
  return loadConfig(devConfigSection, flags, env);
}
