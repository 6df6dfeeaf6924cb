// `pulse broker` as real processes (docs/broker.md §Running, §Horizontal scale): two broker
// processes against one JetStream stream, devices spread over both and failing over between them,
// no loss and no duplicate downstream; SIGTERM exits cleanly; a taken port is a one-line error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { JetStreamBus } from '../bus/jetstream.ts';
import { TestDevice, connectDevice } from '../broker/test-kit.ts';
import { NATS_URL, needs, uniqueName } from './support/services.ts';

const ok = await needs('nats');
const PULSE = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));
const NETWORK = 51;

type Proc = { child: ChildProcessWithoutNullStreams; stderr: () => string; mqttPort: number; metricsPort: number };

function startProcess(args: string[]): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PULSE, 'broker', ...args], { env: { ...process.env, NATS_URL }, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    const t = setTimeout(() => reject(new Error(`broker did not start: ${err}`)), 30_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of err.split('\n')) {
        if (!line.includes('"broker listening"')) continue;
        const j = JSON.parse(line) as { mqtt: string; metrics: string };
        clearTimeout(t);
        resolve({ child, stderr: () => err, mqttPort: Number(j.mqtt.split(':').pop()), metricsPort: Number(j.metrics.split(':').pop()) });
        return;
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`broker exited with ${code}: ${err}`));
    });
  });
}

function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PULSE, 'broker', ...args], { env: { ...process.env, NATS_URL }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stderr }));
  });
}

describe.skipIf(!ok)('pulse broker processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-broker-cli-'));
  const stream = uniqueName('PULSE_CLI');
  const prefix = uniqueName('cli');
  const devices = Array.from({ length: 10 }, () => new TestDevice(NETWORK));
  const devicesFile = join(dir, 'devices.json');
  const procs: Proc[] = [];

  beforeAll(() => {
    writeFileSync(devicesFile, JSON.stringify(devices.map((d) => ({ deviceId: d.id }))));
  });

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    const nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const args = (mqttPort = '0') => ['--mqtt-host', '127.0.0.1', '--mqtt-port', mqttPort, '--ws-port', 'off', '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--devices-file', devicesFile, '--stream', stream, '--subject-prefix', prefix, '--network-id', String(NETWORK), '--publish-burst', '100'];

  it('two broker processes on one stream: no loss, no duplicate; SIGTERM exits 0', async () => {
    procs.push(await startProcess(args()), await startProcess(args()));
    const [a, b] = procs as [Proc, Proc];
    const PER = 20;
    await Promise.all(
      devices.map(async (d, i) => {
        const beats = Array.from({ length: PER }, (_, k) => d.heartbeat({ seq: BigInt(k + 1) }));
        const [first, second] = i % 2 ? [a, b] : [b, a];
        const c1 = await connectDevice(`mqtt://127.0.0.1:${first.mqttPort}`, d);
        for (const hb of beats.slice(0, 12)) await c1.publishAsync(d.topic, Buffer.from(hb), { qos: 1 });
        await c1.endAsync();
        // Fail over and resend from seq 8: seq 8..12 go through both processes.
        const c2 = await connectDevice(`mqtt://127.0.0.1:${second.mqttPort}`, d);
        await Promise.all(beats.slice(7).map((hb) => c2.publishAsync(d.topic, Buffer.from(hb), { qos: 1 })));
        await c2.endAsync();
      }),
    );
    const bus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: prefix });
    const consumer = bus.consumer('cli_check');
    const got: string[] = [];
    for (;;) {
      const batch = await consumer.fetch(500, 500);
      if (batch.length === 0) break;
      for (const d of batch) {
        got.push(`${d.message.deviceId}:${d.message.seq}`);
        await d.ack();
      }
    }
    await bus.close();
    expect(got.length).toBe(devices.length * PER);
    expect(new Set(got).size).toBe(devices.length * PER);

    const health = await (await fetch(`http://127.0.0.1:${a.metricsPort}/health`)).json();
    expect(health).toMatchObject({ status: 'ok' });
    for (const p of [a, b]) {
      const exited = new Promise<number | null>((r) => p.child.once('exit', r));
      p.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(p.stderr()).toContain('"broker closed"');
    }
    procs.length = 0;
  });

  it('exits 1 with a one-line PORT_IN_USE naming the flag', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { code, stderr } = await runToExit(args(String(port)));
      expect(code).toBe(1);
      const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
      expect(lines).toEqual([`pulse broker: PORT_IN_USE: port ${port} on 127.0.0.1 is already in use; choose another with --mqtt-port`]);
    } finally {
      blocker.close();
    }
  });

  it('exits 2 without a device directory', async () => {
    const { code, stderr } = await runToExit(['--mqtt-port', '0', '--ws-port', 'off', '--metrics-port', 'off']);
    expect(code).toBe(2);
    expect(stderr).toContain('--devices-file');
  });
});
