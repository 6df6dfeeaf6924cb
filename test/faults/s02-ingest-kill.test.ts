// Scenario 2 (issue 10): SIGKILL an ingest worker (the `pulse oracle` process) mid-batch under load,
// restart it. Deliveries it held unacked come back after the ack wait; rows it committed but could
// not ack are found again (HB_DUPLICATE, not credited twice). Auditor: A1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulseStack } from './harness/pulse-stack.ts';
import { killAll, sleep, waitFor } from './harness/processes.ts';
import { expectA1 } from './harness/expect-audit.ts';

describe('scenario 2: SIGKILL an ingest worker mid-batch, restart', () => {
  let stack: PulseStack;
  beforeAll(async () => {
    stack = await PulseStack.create();
  });
  afterAll(async () => {
    await stack?.destroy();
    await killAll();
  });

  it('stores every acknowledged heartbeat exactly once across two SIGKILLs', async ({ onTestFailed }) => {
    onTestFailed(async () => void (await stack.evidence('scenario 2 (failed)').catch(() => undefined)));
    const broker = await stack.addBroker();
    // Two oracle processes share the durable; one is killed twice while batches are in flight.
    const survivor = await stack.addOracle();
    const victim = await stack.addOracle({ PULSE_INGEST_BATCH: '50' });
    await stack.startFleet(24, broker.url);
    await stack.waitAcked(600);
    for (let round = 0; round < 2; round++) {
      // Kill the moment the victim is committing: wait for its stored count to move.
      const before = await stack.storedCount();
      await waitFor('ingest progress', async () => ((await stack.storedCount()) > before ? true : undefined), 30_000, 20);
      await victim.process.kill();
      await stack.waitAcked(400);
      await victim.start();
      await sleep(1_000);
    }
    await stack.waitAcked(400);
    const report = await stack.drainAndAuditA1();
    expect(survivor.process.running).toBe(true);
    expect(victim.process.starts).toBe(3);
    await expectA1('scenario 2', report, stack);
  });
});
