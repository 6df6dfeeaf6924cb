// One simulated device: its own key, persisted seq, real clock, one mqtt.js connection, and a
// behaviour (behaviours.ts) that decides what it publishes on each tick.
//
// Protocol points it follows (docs/protocol.md):
// - CONNECT: client id = username = device id; password = a fresh connect token (144 hex chars) on
//   every connect and reconnect, its timestamp strictly newer than the previous one (§Connect token).
// - Heartbeats on devices/<id>/heartbeat at QoS 1; rejections arrive as JSON {seq, status, reason,
//   message} on devices/<id>/events (§MQTT). The broker PUBACKs a rejected heartbeat too (so the
//   device does not resend it), which means a PUBACK alone does not say "accepted".
//
// What "acknowledged" means here (the outbox log, outbox-log.ts, issue 10 invariant A1): the broker
// PUBACKed the heartbeat AND did not reject it. Three rules make that knowable:
// 1. Subscribe first. The session is clean (MQTT-3.1.2-6: the broker forgets the subscription on
//    every disconnect), so on every connection the device subscribes to its events topic and sends
//    no heartbeat, not even a resend, before the SUBACK: a rejection published while the device has
//    no subscription is dropped by the broker. mqtt.js cannot be left to resend by itself: on a
//    reconnect it flushes its outgoing store first and renews subscriptions (`resubscribe`) only
//    afterwards, so the device keeps its unacknowledged heartbeats in its own queue instead.
// 2. Settle with a round trip. The edge broker publishes the rejection event before it lets the
//    PUBACK go, but Aedes writes a QoS 1 PUBACK at once and the event only in the check phase of
//    that event-loop turn (setImmediate in its deliverQoS), so the event normally arrives AFTER the
//    PUBACK, and often after PUBACKs of later heartbeats rejected in the same turn (16 or 17 times
//    for a stale backlog in sim-device.test.ts). So "a later packet" proves nothing: after a PUBACK
//    the device sends a PINGREQ and settles the PUBACKs that came before it when the matching
//    PINGRESP arrives. The broker can only read that PINGREQ in a later turn than the one that wrote
//    the PUBACK, after the event went out. Every PINGREQ gets one PINGRESP (MQTT-3.12.4-1), in
//    order on the connection, so counting both keeps mqtt.js's keepalive pings from being taken for
//    the device's. (A rejection that itself runs in a check phase puts its event one turn later; a
//    very fast round trip could still overtake that, and the outbox's second line covers it.)
//    A PUBACK whose connection dies before its round trip is an unknown outcome: the heartbeat is
//    sent again on the next connection, where a stored one is a harmless duplicate (bus Nats-Msg-Id
//    window, ingest HB_DUPLICATE) and a rejected one is rejected again, this time with its event.
// 3. An event without a seq (`"seq": null`: the payload was too short or malformed for the broker to
//    read one, docs/broker.md) could be about any heartbeat whose outcome is still open on the
//    connection: none of those is logged.
// A persistent session (clean = 0) would not remove rule 1: the session lives in one broker process,
// and a device that reconnects to another one (behind a load balancer, after a broker restart) gets
// session present = 0 and must subscribe again before resending anyway.
//
// Deliberately invalid messages are never resent: after a lost connection they are dropped, as a
// misbehaving device would not resend its bad message forever.
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

/**
 * Where one heartbeat stands. `queued`: waiting for a connection whose events subscription is
 * acknowledged; `wire`: published on the current connection, no PUBACK yet; `acked`: PUBACKed on the
 * current connection, outcome not settled yet (rule 2); `done`: outcome known (or given up).
 */
type SendState = 'queued' | 'wire' | 'acked' | 'done';

