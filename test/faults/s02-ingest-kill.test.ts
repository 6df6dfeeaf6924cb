// Scenario 2 (issue 10): SIGKILL an ingest worker (the `pulse oracle` process) mid-batch under load,
// restart it. Deliveries it held unacked come back after the ack wait; rows it committed but could
// not ack are found again (HB_DUPLICATE, not credited twice). Auditor: A1.
import { expect } from 'vitest';
import { faultScenario } from './harness/fault-scenario.ts';
import { sleep, waitFor } from './harness/processes.ts';

faultScenario(
  {
    name: 'scenario 2',
    title: 'scenario 2: SIGKILL an ingest worker mid-batch, restart',
    test: 'stores every acknowledged heartbeat exactly once across two SIGKILLs',
    // Two oracle processes share the durable; the second (small batches) is killed twice while
    // batches are in flight.
    oracles: [{}, { PULSE_INGEST_BATCH: '50' }],
  },
  async ({ stack, oracles }) => {
    const victim = oracles[1]!;
    for (let round = 0; round < 2; round++) {
      // Kill the moment the victim is committing: wait for the stored count to move.
      const before = await stack.storedCount();
      await waitFor('ingest progress', async () => ((await stack.storedCount()) > before ? true : undefined), 30_000, 20);
      await victim.process.kill();
      await stack.waitAcked(400);
      await victim.start();
      await sleep(1_000);
    }
    await stack.waitAcked(400);
    expect(victim.process.starts).toBe(3);
  },
);
