// `pulse sim` as a user runs it: a child process against a real broker on a real socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { MemoryBus } from '../bus/memory.ts';
import { SimState } from '../device-sim/sim-state.ts';
import { readOutbox } from '../device-sim/outbox-log.ts';

const NETWORK = 21;
const PULSE = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));

function pulse(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PULSE, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('pulse sim (CLI)', () => {
  let dir: string;
  let bus: MemoryBus;
  let directory: MemoryDirectory;
  let broker: BrokerHandle;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pulse-sim-cli-'));
    bus = new MemoryBus();
    directory = new MemoryDirectory();
    broker = await startBroker(
      brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, tlsPort: undefined, wssPort: undefined, metricsPort: undefined, networkId: NETWORK, bus: 'memory', publishRate: 100, publishBurst: 100 }),
      { bus, directory },
    );
    url = `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`;
    // Keys first, registered by the "operator"; the CLI then reuses them from the state dir.
    const pre = await SimState.open(join(dir, 'state'), NETWORK, 20);
    for (const d of pre.devices) directory.set(d.deviceId);
    await pre.close(); // release the state lock for the child processes
  });

  afterAll(async () => {
    await broker?.close();
    await bus?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a mixed fleet for a while, prints the summary and writes the outbox', async () => {
    const outbox = join(dir, 'outbox.jsonl');
    const r = await pulse(
      ['sim', '--devices', '2', '--broker', url, '--interval', '300ms', '--duration', '3s', '--state-dir', join(dir, 'state'), '--network', String(NETWORK), '--outbox', outbox, '--mix', 'honest=1,forge=1', '--misbehave-rate', '1', '--signer', 'noble'],
    );
    expect(r.stderr).toMatch(/sim 2 devices · connected \d · sent \d+ · acked \d+ · rejected \d+ \(HB_BAD_SIGNATURE=\d+\)/);
    expect(r.code).toBe(0);
    const entries = [...readOutbox(await readFile(outbox, 'utf8')).values()];
    expect(entries.length).toBeGreaterThan(2);
    expect(new Set(entries.map((e) => e.deviceId)).size).toBe(1); // only the honest device's heartbeats
  });

  it('SIGTERM before --duration is up stops the fleet and exits 0 (the duration timer does not keep it alive)', async () => {
    const child = spawn(process.execPath, [PULSE, 'sim', '--devices', '2', '--broker', url, '--interval', '300ms', '--duration', '10m', '--state-dir', join(dir, 'state'), '--network', String(NETWORK)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Running: the summary line shows a connected device.
    while (!/connected [12]/.test(stderr) && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    // Bounded by the test timeout (30 s), far below the 10 minutes the timer would hold it.
    expect(await exited).toBe(0);
  }, 30_000);

  it('--load reports connections, rate and PUBACK latency as text and JSON', async () => {
    const r = await pulse(['sim', '--load', '--devices', '20', '--messages', '3', '--broker', url, '--state-dir', join(dir, 'state'), '--network', String(NETWORK)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('connections: 20/20');
    expect(r.stdout).toMatch(/PUBACK latency: p50 [\d.]+ ms, p99 [\d.]+ ms/);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { acknowledged: number; messages: number };
    expect(json).toMatchObject({ acknowledged: 60, messages: 60 });
  });

  it('bad options exit non-zero with a message naming the flag or variable', async () => {
    // A value that does not parse is CONFIG_INVALID (exit 1) naming flag and variable, like every key.
    const bad = await pulse(['sim', '--mix', 'honest=1,bogus=2']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('CONFIG_INVALID');
    expect(bad.stderr).toContain('PULSE_SIM_MIX');
    expect(bad.stderr).toContain('unknown behaviour "bogus"');
    const noMaker = await pulse(['sim', '--api', 'http://127.0.0.1:1', '--owner', '0x' + '11'.repeat(20)]);
    expect(noMaker.code).toBe(2);
    expect(noMaker.stderr).toContain('--api needs --maker-key');
    const envBad = await pulse(['sim'], { PULSE_SIM_INTERVAL: 'soon' });
    expect(envBad.code).toBe(1);
    expect(envBad.stderr).toContain('PULSE_SIM_INTERVAL');
  });
});
