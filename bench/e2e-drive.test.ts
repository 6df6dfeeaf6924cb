// bench/e2e-drive.ts against a real Aedes broker on a real socket: every frame is written once,
// in seq order per connection, with its send time recorded, and only frames whose PUBACK arrived
// count as acknowledged, also when the broker drops the connection mid-run (the bench's loss check
// depends on that accounting). No timing is asserted.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import { RawConnection, benchDevice, benchHeartbeats, encodeConnect } from '../broker/load-client.ts';
import { driveRecorded } from './e2e-drive.ts';

let running: { aedes: Aedes; server: Server; conns: RawConnection[] } | undefined;

async function broker(options: Partial<AedesOptions> = {}): Promise<{ port: number; conns: RawConnection[] }> {
  const aedes = await Aedes.createBroker(options);
  const server = createServer({ noDelay: true }, (s) => aedes.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  running = { aedes, server, conns: [] };
  return { port: (server.address() as { port: number }).port, conns: running.conns };
}

afterEach(async () => {
  if (running === undefined) return;
  for (const c of running.conns) c.close();
  running.server.close();
  await new Promise<void>((r) => running!.aedes.close(() => r()));
  running = undefined;
});

function fleet(n: number, perDevice: number): Buffer[][] {
  return Array.from({ length: n }, () => benchHeartbeats(benchDevice(randomBytes(32)), 5, perDevice, 1));
}

describe('driveRecorded', () => {
  it('writes every frame once, in order, and records each acknowledgement', async () => {
    const { port, conns } = await broker();
    const frames = fleet(3, 40);
    for (let i = 0; i < frames.length; i++) conns.push(await RawConnection.open('127.0.0.1', port, encodeConnect(`c${i}`, `c${i}`, 'x')));
    const r = await driveRecorded(conns, frames, 4, 5_000, 30_000);
    expect(r.sent).toBe(120);
    expect(r.acked).toBe(120);
    expect(r.pubackMs.length).toBe(120);
    for (let i = 0; i < 3; i++) {
      expect([...r.ackedFlags[i]!].every((f) => f === 1)).toBe(true);
      const sent = [...r.sentAtMs[i]!];
      expect(sent.every(Number.isFinite)).toBe(true);
      // Written in seq order per connection (MQTT-4.6.0-6 keeps that order to the broker).
      for (let k = 1; k < sent.length; k++) expect(sent[k]!).toBeGreaterThanOrEqual(sent[k - 1]!);
      expect(sent[0]!).toBeGreaterThanOrEqual(r.startedAtMs);
    }
  });

  it('counts only PUBACKed frames when the broker drops the connection mid-run', async () => {
    let seen = 0;
    const { port, conns } = await broker({
      // The 21st PUBLISH is refused: Aedes closes the connection (MQTT 3.1.1 has no PUBACK error code).
      authorizePublish: (_client, _packet, done) => done(++seen > 20 ? new Error('stop') : null),
    });
    const frames = fleet(1, 60);
    conns.push(await RawConnection.open('127.0.0.1', port, encodeConnect('d', 'd', 'x')));
    const r = await driveRecorded(conns, frames, 5, 5_000, 30_000);
    expect(r.acked).toBe(20);
    expect(r.sent).toBeGreaterThan(20);
    expect(r.sent).toBeLessThan(60);
    const flags = [...r.ackedFlags[0]!];
    expect(flags.slice(0, 20).every((f) => f === 1)).toBe(true);
    expect(flags.slice(20).every((f) => f === 0)).toBe(true);
    // Frames never written carry no send time.
    expect([...r.sentAtMs[0]!].filter(Number.isFinite).length).toBe(r.sent);
  });
});
