// One simulated device: its own key, persisted seq, real clock, one mqtt.js connection, and a
// behaviour (behaviours.ts) that decides what it publishes on each tick.
//
// Protocol points it follows (docs/protocol.md):
// - CONNECT: client id = username = device id; password = a fresh connect token (144 hex chars) on
//   every connect and reconnect, its timestamp strictly newer than the previous one (§Connect token).
// - Heartbeats on devices/<id>/heartbeat at QoS 1; rejections arrive as JSON {seq, status, reason,
//   message} on devices/<id>/events (§MQTT).
// - An unacknowledged QoS 1 heartbeat is resent after a reconnect (mqtt.js keeps it in its outgoing
//   store, MQTT-4.4.0-1), so a flaky link delays heartbeats but does not lose them. Deliberately
//   invalid messages are removed from that store once the broker has rejected them or dropped the
//   connection, so a misbehaving device does not resend its bad message forever.
import type { MqttClient, IClientOptions, Packet } from 'mqtt';
import { BEHAVIOUR_INFO, type BehaviourName } from './behaviours.ts';
import type { StatsRecorder } from './fleet-stats.ts';
import type { OutboxLog } from './outbox-log.ts';
import { createClient, type BrokerAddress, type TransportOptions } from './mqtt-transport.ts';
import type { SeqCounter, SimDeviceRecord } from './sim-state.ts';
import { signHeartbeat, type Metric } from '../shared/protocol/heartbeat.ts';
import { connectPassword } from '../shared/protocol/connect-token.ts';
import { eventsTopic, heartbeatTopic } from '../shared/protocol/topics.ts';
import type { Signer } from '../shared/protocol/signer.ts';

/** A rejection as published by the broker on devices/<id>/events. */
export type DeviceEvent = { readonly seq: string | undefined; readonly status: string; readonly reason: string; readonly message: string };

export type DeviceTuning = {
  readonly intervalMs: number;
  /** Clock offset of `skew` and `drift` devices (default 120 s, well outside the 30 s window). */
  readonly skewMs: number;
  /** Chance per tick that a misbehaving device misbehaves instead of sending an honest heartbeat. */
  readonly misbehaveRate: number;
  /** Heartbeats per burst (`burst`). */
  readonly burstSize: number;
  /** Chance per tick that a `flaky` device's connection drops right after publishing. */
  readonly flakyRate: number;
  /** Chance per tick that an `offline` device goes dark, and for how many ticks. */
  readonly offlineChance: number;
  readonly offlineTicks: number;
  readonly reconnectPeriodMs: number;
  readonly keepaliveSeconds: number;
  /** Stop queueing new heartbeats while this many are unacknowledged (a device's buffer is finite). */
  readonly maxPending: number;
};

export type DeviceDeps = {
  readonly index: number;
  readonly record: SimDeviceRecord;
  readonly behaviour: BehaviourName;
  readonly seq: SeqCounter;
  readonly sign: Signer;
  readonly networkId: number;
  readonly broker: BrokerAddress;
  readonly transport: TransportOptions;
  readonly tuning: DeviceTuning;
  readonly stats: StatsRecorder;
  readonly outbox: OutboxLog | undefined;
  /** Device id whose topic an `impersonate` device publishes on. */
  readonly victimId: string;
  readonly random: () => number;
  readonly onEvent: ((deviceId: string, behaviour: BehaviourName, event: DeviceEvent) => void) | undefined;
  readonly onError: (deviceId: string, error: Error) => void;
};

type Sent = {
  readonly seq: bigint;
  readonly payload: Buffer;
  /** True when the sender believes the network must accept and store it. */
  readonly valid: boolean;
  /**
   * Goes to the outbox when acknowledged. False for burst heartbeats: they are valid, but the
   * broker's rate-limit rejection event carries no seq, so the device cannot tell which of an
   * acknowledged burst were stored.
   */
  readonly audit: boolean;
  messageId: number | undefined;
  /** Written to the socket at least once (counted as sent then, not when queued). */
  wire: boolean;
  acked: boolean;
  rejected: string | undefined;
};

const RECENT_LIMIT = 512;
// Above the broker's default 1 KiB payload limit (HB_OVERSIZED), below its frame guard (limit +
// 1 KiB), which closes the connection without a reason instead.
const OVERSIZED_BYTES = 1500;

