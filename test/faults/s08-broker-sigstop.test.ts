// Scenario 8 (issue 10): SIGSTOP a broker for longer than the devices' keepalive, then SIGCONT.
// Devices declare the connection dead (no PINGRESP within the keepalive, MQTT-3.1.2-24 from their
// side) and keep reconnecting; their unacknowledged heartbeats stay in their outgoing store. On
// SIGCONT the broker works through a socket backlog of stale connections and new CONNECTs (each with
// a newer token), resent heartbeats are deduplicated, and nothing acknowledged is lost. Auditor: A1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulseStack } from './harness/pulse-stack.ts';
import { killAll, sleep, waitFor } from './harness/processes.ts';
import { expectA1 } from './harness/expect-audit.ts';

const KEEPALIVE_S = 4;
const STOP_S = Number(process.env['PULSE_FAULTS_SIGSTOP'] ?? 12);

describe(`scenario 8: SIGSTOP a broker for ${STOP_S} s (keepalive ${KEEPALIVE_S} s), SIGCONT`, () => {
  let stack: PulseStack;
  beforeAll(async () => {
    stack = await PulseStack.create();
  });
  afterAll(async () => {
    await stack?.destroy();
    await killAll();
  });

  it('recovers the fleet after the broker resumes, losing nothing acknowledged', async ({ onTestFailed }) => {
    onTestFailed(async () => void (await stack.evidence('scenario 8 (failed)').catch(() => undefined)));
    const broker = await stack.addBroker();
    await stack.addOracle();
    const fleet = await stack.startFleet(24, broker.url, { tuning: { reconnectPeriodMs: 1_000, keepaliveSeconds: KEEPALIVE_S, maxPending: 400 } });
    await stack.waitAcked(600);
    const connectsBefore = fleet.stats().connects;
    broker.process.signal('SIGSTOP');
    try {
      await sleep(STOP_S * 1000);
      // The devices noticed: none is connected any more (keepalive expired while it was stopped).
      expect(fleet.stats().connected).toBe(0);
    } finally {
      broker.process.signal('SIGCONT');
    }
    await waitFor('the fleet reconnected', () => (fleet.stats().connected === 24 ? true : undefined), 60_000);
    expect(fleet.stats().connects).toBeGreaterThanOrEqual(connectsBefore + 24);
    await stack.waitAcked(600);
    const report = await stack.drainAndAuditA1();
    expect(broker.process.running).toBe(true);
    await expectA1('scenario 8', report, stack);
  });
});
