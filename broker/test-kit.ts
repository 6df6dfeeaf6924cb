// Helpers for broker tests and benchmarks: device keys, connect tokens, signed heartbeats and an
// mqtt.js connection the way a device makes one (docs/protocol.md §Connect token, §Heartbeat).
import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { deviceKeyFromSecret, type DeviceKey } from '../shared/protocol/keyfile.ts';
import { signerFor, type Signer } from '../shared/protocol/signer.ts';
import { connectPassword } from '../shared/protocol/connect-token.ts';
import { signHeartbeat, type Metric } from '../shared/protocol/heartbeat.ts';

export class TestDevice {
  readonly key: DeviceKey;
  readonly sign: Signer;
  private lastTokenTs = 0n;
  seq = 0n;

  constructor(
    readonly networkId: number,
    secret: Uint8Array = randomBytes(32),
  ) {
    this.key = deviceKeyFromSecret(secret);
    this.sign = signerFor(secret);
  }

  get id(): string {
    return this.key.deviceId;
  }

  /** A fresh connect token (strictly newer than the previous one from this device). */
  password(nowMs: number = Date.now(), networkId = this.networkId): string {
    let ts = BigInt(Math.floor(nowMs));
    if (ts <= this.lastTokenTs) ts = this.lastTokenTs + 1n;
    this.lastTokenTs = ts;
    return connectPassword(networkId, this.key.publicKey, ts, this.sign);
  }

  /** A token for an arbitrary time and network (hostile tests); does not advance the freshness cursor. */
  passwordAt(timestampMs: number, networkId = this.networkId): string {
    return connectPassword(networkId, this.key.publicKey, BigInt(Math.floor(timestampMs)), this.sign);
  }

  /** The next signed heartbeat (seq + 1 unless given). */
  heartbeat(opts: { seq?: bigint; timestamp?: number; networkId?: number; metrics?: readonly Metric[] } = {}): Uint8Array {
    const seq = opts.seq ?? ++this.seq;
    return signHeartbeat(
      {
        networkId: opts.networkId ?? this.networkId,
        publicKey: this.key.publicKey,
        seq,
        timestamp: BigInt(Math.floor(opts.timestamp ?? Date.now())),
        metrics: opts.metrics ?? [{ id: 1, value: 42n }],
      },
      this.sign,
    );
  }

  get topic(): string {
    return `devices/${this.id}/heartbeat`;
  }

  get eventsTopic(): string {
    return `devices/${this.id}/events`;
  }
}

/** Connect like a device: client id = username = device id, password = token. Rejects on refusal. */
export async function connectDevice(url: string, device: TestDevice, extra: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    clientId: device.id,
    username: device.id,
    password: device.password(),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...extra,
  });
}

/** Resolve with the next message on `topic`, or reject after `ms`. */
export function nextMessage(client: MqttClient, topic: string, ms = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      client.off('message', on);
      reject(new Error(`no message on ${topic} within ${ms} ms`));
    }, ms);
    function on(t2: string, payload: Buffer) {
      if (t2 !== topic) return;
      clearTimeout(t);
      client.off('message', on);
      resolve(payload);
    }
    client.on('message', on);
  });
}

/** Resolve when the client's connection closes (or after `ms` with false). */
export function closed(client: MqttClient, ms = 5_000): Promise<boolean> {
  return new Promise((resolve) => {
    if (!client.connected && client.disconnected) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    client.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/**
 * A TCP proxy to a real service, so a test can cut the network between a component and the shared
 * NATS server (and restore it) without stopping the server other test files use.
 */
export async function tcpProxy(target: { host: string; port: number }): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  const live = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = netConnect(target);
    live.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    cut() {
      down = true;
      for (const s of live) s.destroy();
      live.clear();
    },
    restore() {
      down = false;
    },
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