type Sent = {
  readonly seq: bigint;
  readonly topic: string;
  readonly payload: Buffer;
  /** True when the sender believes the network must accept and store it. */
  readonly valid: boolean;
  /**
   * Goes to the outbox when settled as accepted. False for burst heartbeats: they are valid, but a
   * burst is meant to be rate limited.
   */
  readonly audit: boolean;
  state: SendState;
  /** Bumped on every (re)send; a callback from an earlier attempt is ignored. */
  attempt: number;
  messageId: number | undefined;
  /** Written to the socket at least once (counted as sent then, not when queued). */
  wire: boolean;
  /** PUBACKed at least once (counted as acknowledged once). */
  everAcked: boolean;
  /** Number of the inbound packet that carried its PUBACK (rule 2). */
  pubackAt: number;
  rejected: string | undefined;
  /** A seq-less rejection arrived while its outcome was open (rule 3). */
  ambiguous: string | undefined;
  /** Written to the outbox log as acknowledged. */
  logged: boolean;
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
  /** The events subscription is acknowledged on the current connection (rule 1). */
  private ready = false;
  /** Connections opened so far; a SUBACK for an older one is ignored. */
  private connection = 0;
  /** Packets received from the broker so far, over all connections (rule 2). */
  private inbound = 0;
  /** PINGREQs written and PINGRESPs received on the current connection (rule 2). */
  private pingsSent = 0;
  private pongs = 0;
  /** The device's own PINGREQs: number k settles the PUBACKs received up to packet `upTo`. */
  private barriers: { k: number; upTo: number }[] = [];
  private stopped = false;
  private connectCalled = false;
  /** Every send whose outcome is open, in the order they were made (seq order for valid ones). */
  private readonly open = new Set<Sent>();
  /** Waiting for a ready connection, in order. */
  private queue: Sent[] = [];
  /** PUBACKed on the current connection, waiting for a round trip (rule 2); in PUBACK order. */
  private unsettled: Sent[] = [];
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
      // The device subscribes itself on every connection, before sending (rule 1).
      resubscribe: false,
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
    // 'packetreceive' is emitted before mqtt.js handles a packet (rule 2 numbers them).
    client.on('packetreceive', (packet: Packet) => {
      this.inbound += 1;
      if (packet.cmd === 'pingresp') this.onPong();
    });
    client.on('message', (topic, payload) => {
      if (topic === eventsTopic(this.deviceId)) this.onEventMessage(payload);
    });
    client.on('packetsend', (packet: Packet) => {
      if (packet.cmd === 'pingreq') this.pingsSent += 1;
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
    this.ready = false;
    this.pingsSent = 0;
    this.pongs = 0;
    this.barriers = [];
    const connection = ++this.connection;
    this.d.stats.connected(this.d.behaviour);
    const client = this.client!;
    client.subscribe(eventsTopic(this.deviceId), { qos: 1 }, (error) => {
      if (connection !== this.connection || !this.isConnected) return;
      if (error) {
        // Refused (SUBACK 0x80) or the connection went away. Without the subscription no outcome is
        // knowable, so nothing is sent; the next connection tries again.
        if ((error as Error & { code?: number }).code !== undefined) this.d.onError(this.deviceId, new Error(`events subscription refused: ${error.message}`));
        return;
      }
      this.ready = true;
      this.flush();
    });
  }

  private onClose(): void {
    if (this.isConnected) {
      this.isConnected = false;
      this.d.stats.disconnected(this.d.behaviour);
    }
    this.ready = false;
    // Take back from mqtt.js everything this connection did not settle (it would otherwise resend
    // it before the events subscription on the next connection, rule 1), then decide per send.
    for (const s of this.open) {
      if (s.state === 'wire') {
        s.attempt += 1; // its 'Message removed' callback is not an outcome
        if (s.messageId !== undefined) this.client?.removeOutgoingMessage(s.messageId);
        s.messageId = undefined;
      }
      if (s.state !== 'wire' && s.state !== 'acked') continue;
      // Known rejection: final. Invalid on purpose: not resent. Otherwise the outcome is unknown
      // (no PUBACK, or a PUBACK not yet settled): send it again after the next SUBACK.
      if (s.rejected !== undefined || !s.valid) this.finish(s);
      else {
        s.state = 'queued';
        s.ambiguous = undefined;
      }
    }
    this.unsettled = [];
    this.barriers = [];
    this.queue = [...this.open].filter((s) => s.state === 'queued');
  }

  private finish(s: Sent): void {
    s.state = 'done';
    this.open.delete(s);
  }

  /** Start a round trip covering every PUBACK received so far, unless one is already on its way. */
  private barrier(): void {
    // One at a time: PUBACKs that arrive meanwhile get the next one, started by onPong.
    if (!this.ready || this.unsettled.length === 0 || this.barriers.length > 0) return;
    const before = this.pingsSent;
    this.client!.sendPing();
    // Written synchronously while connected ('packetsend' counted it); otherwise no barrier.
    if (this.pingsSent === before + 1) this.barriers.push({ k: this.pingsSent, upTo: this.inbound });
  }

  private onPong(): void {
    this.pongs += 1;
    while (this.barriers.length > 0 && this.barriers[0]!.k <= this.pongs) {
      const { upTo } = this.barriers.shift()!;
      while (this.unsettled.length > 0 && this.unsettled[0]!.pubackAt <= upTo) this.settle(this.unsettled.shift()!);
    }
    this.barrier(); // PUBACKs that arrived while the round trip was out
  }

  private settle(s: Sent): void {
    if (s.state !== 'acked') return; // already finished (rejected) or taken back
    this.finish(s);
    if (!s.valid || s.rejected !== undefined || s.ambiguous !== undefined) return;
    if (s.audit) {
      this.d.outbox?.acknowledged(this.deviceId, s.seq, s.payload);
      s.logged = true;
    }
    this.history.push(s);
    if (this.history.length > 8) this.history.shift();
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
      if (ev.seq !== undefined) {
        // Attribute the event to the newest unattributed send of that seq: for a replay that is the
        // replayed copy, never the original the network already stored.
        const s = this.recent
          .get(ev.seq)
          ?.slice()
          .reverse()
          .find((x) => x.rejected === undefined);
        if (s !== undefined) {
          s.rejected = ev.reason;
          if (s.state === 'acked') this.finish(s);
          // Logged already: rule 2's round trip came back before the event (see its caveat). The
          // second outbox line takes the heartbeat out of the audit again.
          if (s.logged) this.d.outbox?.rejectedAfterAck(this.deviceId, s.seq, ev.reason);
        }
      } else {
        // No seq (rule 3): any send whose outcome is open on this connection may be the one.
        for (const s of this.open) if (s.state === 'wire' || s.state === 'acked') s.ambiguous = ev.reason;
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
    const s: Sent = {
      seq,
      topic,
      payload: buf,
      valid,
      audit,
      state: 'queued',
      attempt: 0,
      messageId: undefined,
      wire: false,
      everAcked: false,
      pubackAt: 0,
      rejected: undefined,
      ambiguous: undefined,
      logged: false,
    };
    this.remember(s);
    this.byPayload.set(buf, s);
    this.open.add(s);
    this.queue.push(s);
    this.flush();
  }

  /** Send what is queued, in order, once the events subscription is in place (rule 1). */
  private flush(): void {
    while (this.ready && this.queue.length > 0) {
      const s = this.queue.shift()!;
      if (s.state === 'queued') this.send(s);
    }
  }

  private send(s: Sent): void {
    const attempt = ++s.attempt;
    s.state = 'wire';
    this.byPayload.set(s.payload, s); // a replay reuses an older heartbeat's buffer
    this.client!.publish(s.topic, s.payload, { qos: 1 }, (error) => {
      if (attempt !== s.attempt || s.state !== 'wire') return;
      if (error) {
        // mqtt.js gave up on it without a PUBACK (not taken back by onClose): like a lost connection.
        if (this.stopped || !s.valid) this.finish(s);
        else {
          s.state = 'queued';
          this.queue.push(s);
          this.flush();
        }
        return;
      }
      s.state = 'acked';
      s.messageId = undefined;
      if (!s.everAcked) {
        s.everAcked = true;
        this.d.stats.acknowledged(this.d.behaviour);
      }
      if (s.rejected !== undefined) return this.finish(s); // the event came first: settled
      s.pubackAt = this.inbound; // 'packetreceive' for this PUBACK has just run
      this.unsettled.push(s);
      this.barrier();
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
    if (this.open.size >= t.maxPending) return;
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

  /** Valid heartbeats whose outcome is still open. */
  private validOpen(): number {
    let n = 0;
    for (const s of this.open) if (s.valid) n++;
    return n;
  }

  private publishInvalid(m: { seq: bigint; payload: Uint8Array }): void {
    if (this.stopped) return;
    this.publish(heartbeatTopic(this.deviceId), m.payload, m.seq, false);
  }

  /** Stop ticking and disconnect, giving open heartbeats up to `drainMs` to be settled. */
  async stop(drainMs = 2000): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const client = this.client;
    // Never connected (stopped before its start delay): mqtt.js has no stream to end.
    if (client === undefined || !this.connectCalled) return;
    // Let in-flight heartbeats be PUBACKed and settled (they go to the outbox), then close. A device
    // that is reconnecting gets the same grace: it resends after the next SUBACK.
    const deadline = Date.now() + drainMs;
    while (this.validOpen() > 0 && Date.now() < deadline && (this.isConnected || this.offlineUntilTick < this.tickNo))
      await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((resolve) => client.end(true, () => resolve()));
  }
}
