// Scenario 9 (issue 10): the distributed path. Three nats-server processes on loopback form a
// JetStream cluster holding the heartbeat stream with three replicas (R3); two brokers and two
// oracle processes (ingest workers sharing one durable) run against it. Under load, SIGKILL one
// NATS node that is not the stream leader (and restart it), then SIGKILL the stream leader (and
// restart it). A PubAck from an R3 stream means a quorum stored the message, so losing any one node
// loses nothing acknowledged. Auditor: A1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as natsConnect, type JetStreamManager, type NatsConnection } from 'nats';
import { PulseStack } from './harness/pulse-stack.ts';
import { killAll, waitFor } from './harness/processes.ts';
import { expectA1 } from './harness/expect-audit.ts';

describe('scenario 9: JetStream cluster (3 nodes, R3), 2 brokers, 2 ingest processes; kill a follower, then the leader', () => {
  let stack: PulseStack;
  let nc: NatsConnection | undefined;
  beforeAll(async () => {
    stack = await PulseStack.create({ natsNodes: 3, streamReplicas: 3 });
  });
  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await stack?.destroy();
    await killAll();
  });

  it('loses nothing acknowledged when a follower and then the stream leader die', async ({ onTestFailed }) => {
    onTestFailed(async () => void (await stack.evidence('scenario 9 (failed)').catch(() => undefined)));
    nc = await natsConnect({ servers: stack.nats.servers.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const jsm: JetStreamManager = await nc.jetstreamManager();
    const info = async () => (await jsm.streams.info(stack.stream)).cluster;
    expect((await jsm.streams.info(stack.stream)).config.num_replicas).toBe(3);
    const [b1, b2] = [await stack.addBroker(), await stack.addBroker()];
    const [o1, o2] = [await stack.addOracle(), await stack.addOracle()];
    await stack.startFleet(12, b1.url);
    await stack.startFleet(12, b2.url);
    await stack.waitAcked(600);

    const leader0 = (await info())?.leader;
    const follower = stack.nats.nodes.find((n) => n.name !== leader0)!;
    await stack.nats.kill(follower);
    await stack.waitAcked(400, 60_000);
    await stack.nats.restart(follower);
    await waitFor('the follower is current again', async () => {
      const c = await info();
      return c?.replicas?.every((r) => r.current) === true && c.replicas.length === 2 ? true : undefined;
    }, 60_000, 500);

    const leader = (await info())?.leader;
    const leaderNode = stack.nats.nodes.find((n) => n.name === leader)!;
    expect(leaderNode).toBeDefined();
    await stack.nats.kill(leaderNode);
    await waitFor('a new stream leader', async () => {
      const c = await info().catch(() => undefined);
      return c?.leader !== undefined && c.leader !== '' && c.leader !== leader ? true : undefined;
    }, 60_000, 500);
    await stack.waitAcked(400, 90_000);
    await stack.nats.restart(leaderNode);
    await stack.waitAcked(300, 60_000);

    const report = await stack.drainAndAuditA1(120_000);
    for (const p of [b1, b2, o1, o2]) expect(p.process.running, p.process.spec.name).toBe(true);
    await expectA1('scenario 9', report, stack);
  });
});
