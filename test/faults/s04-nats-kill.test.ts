// Scenario 4 (issue 10): SIGKILL nats-server under load and restart it (same port, same store
// directory). While it is down the broker cannot get a PubAck, so it withholds the PUBACK (/health
// bus_down) and devices keep their heartbeats; JetStream's file store keeps what it acknowledged
// before the kill; duplicates from retries are dropped by the Nats-Msg-Id window. Auditor: A1.
import { expect } from 'vitest';
import { faultScenario } from './harness/fault-scenario.ts';
import { sleep, waitFor } from './harness/processes.ts';

faultScenario(
  {
    name: 'scenario 4',
    title: 'scenario 4: SIGKILL nats-server under load, restart',
    test: 'acknowledges nothing it could not hand off, and loses nothing JetStream acknowledged',
  },
  async ({ stack, broker }) => {
    const node = stack.nats.nodes[0]!;
    await stack.nats.kill(node);
    await waitFor('broker /health 503 (bus down)', async () => ((await broker.health()) === 503 ? true : undefined), 20_000);
    // While NATS is down no PUBACK goes out: the acknowledged count stands still (after in-flight
    // acks that were already confirmed settle).
    await sleep(1_500);
    const ackedDuring = stack.acknowledged();
    await sleep(4_000);
    expect(stack.acknowledged() - ackedDuring, 'PUBACKs sent while the bus was down').toBe(0);
    await stack.nats.restart(node);
    await waitFor('broker /health 200', async () => ((await broker.health()) === 200 ? true : undefined), 30_000);
    await stack.waitAcked(600, 60_000);
  },
);