export class SimDevice {
  readonly deviceId: string;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private tickNo = 0;
  private offlineUntilTick = -1;
  private lastTokenTs = 0;
  private isConnected = false;
  private subscribed = false;
  private stopped = false;
  private connectCalled = false;
  private pending = 0;
  /** Recent sends by seq (a replay adds a second entry for an old seq). */
  private readonly recent = new Map<string, Sent[]>();
  private readonly byPayload = new WeakMap<Buffer, Sent>();
  /** Acknowledged valid heartbeats, oldest first, for `replay`. */
  private readonly history: Sent[] = [];

  constructor(private readonly d: DeviceDeps) {
    this.deviceId = d.record.deviceId;
  }

  get behaviour(): BehaviourName {
    return this.d.behaviour;
  }

  /** Device clock (ms): `skew` devices are off by skewMs for everything, including tokens. */
  private clock(): number {
    return Date.now() + (this.d.behaviour === 'skew' ? this.d.tuning.skewMs : 0);
  }

  /** Heartbeat timestamp clock: `drift` devices connect with a good clock but stamp heartbeats off. */
  private heartbeatClock(): number {
    return Date.now() + (this.d.behaviour === 'skew' || this.d.behaviour === 'drift' ? this.d.tuning.skewMs : 0);
  }

  private freshPassword(): string {
    // A token must be newer than the last one accepted for the device (§Connect token), so two
    // connects within one millisecond still get distinct, increasing timestamps.
    const ts = Math.max(this.clock(), this.lastTokenTs + 1);
    this.lastTokenTs = ts;
    return connectPassword(this.d.networkId, this.d.record.publicKey, BigInt(ts), this.d.sign);
  }

  /** Connect after `delayMs` and start ticking with a random phase inside the interval. */
  start(delayMs: number): void {
    const opts: IClientOptions = {
      clientId: this.deviceId,
      username: this.deviceId,
      password: '',
      protocolVersion: 4,
      clean: true,
      keepalive: this.d.tuning.keepaliveSeconds,
      reconnectPeriod: this.d.tuning.reconnectPeriodMs,
      reconnectOnConnackError: true,
      connectTimeout: 10_000,
      resubscribe: true,
    };
    const client = createClient(this.d.broker, opts, this.d.transport);
    this.client = client;
    // 'reconnect' fires before every automatic or manual reconnect: sign a fresh token for it.
    client.on('reconnect', () => {
      client.options.password = this.freshPassword();
    });
    client.on('connect', () => this.onConnect());
    client.on('close', () => this.onClose());
    client.on('error', (e: Error & { code?: number }) => {
      if (typeof e.code === 'number' && /Connection refused/.test(e.message)) this.d.stats.refused(this.d.behaviour, e.code);
      else if (!this.stopped) this.d.onError(this.deviceId, e);
    });
    client.on('message', (topic, payload) => {
      if (topic === eventsTopic(this.deviceId)) this.onEventMessage(payload);
    });
    client.on('packetsend', (packet: Packet) => {
      if (packet.cmd === 'publish' && Buffer.isBuffer(packet.payload)) {
        const s = this.byPayload.get(packet.payload);
        if (s === undefined) return;
        if (packet.messageId !== undefined) s.messageId = packet.messageId;
        if (!s.wire) {
          s.wire = true;
          this.d.stats.sent(this.d.behaviour);
        }
      }
    });
    const phase = Math.floor(this.d.random() * this.d.tuning.intervalMs);
    this.timer = setTimeout(() => {
      if (this.stopped) return;
      client.options.password = this.freshPassword();
      this.connectCalled = true;
      client.connect();
      this.schedule(Date.now() + phase);
    }, delayMs);
  }

