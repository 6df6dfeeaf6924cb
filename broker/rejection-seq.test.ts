// The seq in rejection events for the limits checked before edge verification (docs/broker.md
// §Heartbeats): HB_OVERSIZED and HB_RATE_LIMITED name the heartbeat when its seq can be read at its
// fixed offset and say `"seq": null` when it cannot, and a rate-limited heartbeat never reaches the
// signature check. Over a real socket with mqtt.js, on the in-memory bus.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { MemoryBus } from '../bus/memory.ts';
import { NativeVerifier } from '../shared/crypto/native.ts';
import type { SignatureCheck } from '../shared/crypto/signature-check.ts';
import { startBroker, type BrokerHandle } from './broker.ts';
import { brokerConfig } from './config.ts';
import { MemoryDirectory } from './memory-directory.ts';
import { TestDevice, connectDevice } from './test-kit.ts';

const NETWORK = 9;

/** The real native verifier, counting the signatures it is asked to check. */
class CountingVerifier extends NativeVerifier {
  calls = 0;
  override verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): SignatureCheck {
    this.calls++;
    return super.verify(signature, message, publicKey);
  }
  override verifyAsync(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<SignatureCheck> {
    this.calls++;
    return super.verifyAsync(signature, message, publicKey);
  }
}

type Event = { seq: unknown; status: string; reason: string; message: string };

describe('rejection events carry the seq of oversized and rate-limited heartbeats', () => {
  const bus = new MemoryBus();
  const consumer = bus.consumer('seq-test');
  const directory = new MemoryDirectory();
  const verifier = new CountingVerifier();
  const device = new TestDevice(NETWORK);
  const events: Event[] = [];
  /** Signature checks so far that were not for heartbeats (the connect token's). */
  let tokenChecks = 0;
  let broker: BrokerHandle;
  let client: MqttClient;

  /** Publish at QoS 1 (resolves on the PUBACK) and return the event it caused. */
  const rejectedWith = async (payload: Uint8Array): Promise<Event> => {
    const before = events.length;
    await client.publishAsync(device.topic, Buffer.from(payload), { qos: 1 });
    for (let i = 0; i < 200 && events.length === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(events.length).toBe(before + 1);
    return events[before]!;
  };

  beforeAll(async () => {
    directory.set(device.id);
    // A bucket of 3 that practically never refills, so the 4th heartbeat on is rate-limited.
    broker = await startBroker(
      brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, metricsPort: undefined, networkId: NETWORK, publishRate: 0.0001, publishBurst: 3 }),
      { bus, directory, verifier },
    );
    client = await connectDevice(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, device);
    client.on('message', (_t, p) => events.push(JSON.parse(p.toString()) as Event));
    await client.subscribeAsync(device.eventsTopic, { qos: 1 });
    tokenChecks = verifier.calls;
  });

  afterAll(async () => {
    await client?.endAsync();
    await broker?.close();
    await bus.close();
  });

  it('oversized: the seq of a heartbeat padded past the limit; null for an oversized payload without one', async () => {
    // Oversized is checked first and takes no token from the bucket.
    const hb = device.heartbeat({ seq: 7n });
    const padded = new Uint8Array(1500);
    padded.set(hb);
    expect(await rejectedWith(padded)).toMatchObject({ seq: 7, status: 'rejected', reason: 'HB_OVERSIZED' });
    // Beyond 2^53 − 1 the seq is a decimal string, as for every other event.
    const big = new Uint8Array(1100);
    big.set(device.heartbeat({ seq: 2n ** 60n }));
    expect(await rejectedWith(big)).toMatchObject({ seq: (2n ** 60n).toString(), reason: 'HB_OVERSIZED' });
    expect(await rejectedWith(new Uint8Array(1500).fill(0xab))).toMatchObject({ seq: null, reason: 'HB_OVERSIZED' });
    expect(verifier.calls - tokenChecks).toBe(0);
  });

  it('rate-limited: the seq when readable, null when not, and no signature check for either', async () => {
    for (let seq = 1n; seq <= 3n; seq++) await client.publishAsync(device.topic, Buffer.from(device.heartbeat({ seq })), { qos: 1 });
    expect(verifier.calls - tokenChecks).toBe(3);
    const accepted = await consumer.fetch(10, 1_000);
    expect(accepted.map((d) => d.message.seq)).toEqual([1n, 2n, 3n]);
    for (const d of accepted) await d.ack();

    expect(await rejectedWith(device.heartbeat({ seq: 4n }))).toMatchObject({ seq: 4, status: 'rejected', reason: 'HB_RATE_LIMITED' });
    // A forged signature is not even looked at once the bucket is empty.
    const forged = device.heartbeat({ seq: 5n });
    forged[forged.length - 1]! ^= 1;
    expect(await rejectedWith(forged)).toMatchObject({ seq: 5, reason: 'HB_RATE_LIMITED' });
    expect(await rejectedWith(Buffer.from('not a heartbeat'))).toMatchObject({ seq: null, reason: 'HB_RATE_LIMITED' });
    expect(await rejectedWith(device.heartbeat({ seq: 6n }).subarray(0, 40))).toMatchObject({ seq: null, reason: 'HB_RATE_LIMITED' });
    expect(verifier.calls - tokenChecks).toBe(3);
    expect(await consumer.fetch(10, 100)).toEqual([]);
    expect(client.connected).toBe(true);
  });
});

