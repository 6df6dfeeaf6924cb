// `pulse sim --broker mqtts://…`: the fleet over TLS to the real broker's TLS listener, verifying the
// broker certificate against a given CA (and refusing it without).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { MemoryBus } from '../bus/memory.ts';
import { SimState } from '../device-sim/sim-state.ts';
import { startFleet } from '../device-sim/start-fleet.ts';

const NETWORK = 31;

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(cmd, args, (e) => (e ? reject(e) : resolve())));
}

describe('pulse sim over mqtts://', () => {
  let dir: string;
  let bus: MemoryBus;
  let broker: BrokerHandle;
  let url: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pulse-sim-tls-'));
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    const directory = new MemoryDirectory();
    const pre = await SimState.open(dir, NETWORK, 2);
    for (const d of pre.devices) directory.set(d.deviceId);
    bus = new MemoryBus();
    broker = await startBroker(
      brokerConfig({ mqttHost: '127.0.0.1', mqttPort: undefined, wsPort: undefined, tlsPort: 0, wssPort: undefined, metricsPort: undefined, tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem'), networkId: NETWORK, bus: 'memory' }),
      { bus, directory },
    );
    url = `mqtts://127.0.0.1:${broker.addresses.tls!.port}`;
  });

  afterAll(async () => {
    await broker?.close();
    await bus?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('connects with the CA and is acknowledged; without it the certificate is refused', async () => {
    const ca = await readFile(join(dir, 'cert.pem'));
    const fleet = await startFleet({ devices: 2, brokerUrl: url, networkId: NETWORK, intervalMs: 400, stateDir: dir, transport: { ca } });
    const deadline = Date.now() + 15_000;
    while (fleet.stats().acknowledged < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await fleet.stop();
    expect(fleet.stats().acknowledged).toBeGreaterThanOrEqual(4);

    const errors: string[] = [];
    const untrusted = await startFleet({ devices: 1, brokerUrl: url, networkId: NETWORK, intervalMs: 400, stateDir: dir, onError: (_id, e) => errors.push(e.message) });
    const until = Date.now() + 10_000;
    while (errors.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    await untrusted.stop();
    expect(untrusted.stats().connects).toBe(0);
    expect(errors.join('\n')).toMatch(/self[- ]signed certificate/i);
  });
});
