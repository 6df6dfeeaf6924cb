// A minimal raw MQTT 3.1.1 client for benchmarks (bench/broker.ts, bench/connections.ts): frames are
// encoded once up front and written straight to the socket, and PUBACKs are matched by packet id,
// so the load generator costs little next to the broker it measures. Only what a device needs:
// CONNECT/CONNACK, PUBLISH QoS 1/PUBACK (MQTT-3.1, 3.2, 3.3, 3.4).
import { connect as netConnect, type Socket } from 'node:net';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { connectPassword } from '../shared/protocol/connect-token.ts';
import { signHeartbeat } from '../shared/protocol/heartbeat.ts';
import { signerFor, type Signer } from '../shared/protocol/signer.ts';
import { toHex } from '../shared/hex.ts';

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function encodeConnect(clientId: string, username: string, password: string, keepaliveSeconds = 0): Buffer {
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, 0x80 | 0x40 | 0x02, keepaliveSeconds >> 8, keepaliveSeconds & 0xff])]);
  const body = Buffer.concat([variable, str(clientId), str(username), str(password)]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

export function encodePublishQos1(topic: string, payload: Uint8Array, packetId: number): Buffer {
  const id = Buffer.from([packetId >> 8, packetId & 0xff]);
  const body = Buffer.concat([str(topic), id, payload]);
  return Buffer.concat([Buffer.from([0x32, ...remainingLength(body.length)]), body]);
}

/** A device identity without noble (node:crypto derives the public key in microseconds). */
export function benchDevice(secret: Uint8Array): { id: string; publicKey: Uint8Array; sign: Signer } {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), secret]);
  const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  const publicKey = new Uint8Array(Buffer.from(jwk.x!, 'base64url'));
  return { id: toHex(publicKey), publicKey, sign: signerFor(secret) };
}

export function benchConnect(d: ReturnType<typeof benchDevice>, networkId: number, tokenTs: number): Buffer {
  return encodeConnect(d.id, d.id, connectPassword(networkId, d.publicKey, BigInt(tokenTs), d.sign));
}

/** Pre-signed heartbeats for one device, seq 1..count, as PUBLISH QoS 1 frames (packet id = seq mod 65535). */
export function benchHeartbeats(d: ReturnType<typeof benchDevice>, networkId: number, count: number, firstSeq = 1): Buffer[] {
  const topic = `devices/${d.id}/heartbeat`;
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const seq = BigInt(firstSeq + i);
    const hb = signHeartbeat({ networkId, publicKey: d.publicKey, seq, timestamp: BigInt(Date.now()), metrics: [{ id: 1, value: seq }] }, d.sign);
    out.push(encodePublishQos1(topic, hb, ((firstSeq + i - 1) % 65535) + 1));
  }
  return out;
}

/** One raw connection: resolves after CONNACK 0; calls onAck(packetId) for every PUBACK. */
export class RawConnection {
  private buf: Buffer = Buffer.alloc(0);
  onAck: (packetId: number) => void = () => undefined;
  closed = false;

  private constructor(readonly socket: Socket) {}

  static open(host: string, port: number, connectFrame: Buffer, timeoutMs = 30_000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port, noDelay: true });
      const c = new RawConnection(socket);
      const t = setTimeout(() => {
        socket.destroy();
        reject(new Error('CONNACK timeout'));
      }, timeoutMs);
      let connected = false;
      socket.on('error', (e) => {
        clearTimeout(t);
        if (!connected) reject(e);
      });
      socket.on('close', () => {
        c.closed = true;
        clearTimeout(t);
        if (!connected) reject(new Error('closed before CONNACK'));
      });
      socket.on('connect', () => socket.write(connectFrame));
      socket.on('data', (chunk: Buffer) => {
        c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
        for (;;) {
          if (c.buf.length < 2) break;
          let len = 0;
          let mul = 1;
          let i = 1;
          for (; i < 5 && i < c.buf.length; i++) {
            len += (c.buf[i]! & 0x7f) * mul;
            mul *= 128;
            if ((c.buf[i]! & 0x80) === 0) break;
          }
          if (i >= c.buf.length) break;
          const total = i + 1 + len;
          if (c.buf.length < total) break;
          const type = c.buf[0]! >> 4;
          if (type === 2) {
            clearTimeout(t);
            if (c.buf[i + 2] === 0) {
              connected = true;
              resolve(c);
            } else {
              socket.destroy();
              reject(new Error(`CONNACK ${c.buf[i + 2]}`));
            }
          } else if (type === 4) {
            c.onAck((c.buf[i + 1]! << 8) | c.buf[i + 2]!);
          }
          c.buf = c.buf.subarray(total);
        }
      });
    });
  }

  write(frame: Buffer): boolean {
    return this.socket.write(frame);
  }

  close(): void {
    this.socket.destroy();
  }
}

export type DriveResult = { readonly acked: number; readonly seconds: number; readonly latenciesMs: Float64Array };

/**
 * Send every frame on its connection with at most `window` unacknowledged per connection; with
 * `ratePerSecond`, pace the total send rate. Resolves when every frame is acknowledged.
 */
export function drive(conns: RawConnection[], frames: Buffer[][], window: number, ratePerSecond?: number): Promise<DriveResult> {
  const total = frames.reduce((n, f) => n + f.length, 0);
  const latencies = new Float64Array(total);
  let acked = 0;
  const start = performance.now();
  return new Promise((resolve, reject) => {
    let budget = ratePerSecond === undefined ? Infinity : 0;
    const state = conns.map(() => ({ next: 0, inflight: 0, sentAt: new Float64Array(65536) }));
    const pump = (i: number) => {
      const s = state[i]!;
      const f = frames[i]!;
      while (s.inflight < window && s.next < f.length && budget >= 1) {
        const frame = f[s.next++]!;
        const id = packetIdOf(frame);
        s.sentAt[id] = performance.now();
        s.inflight++;
        if (budget !== Infinity) budget--;
        conns[i]!.write(frame);
      }
    };
    conns.forEach((c, i) => {
      c.onAck = (id) => {
        const s = state[i]!;
        latencies[acked++] = performance.now() - s.sentAt[id]!;
        s.inflight--;
        if (acked === total) {
          clearInterval(timer);
          resolve({ acked, seconds: (performance.now() - start) / 1000, latenciesMs: latencies });
          return;
        }
        pump(i);
      };
      c.socket.once('close', () => {
        if (acked < total) {
          clearInterval(timer);
          reject(new Error(`connection ${i} closed after ${acked}/${total} PUBACKs`));
        }
      });
    });
    const TICK = 5;
    const timer = setInterval(() => {
      if (ratePerSecond !== undefined) budget = Math.min(budget + (ratePerSecond * TICK) / 1000, ratePerSecond);
      for (let i = 0; i < conns.length; i++) pump(i);
    }, TICK);
    for (let i = 0; i < conns.length; i++) pump(i);
  });
}

/** Packet id of a PUBLISH QoS 1 frame produced by encodePublishQos1. */
export function packetIdOf(frame: Buffer): number {
  let i = 1;
  while (frame[i]! & 0x80) i++;
  const topicLen = (frame[i + 1]! << 8) | frame[i + 2]!;
  const at = i + 3 + topicLen;
  return (frame[at]! << 8) | frame[at + 1]!;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