describe('rejection events of undecodable and forged heartbeats', () => {
  const bus = new MemoryBus();
  const directory = new MemoryDirectory();
  const device = new TestDevice(NETWORK);
  let broker: BrokerHandle;
  let client: MqttClient;

  beforeAll(async () => {
    directory.set(device.id);
    // A bucket large enough that the burst below is not rate limited.
    broker = await startBroker(brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, metricsPort: undefined, networkId: NETWORK, publishRate: 1000, publishBurst: 1000 }), { bus, directory });
    client = await connectDevice(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, device);
    await client.subscribeAsync(device.eventsTopic, { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    await broker?.close();
    await bus.close();
  });

  it('truncated or with trailing bytes: the seq from the header; shorter than the seq: null', async () => {
    const cases: Array<[Uint8Array, string, unknown]> = [
      [device.heartbeat({ seq: 11n }).subarray(0, 60), 'HB_TRUNCATED', 11],
      [Buffer.concat([device.heartbeat({ seq: 12n }), Buffer.from([0])]), 'HB_BAD_LENGTH', 12],
      [device.heartbeat({ seq: 13n }).subarray(0, 30), 'HB_TRUNCATED', null],
    ];
    for (const [payload, reason, seq] of cases) {
      const event = new Promise<Event>((resolve) => client.once('message', (_t, p) => resolve(JSON.parse(p.toString()) as Event)));
      await client.publishAsync(device.topic, Buffer.from(payload), { qos: 1 });
      expect(await event).toMatchObject({ seq, reason });
    }
  });

  // A device decides "accepted" from a PUBACK with no event before it (device-sim/sim-device.ts), so
  // every rejection path must write its event first: checked on the packets as they arrive, for a
  // burst mixing forged signatures (rejected after the async edge check) and undecodable payloads
  // (rejected synchronously).
  it('every rejection event reaches the device before the PUBACK, for a burst of forged and undecodable heartbeats', async () => {
    const seen = new Set<number>();
    const ackedBeforeEvent: number[] = [];
    const seqOfMessageId = new Map<number, number>();
    client.on('message', (_t, p) => seen.add((JSON.parse(p.toString()) as Event).seq as number));
    client.on('packetreceive', (packet) => {
      if (packet.cmd !== 'puback' || packet.messageId === undefined) return;
      const seq = seqOfMessageId.get(packet.messageId);
      if (seq !== undefined && !seen.has(seq)) ackedBeforeEvent.push(seq);
    });
    // Map message ids to seqs as the PUBLISH packets go out (the seq sits at offset 38, docs/protocol.md).
    client.on('packetsend', (packet) => {
      if (packet.cmd === 'publish' && packet.messageId !== undefined) seqOfMessageId.set(packet.messageId, Number(Buffer.from(packet.payload as Buffer).readBigUInt64BE(38)));
    });
    const sends: Promise<unknown>[] = [];
    for (let seq = 1; seq <= 200; seq++) {
      const hb = device.heartbeat({ seq: BigInt(seq) });
      let payload: Uint8Array = hb;
      if (seq % 2 === 0) hb[hb.length - 1]! ^= 1; // forged signature
      else payload = hb.subarray(0, 60); // truncated: the seq is still readable
      sends.push(
        new Promise<void>((resolve, reject) => void client.publish(device.topic, Buffer.from(payload), { qos: 1 }, (e) => (e ? reject(e) : resolve()))),
      );
    }
    await Promise.all(sends);
    for (let i = 0; i < 200 && seen.size < 200; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen.size).toBe(200);
    expect(seqOfMessageId.size).toBe(200);
    expect(ackedBeforeEvent).toEqual([]);
  });
});