  private schedule(at: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.tick().catch((e: unknown) => this.d.onError(this.deviceId, e as Error));
      this.schedule(at + this.d.tuning.intervalMs);
    }, Math.max(0, at - Date.now()));
  }

  private onConnect(): void {
    this.isConnected = true;
    this.d.stats.connected(this.d.behaviour);
    if (!this.subscribed) {
      this.subscribed = true;
      this.client!.subscribe(eventsTopic(this.deviceId), { qos: 1 });
    }
  }

  private onClose(): void {
    if (this.isConnected) {
      this.isConnected = false;
      this.d.stats.disconnected(this.d.behaviour);
    }
    // The broker may close the connection over an invalid message instead of answering it; do not
    // resend what was invalid on purpose.
    for (const list of this.recent.values()) for (const s of list) if (!s.valid && !s.acked) this.dropOutgoing(s);
  }

  private dropOutgoing(s: Sent): void {
    if (s.messageId !== undefined && this.client !== undefined) {
      const id = s.messageId;
      s.messageId = undefined;
      this.client.removeOutgoingMessage(id);
    }
  }

  private onEventMessage(payload: Buffer): void {
    let ev: DeviceEvent;
    try {
      const j = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      const seq = typeof j['seq'] === 'number' || typeof j['seq'] === 'string' || typeof j['seq'] === 'bigint' ? String(j['seq']) : undefined;
      ev = {
        seq,
        status: typeof j['status'] === 'string' ? j['status'] : 'rejected',
        reason: typeof j['reason'] === 'string' ? j['reason'] : 'UNKNOWN',
        message: typeof j['message'] === 'string' ? j['message'] : '',
      };
    } catch {
      ev = { seq: undefined, status: 'unparsable', reason: 'UNPARSABLE_EVENT', message: payload.toString('utf8').slice(0, 200) };
    }
    if (ev.status === 'rejected') {
      this.d.stats.rejected(this.d.behaviour, ev.reason);
      const list = ev.seq !== undefined ? this.recent.get(ev.seq) : undefined;
      // Attribute the event to the newest unattributed send of that seq: for a replay that is the
      // replayed copy, never the original the network already stored.
      const s = list?.slice().reverse().find((x) => x.rejected === undefined);
      if (s !== undefined) {
        s.rejected = ev.reason;
        if (!s.valid) this.dropOutgoing(s);
        if (s.audit && s.acked) this.d.outbox?.rejectedAfterAck(this.deviceId, s.seq, ev.reason);
      }
    }
    this.d.onEvent?.(this.deviceId, this.d.behaviour, ev);
  }

  private remember(s: Sent): void {
    const key = s.seq.toString();
    const list = this.recent.get(key);
    if (list === undefined) this.recent.set(key, [s]);
    else list.push(s);
    while (this.recent.size > RECENT_LIMIT) {
      const oldest = this.recent.keys().next().value as string;
      this.recent.delete(oldest);
    }
  }

  private publish(topic: string, payload: Uint8Array, seq: bigint, valid: boolean, audit = valid): void {
    const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const s: Sent = { seq, payload: buf, valid, audit, messageId: undefined, wire: false, acked: false, rejected: undefined };
    this.remember(s);
    this.byPayload.set(buf, s);
    this.pending += 1;
    this.client!.publish(topic, buf, { qos: 1 }, (error) => {
      this.pending -= 1;
      if (error) return; // removed on purpose, or the client was ended while it was in flight
      s.acked = true;
      this.d.stats.acknowledged(this.d.behaviour);
      if (s.valid && s.rejected === undefined) {
        if (s.audit) this.d.outbox?.acknowledged(this.deviceId, s.seq, s.payload);
        this.history.push(s);
        if (this.history.length > 8) this.history.shift();
      }
    });
  }

  private metrics(inflate: boolean): Metric[] {
    // Simulated metric ids: 1 = bytes relayed, 2 = seconds of service, both "since the previous
    // heartbeat" as the protocol requires (docs/protocol.md §Heartbeat).
    const relayed = inflate ? 1_000_000_000_000_000n : BigInt(100_000 + Math.floor(this.d.random() * 900_000));
    return [
      { id: 1, value: relayed },
      { id: 2, value: BigInt(Math.round(this.d.tuning.intervalMs / 1000)) },
    ];
  }

  private async signed(inflate = false, timestamp = this.heartbeatClock()): Promise<{ seq: bigint; payload: Uint8Array }> {
    const seq = await this.d.seq.next();
    const payload = signHeartbeat(
      { networkId: this.d.networkId, publicKey: this.d.record.publicKey, seq, timestamp: BigInt(timestamp), metrics: this.metrics(inflate) },
      this.d.sign,
    );
    return { seq, payload };
  }

  private async honest(inflate = false, audit = true): Promise<void> {
    const { seq, payload } = await this.signed(inflate);
    if (this.stopped) return;
    this.publish(heartbeatTopic(this.deviceId), payload, seq, true, audit);
  }

  /** One tick of the device's behaviour. Exposed for tests that drive devices without timers. */
  async tick(): Promise<void> {
    if (this.stopped || this.client === undefined) return;
    const n = this.tickNo++;
    const b = this.d.behaviour;
    const t = this.d.tuning;
    if (b === 'offline') {
      if (n < this.offlineUntilTick) return;
      if (n === this.offlineUntilTick) {
        this.client.options.password = this.freshPassword();
        this.client.reconnect();
      } else if (this.d.random() < t.offlineChance) {
        this.offlineUntilTick = n + t.offlineTicks;
        this.client.end(true);
        return;
      }
    }
    // A device's buffer is finite: while the broker refuses or cannot be reached, stop piling up.
    if (this.pending >= t.maxPending) return;
    const misbehave = BEHAVIOUR_INFO[b].expect.outcome === 'rejected' && this.d.random() < t.misbehaveRate;
    if (!misbehave) {
      await this.honest(b === 'inflate');
      if (b === 'flaky' && this.isConnected && this.d.random() < t.flakyRate) this.client.stream.destroy();
      return;
    }
    switch (b) {
      case 'skew':
      case 'drift':
        // Both stamp heartbeats with the offset clock; `skew` never gets past CONNECT.
        return this.publishInvalid(await this.signed());
      case 'forge': {
        const { seq, payload } = await this.signed();
        // Flip one bit of R: the signature no longer verifies (RFC 8032 §5.1.7). Flipping R rather
        // than S keeps S < L, so the reason is HB_BAD_SIGNATURE, not HB_NON_CANONICAL_SIGNATURE.
        const at = payload.length - 64;
        payload[at] = payload[at]! ^ 0x01;
        return this.publishInvalid({ seq, payload });
      }
      case 'impersonate': {
        // The victim's key in the payload, signed with our own key (we cannot sign for it), sent on
        // our own topic: the receiver sees a payload key that is not the authenticated device
        // (docs/protocol.md §MQTT) before it even checks the signature.
        const seq = await this.d.seq.next();
        const victimKey = Buffer.from(this.d.victimId, 'hex');
        const payload = signHeartbeat(
          { networkId: this.d.networkId, publicKey: victimKey, seq, timestamp: BigInt(this.heartbeatClock()), metrics: this.metrics(false) },
          this.d.sign,
        );
        return this.publishInvalid({ seq, payload });
      }
      case 'oversized': {
        const { seq, payload } = await this.signed();
        const big = new Uint8Array(OVERSIZED_BYTES);
        big.set(payload, 0);
        return this.publishInvalid({ seq, payload: big });
      }
      case 'replay': {
        const old = this.history.find((s) => s.seq < this.d.seq.current);
        if (old === undefined) return this.honest(); // nothing older acknowledged yet
        this.publish(heartbeatTopic(this.deviceId), old.payload, old.seq, false);
        return;
      }
      case 'burst': {
        for (let i = 0; i < t.burstSize && !this.stopped; i++) await this.honest(false, false);
        return;
      }
      case 'honest':
      case 'flaky':
      case 'offline':
      case 'inflate':
        return this.honest(b === 'inflate');
    }
  }

  /** Valid heartbeats still waiting for their PUBACK. */
  private validInFlight(): number {
    let n = 0;
    for (const list of this.recent.values()) for (const s of list) if (s.valid && !s.acked && s.rejected === undefined) n++;
    return n;
  }

  private publishInvalid(m: { seq: bigint; payload: Uint8Array }): void {
    if (this.stopped) return;
    this.publish(heartbeatTopic(this.deviceId), m.payload, m.seq, false);
  }

  /** Stop ticking and disconnect, giving in-flight messages up to `drainMs` to be acknowledged. */
  async stop(drainMs = 2000): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const client = this.client;
    // Never connected (stopped before its start delay): mqtt.js has no stream to end.
    if (client === undefined || !this.connectCalled) return;
    // Let acknowledgements for in-flight heartbeats arrive (they go to the outbox), then close. A
    // device that is reconnecting gets the same grace: mqtt.js resends after the reconnect.
    const deadline = Date.now() + drainMs;
    while (this.validInFlight() > 0 && Date.now() < deadline && (this.isConnected || this.offlineUntilTick < this.tickNo))
      await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((resolve) => client.end(true, () => resolve()));
  }
}
