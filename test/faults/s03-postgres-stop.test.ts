// Scenario 3 (issue 10): stop PostgreSQL in immediate mode under load for PULSE_FAULTS_PG_OUTAGE
// seconds (default 30, the low end of the 30–60 s), then start it. Brokers keep accepting
// into JetStream (the durable hand-off), ingest stops acknowledging JetStream instead of dropping
// (the oracle's /health turns 503, the consumer's backlog grows), and everything drains afterwards.
// Auditor: A1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as natsConnect } from 'nats';
import { PulseStack } from './harness/pulse-stack.ts';
import { killAll, sleep, waitFor } from './harness/processes.ts';
import { expectA1 } from './harness/expect-audit.ts';

const OUTAGE_S = Number(process.env['PULSE_FAULTS_PG_OUTAGE'] ?? 30);

describe(`scenario 3: PostgreSQL stopped (immediate) for ${OUTAGE_S} s under load`, () => {
  let stack: PulseStack;
  beforeAll(async () => {
    stack = await PulseStack.create();
  });
  afterAll(async () => {
    await stack?.destroy();
    await killAll();
  });

  it('holds heartbeats in JetStream while the database is down and stores them all afterwards', async ({ onTestFailed }) => {
    onTestFailed(async () => void (await stack.evidence('scenario 3 (failed)').catch(() => undefined)));
    const broker = await stack.addBroker();
    const oracle = await stack.addOracle();
    await stack.startFleet(24, broker.url);
    await stack.waitAcked(600);

    stack.pg.stop('immediate');
    const downAt = Date.now();
    // The oracle must not claim to be healthy: /health answers 503 (STORE_UNAVAILABLE) or, when every
    // pooled connection is stuck, does not answer at all (a failed probe either way).
    const healthDuring = await waitFor('oracle /health not 200', async () => {
      const s = await oracle.health();
      return s === 200 ? undefined : (s ?? 'no answer');
    }, 20_000);
    console.log(`scenario 3: oracle /health during the outage: ${healthDuring}`);
    // Devices keep being acknowledged: the broker's hand-off is JetStream, not the database.
    await stack.waitAcked(300, 20_000);
    const nc = await natsConnect({ servers: stack.nats.servers.split(',') });
    const jsm = await nc.jetstreamManager();
    const during = await jsm.consumers.info(stack.stream, 'pulse-ingest');
    // Held in JetStream: not yet delivered, or delivered to a worker that cannot commit (unacked).
    const pendingDuring = during.num_pending + during.num_ack_pending;
    await sleep(Math.max(0, OUTAGE_S * 1000 - (Date.now() - downAt)));
    await stack.pg.start();
    await waitFor('oracle /health 200', async () => ((await oracle.health()) === 200 ? true : undefined), 60_000);
    await stack.waitAcked(300);

    const report = await stack.drainAndAuditA1(120_000);
    const after = await jsm.consumers.info(stack.stream, 'pulse-ingest');
    await nc.close();
    expect(pendingDuring, 'JetStream held the heartbeats ingest could not store').toBeGreaterThan(0);
    expect(after.num_pending + after.num_ack_pending).toBe(0);
    expect(oracle.process.running, 'the oracle rides out the outage without crashing').toBe(true);
    expect(broker.process.running).toBe(true);
    await expectA1('scenario 3', report, stack);
  });
});
