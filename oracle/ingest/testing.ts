// Test fixtures for ingest and registry suites: real device keys, real signed heartbeats and
// identity messages (shared/ codecs and the native signer), registration through the Registry.
import { randomSecretKey } from '../../shared/crypto/noble.ts';
import { deviceKeyFromSecret, type DeviceKey } from '../../shared/protocol/keyfile.ts';
import { signerFor } from '../../shared/protocol/signer.ts';
import { signHeartbeat, type Metric } from '../../shared/protocol/heartbeat.ts';
import type { BusHeartbeat } from '../../bus/bus.ts';
import type { Registry } from '../registry/registry.ts';

export const TEST_NETWORK = 7;

export type TestDevice = DeviceKey & { sign: (m: Uint8Array) => Uint8Array };

export function newDevice(): TestDevice {
  const key = deviceKeyFromSecret(randomSecretKey());
  return { ...key, sign: signerFor(key.secretKey) };
}

/** A signed heartbeat as the broker would put it on the bus. */
export function heartbeatMessage(
  device: TestDevice,
  seq: number | bigint,
  opts: { ts?: number; receivedAt?: number; metrics?: Metric[]; networkId?: number } = {},
): BusHeartbeat {
  const receivedAt = opts.receivedAt ?? Date.now();
  const raw = signHeartbeat(
    {
      networkId: opts.networkId ?? TEST_NETWORK,
      publicKey: device.publicKey,
      seq: BigInt(seq),
      timestamp: BigInt(opts.ts ?? receivedAt),
      metrics: opts.metrics ?? [{ id: 1, value: 10n }],
    },
    device.sign,
  );
  return { deviceId: device.deviceId, seq: BigInt(seq), raw, receivedAt };
}

/** Register devices through the operator path; throws if the registry refuses. */
export async function registerDevices(registry: Registry, devices: readonly TestDevice[]): Promise<void> {
  for (const d of devices) {
    const r = await registry.addDevice({ id: d.deviceId, owner: `0x${'11'.repeat(20)}` });
    if (!r.ok) throw new Error(`register ${d.deviceId}: ${r.code} ${r.message}`);
  }
}
