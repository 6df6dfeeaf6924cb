// Scenario 3 (issue 10): stop PostgreSQL in immediate mode under load for PULSE_FAULTS_PG_OUTAGE
// seconds (default 30, the low end of the 30–60 s), then start it. Brokers keep accepting
// into JetStream (the durable hand-off), ingest stops acknowledging JetStream instead of dropping
// (the oracle's /health turns 503, the consumer's backlog grows), and everything drains afterwards.
// Auditor: A1; the oracle must ride out the outage without crashing.
import { expect } from 'vitest';
import { connect as natsConnect } from 'nats';
import { faultScenario } from './harness/fault-scenario.ts';
import type { PulseStack } from './harness/pulse-stack.ts';
import { sleep, waitFor } from './harness/processes.ts';

const OUTAGE_S = Number(process.env['PULSE_FAULTS_PG_OUTAGE'] ?? 30);

/** Heartbeats JetStream holds for ingest: not yet delivered, or delivered and not acknowledged. */
async function ingestBacklog(stack: PulseStack): Promise<number> {
  const nc = await natsConnect({ servers: stack.nats.servers.split(',') });
  try {
    const info = await (await nc.jetstreamManager()).consumers.info(stack.stream, 'pulse-ingest');
    return info.num_pending + info.num_ack_pending;
  } finally {
    await nc.close();
  }
}

faultScenario(
  {
    name: 'scenario 3',
    title: `scenario 3: PostgreSQL stopped (immediate) for ${OUTAGE_S} s under load`,
    test: 'holds heartbeats in JetStream while the database is down and stores them all afterwards',
    drainMs: 120_000,
  },
  async ({ stack, oracle }) => {
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
    expect(await ingestBacklog(stack), 'JetStream held the heartbeats ingest could not store').toBeGreaterThan(0);
    await sleep(Math.max(0, OUTAGE_S * 1000 - (Date.now() - downAt)));
    await stack.pg.start();
    await waitFor('oracle /health 200', async () => ((await oracle.health()) === 200 ? true : undefined), 60_000);
    await stack.waitAcked(300);
    // Drained: the consumer has nothing left, delivered or not.
    return async () => expect(await ingestBacklog(stack)).toBe(0);
  },
);
