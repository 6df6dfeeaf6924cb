// `startFleet`: the simulated fleet as a library (issue 8 §1), used by `pulse sim`, `pulse dev`, the
// end-to-end tests and the fault suite. Each device gets its own key and persisted seq (sim-state.ts),
// is onboarded through the registry API when one is given, then runs its behaviour on a real clock.
import { randomBytes } from 'node:crypto';
import { assignBehaviours, DEFAULT_MIX, type BehaviourName, type Mix } from './behaviours.ts';
import { StatsRecorder, type FleetStats } from './fleet-stats.ts';
import { OutboxLog } from './outbox-log.ts';
import { parseBrokerUrl, type TransportOptions } from './mqtt-transport.ts';
import { onboardAll, type OnboardOptions } from './onboard.ts';
import { SeqCounter, SimState } from './sim-state.ts';
import { SimDevice, type DeviceEvent, type DeviceTuning } from './sim-device.ts';
import { signerFor } from '../shared/protocol/signer.ts';
import { DEFAULT_SLOT_INTERVAL_MS } from '../shared/protocol/constants.ts';

export type FleetOptions = {
  readonly devices: number;
  /** mqtt://host:port or mqtts://host:port */
  readonly brokerUrl: string;
  readonly networkId: number;
  /** Heartbeat interval (default 60 s, the protocol's slot interval). */
  readonly intervalMs?: number;
  readonly mix?: Mix;
  /** Directory for keys and seqs; omit for an in-memory fleet (new keys every run). */
  readonly stateDir?: string;
  readonly signer?: 'native' | 'noble';
  readonly onboard?: OnboardOptions;
  /** Append every acknowledged heartbeat here (outbox-log.ts). */
  readonly outboxPath?: string;
  /** Seed for the behaviour randomness (default: random). */
  readonly seed?: number;
  /** New connections per second while the fleet starts (default 100), below brokers' connect limits. */
  readonly connectRate?: number;
  /** Seqs reserved per state-file write (default 100). */
  readonly seqLease?: number;
  readonly transport?: TransportOptions;
  /** Source addresses, given to devices round-robin (default: the OS's choice). */
  readonly localAddresses?: readonly string[];
  readonly tuning?: Partial<DeviceTuning>;
  /** Every message a device receives on its events topic. */
  readonly onEvent?: (deviceId: string, behaviour: BehaviourName, event: DeviceEvent) => void;
  /** Unexpected device-level errors (socket errors are normal for flaky devices and are passed too). */
  readonly onError?: (deviceId: string, error: Error) => void;
};

export type FleetDevice = { readonly index: number; readonly deviceId: string; readonly behaviour: BehaviourName };

export type FleetHandle = {
  readonly devices: readonly FleetDevice[];
  readonly networkId: number;
  stats(): FleetStats;
  /** Stop every device (in-flight heartbeats get `drainMs` to be acknowledged), flush state and outbox. */
  stop(drainMs?: number): Promise<void>;
};

export const DEFAULT_TUNING: DeviceTuning = Object.freeze({
  intervalMs: DEFAULT_SLOT_INTERVAL_MS,
  skewMs: 120_000,
  misbehaveRate: 0.5,
  burstSize: 30,
  flakyRate: 0.2,
  offlineChance: 0.1,
  offlineTicks: 5,
  reconnectPeriodMs: 2000,
  keepaliveSeconds: 60,
  maxPending: 100,
});

/** mulberry32: a small seeded PRNG so a fleet's misbehaviour pattern is reproducible from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function localAddressFor(options: FleetOptions, i: number): TransportOptions {
  const list = options.localAddresses ?? [];
  const addr = list.length > 0 ? list[i % list.length] : undefined;
  return { ...options.transport, ...(addr !== undefined ? { localAddress: addr } : {}) };
}

/** The device whose topic device i targets when impersonating: the next one (or a stranger's id). */
function victimOf(records: readonly { deviceId: string }[], i: number): string {
  const other = records[(i + 1) % records.length]!;
  return other.deviceId !== records[i]!.deviceId ? other.deviceId : 'f'.repeat(64);
}

export async function startFleet(options: FleetOptions): Promise<FleetHandle> {
  if (!Number.isInteger(options.devices) || options.devices < 0) throw new RangeError('devices must be a non-negative integer');
  const broker = parseBrokerUrl(options.brokerUrl);
  const tuning: DeviceTuning = { ...DEFAULT_TUNING, ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}), ...options.tuning };
  const state = await SimState.open(options.stateDir, options.networkId, options.devices);
  const behaviours = assignBehaviours(options.mix ?? DEFAULT_MIX, options.devices);
  const stats = new StatsRecorder(options.devices);
  const outbox = options.outboxPath !== undefined ? new OutboxLog(options.outboxPath) : undefined;
  const random = seededRandom(options.seed ?? randomBytes(4).readUInt32BE(0));
  const lease = BigInt(options.seqLease ?? 100);

  const records = state.devices.slice(0, options.devices);
  const signers = records.map((r) => signerFor(r.secretKey, options.signer ?? 'native'));

  if (options.onboard !== undefined) {
    await onboardAll(options.onboard, options.networkId, state, options.devices, signers, (i, outcome) => {
      const b = behaviours[i]!;
      if (outcome.ok) stats.onboarded(b);
      else {
        // The device still runs: the broker will refuse it (TOKEN_UNKNOWN_DEVICE), which is what
        // an operator should see for a device whose onboarding failed.
        stats.onboardFailed(b, outcome.code);
        options.onError?.(state.devices[i]!.deviceId, new Error(`onboarding failed: ${outcome.code}: ${outcome.message}`));
      }
    });
  }

  const connectRate = options.connectRate ?? 100;
  const devices = records.map(
    (r, i) =>
      new SimDevice({
        index: i,
        record: r,
        behaviour: behaviours[i]!,
        seq: new SeqCounter(state, i, lease),
        sign: signers[i]!,
        networkId: options.networkId,
        broker,
        transport: localAddressFor(options, i),
        tuning,
        stats,
        outbox,
        victimId: victimOf(records, i),
        random,
        onEvent: options.onEvent,
        onError: options.onError ?? (() => undefined),
      }),
  );
  devices.forEach((d, i) => d.start(Math.floor((i * 1000) / connectRate)));

  let stopping: Promise<void> | undefined;
  return {
    devices: devices.map((d, i) => ({ index: i, deviceId: d.deviceId, behaviour: d.behaviour })),
    networkId: options.networkId,
    stats: () => stats.snapshot(),
    stop(drainMs = 2000) {
      stopping ??= (async () => {
        await Promise.all(devices.map((d) => d.stop(drainMs)));
        await state.close();
        await outbox?.close();
      })();
      return stopping;
    },
  };
}
