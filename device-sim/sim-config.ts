// `pulse sim` configuration: every key with its flag, environment variable, default and doc line
// (shared/config-schema.ts), so docs/configuration.md can list them.
import { defineConfig, loadConfig, parse, type ConfigOf } from '../shared/config-schema.ts';
import { DEFAULT_SLOT_INTERVAL_MS } from '../shared/protocol/constants.ts';
import { parseMix, type Mix } from './behaviours.ts';

const fraction = (raw: string): number => {
  const n = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || n < 0 || n > 1) throw new Error('expected a number from 0 to 1');
  return n;
};
const positive = (raw: string): number => {
  const n = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || n <= 0) throw new Error('expected a positive number');
  return n;
};
const optionalPositive = (raw: string): number | undefined => (raw === 'off' ? undefined : positive(raw));

export const simConfigSection = defineConfig('Simulator (`pulse sim`)', {
  devices: { flag: 'devices', env: 'PULSE_SIM_DEVICES', default: 10, doc: 'Number of simulated devices (load mode: connections).', parse: parse.int(0, 1_000_000) },
  broker: { flag: 'broker', env: 'PULSE_SIM_BROKER', default: 'mqtt://127.0.0.1:1883', doc: 'Broker URL, mqtt://host:port or mqtts://host:port.', parse: parse.string },
  intervalMs: { flag: 'interval', env: 'PULSE_SIM_INTERVAL', default: DEFAULT_SLOT_INTERVAL_MS, doc: 'Heartbeat interval of each device.', parse: parse.durationMs, defaultDoc: '60s' },
  networkId: { flag: 'network', env: 'PULSE_NETWORK_ID', default: 1, doc: 'Network id signed into tokens, heartbeats and identity messages.', parse: parse.int(0, 0xffffffff) },
  mix: { flag: 'mix', env: 'PULSE_SIM_MIX', default: { honest: 100 } as Mix, doc: 'Behaviour shares, e.g. honest=80,flaky=10,forge=5,burst=5 (docs/simulator.md lists the behaviours).', parse: parseMix, defaultDoc: 'honest=100' },
  stateDir: { flag: 'state-dir', env: 'PULSE_SIM_STATE_DIR', default: 'data/sim', doc: 'Directory for device keys and seqs (one file per network); reused on restart.', parse: parse.string },
  api: { flag: 'api', env: 'PULSE_API_URL', default: '', doc: 'Oracle API base URL; when set, devices not yet onboarded are onboarded through POST /api/onboard.', parse: parse.string, defaultDoc: '(none: no onboarding)' },
  makerKey: { flag: 'maker-key', env: 'PULSE_SIM_MAKER_KEY', default: '', doc: 'Key file (pulse keys new) of the maker that signs device certificates; needed with --api.', parse: parse.string, defaultDoc: '(none)' },
  owners: { flag: 'owner', env: 'PULSE_SIM_OWNER', default: [] as string[], doc: 'Owner address(es) 0x…, comma separated, given to devices round-robin; needed with --api.', parse: parse.list, defaultDoc: '(none)' },
  model: { flag: 'model', env: 'PULSE_SIM_MODEL', default: 'pulse-sim', doc: 'Model name in maker certificates.', parse: parse.string },
  signer: { flag: 'signer', env: 'PULSE_SIM_SIGNER', default: 'native' as 'native' | 'noble', doc: '`native` (node:crypto, fast) or `noble` (@noble/ed25519, the portable reference path).', parse: (raw: string) => {
    if (raw !== 'native' && raw !== 'noble') throw new Error('expected native or noble');
    return raw;
  } },
  outbox: { flag: 'outbox', env: 'PULSE_SIM_OUTBOX', default: '', doc: 'Append every acknowledged heartbeat (deviceId, seq, hex) to this file, for the fault-suite auditor.', parse: parse.string, defaultDoc: '(none)' },
  seed: { flag: 'seed', env: 'PULSE_SIM_SEED', default: undefined as number | undefined, doc: 'Seed for the behaviour randomness, to repeat a run.', parse: parse.int(0, 0xffffffff), defaultDoc: '(random)' },
  connectRate: { flag: 'connect-rate', env: 'PULSE_SIM_CONNECT_RATE', default: 20, doc: 'New connections per second while the fleet starts (the broker limits connects per source address).', parse: positive },
  skewMs: { flag: 'skew-offset', env: 'PULSE_SIM_SKEW_OFFSET', default: 120_000, doc: 'Clock offset of `skew` and `drift` devices.', parse: parse.durationMs, defaultDoc: '120s' },
  misbehaveRate: { flag: 'misbehave-rate', env: 'PULSE_SIM_MISBEHAVE_RATE', default: 0.5, doc: 'Chance per interval that a misbehaving device misbehaves instead of sending a valid heartbeat.', parse: fraction },
  durationMs: { flag: 'duration', env: 'PULSE_SIM_DURATION', default: undefined as number | undefined, doc: 'Stop after this long (default: run until Ctrl-C).', parse: parse.durationMs, defaultDoc: '(until stopped)' },
  load: { flag: 'load', env: 'PULSE_SIM_LOAD', default: false, doc: 'Load mode: connect, send pre-signed heartbeats as fast as allowed, report rate and PUBACK latency, exit.', parse: parse.bool },
  messages: { flag: 'messages', env: 'PULSE_SIM_MESSAGES', default: 10, doc: 'Load mode: heartbeats per connection.', parse: parse.int(0, 1_000_000) },
  window: { flag: 'window', env: 'PULSE_SIM_WINDOW', default: 1, doc: 'Load mode without --rate: heartbeats in flight per connection.', parse: parse.int(1, 65_535) },
  rate: { flag: 'rate', env: 'PULSE_SIM_RATE', default: undefined as number | undefined, doc: 'Load mode: total heartbeats per second (paced); `off` sends as fast as the window allows.', parse: optionalPositive, defaultDoc: 'off' },
  localAddresses: { flag: 'local-addresses', env: 'PULSE_SIM_LOCAL_ADDRESSES', default: undefined as string[] | undefined, doc: 'Source addresses for connections, comma separated (default in load mode: one 127.0.0.x per 10,000 connections to a loopback broker).', parse: parse.list, defaultDoc: '(automatic)' },
  ca: { flag: 'ca', env: 'PULSE_SIM_CA', default: '', doc: 'PEM file of extra trusted CAs for mqtts://.', parse: parse.string, defaultDoc: '(system roots)' },
  insecure: { flag: 'insecure', env: 'PULSE_SIM_INSECURE', default: false, doc: 'mqtts:// without verifying the broker certificate (test setups only).', parse: parse.bool },
});

export type SimConfig = ConfigOf<typeof simConfigSection.schema>;

export function loadSimConfig(flags: Readonly<Record<string, string | undefined>> = {}, env: Readonly<Record<string, string | undefined>> = process.env): SimConfig {
  return loadConfig(simConfigSection, flags, env);
}
