// Hand-built MQTT 3.1.1 packets for the hostile-input probes (MQTT 3.1.1 §2 fixed header, §3.1
// CONNECT, §3.3 PUBLISH). mqtt.js refuses to send most of what these tests need (NUL in topics,
// invalid UTF-8, wildcards in PUBLISH topics, QoS 2 without PUBREL), so the probe writes bytes itself.
import { connect as netConnect, type Socket } from 'node:net';

/** MQTT variable byte integer (§2.2.3), up to 268,435,455. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A length-prefixed field (§1.5.3): raw bytes, so invalid UTF-8 and NUL go through as they are. */
export function field(b: Buffer | string): Buffer {
  const bytes = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

export function packet(typeAndFlags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([typeAndFlags]), varint(body.length), body]);
}

export type ConnectFields = {
  clientId: Buffer | string;
  username?: Buffer | string;
  password?: Buffer | string;
  keepalive?: number;
  will?: { topic: Buffer | string; payload: Buffer; qos: 0 | 1; retain?: boolean };
};

export function connectPacket(c: ConnectFields): Buffer {
  let flags = 0x02; // clean session
  if (c.username !== undefined) flags |= 0x80;
  if (c.password !== undefined) flags |= 0x40;
  if (c.will !== undefined) flags |= 0x04 | (c.will.qos << 3) | (c.will.retain === true ? 0x20 : 0);
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(c.keepalive ?? 30);
  const parts = [field('MQTT'), Buffer.from([0x04, flags]), ka, field(c.clientId)];
  if (c.will !== undefined) parts.push(field(c.will.topic), field(c.will.payload));
  if (c.username !== undefined) parts.push(field(c.username));
  if (c.password !== undefined) parts.push(field(c.password));
  return packet(0x10, Buffer.concat(parts));
}

export function publishPacket(topic: Buffer | string, payload: Buffer | Uint8Array, qos: 0 | 1 | 2, packetId = 1): Buffer {
  const parts = [field(topic)];
  if (qos > 0) {
    const id = Buffer.alloc(2);
    id.writeUInt16BE(packetId);
    parts.push(id);
  }
  parts.push(Buffer.from(payload));
  return packet(0x30 | (qos << 1), Buffer.concat(parts));
}

/** A raw TCP connection that records what the server sends and whether it closed. */
export class RawClient {
  readonly received: Buffer[] = [];
  closed = false;
  private readonly closedP: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (b: Buffer) => this.received.push(b));
    socket.on('error', () => undefined);
    this.closedP = new Promise((r) =>
      socket.once('close', () => {
        this.closed = true;
        r();
      }),
    );
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port, noDelay: true });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** True if the server closed the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    if (this.closed) return true;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
    const v = await Promise.race([this.closedP.then(() => true as const), timeout]);
    clearTimeout(t);
    return v;
  }

  /** The CONNACK return code, once one arrived (§3.2.2.3), else undefined. */
  connack(): number | undefined {
    const all = Buffer.concat(this.received);
    return all.length >= 4 && all[0] === 0x20 ? all[3] : undefined;
  }

  async waitConnack(ms = 3_000): Promise<number | undefined> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && !this.closed) {
      const c = this.connack();
      if (c !== undefined) return c;
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.connack();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
