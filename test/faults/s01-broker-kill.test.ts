// Scenario 1 (issue 10): SIGKILL a broker under load; devices reconnect to the other broker. Both
// brokers sit behind one TCP front end (as behind a TCP load balancer), so a device's reconnect lands
// on the surviving broker. Heartbeats the killed broker handed to JetStream without getting the
// PUBACK out are resent by the device (MQTT-4.4.0-1) and dropped as duplicates by the Nats-Msg-Id
// window; nothing the device saw acknowledged is lost. Auditor: A1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PulseStack } from './harness/pulse-stack.ts';
import { TcpForwarder } from './harness/tcp-forwarder.ts';
import { killAll, waitFor } from './harness/processes.ts';
import { expectA1 } from './harness/expect-audit.ts';

describe('scenario 1: SIGKILL a broker under load, devices move to the other broker', () => {
  let stack: PulseStack;
  let front: TcpForwarder | undefined;
  beforeAll(async () => {
    stack = await PulseStack.create();
  });
  afterAll(async () => {
    await front?.close();
    await stack?.destroy();
    await killAll();
  });

  it('keeps every acknowledged heartbeat when a broker dies', async ({ onTestFailed }) => {
    onTestFailed(async () => void (await stack.evidence('scenario 1 (failed)').catch(() => undefined)));
    const [a, b] = [await stack.addBroker(), await stack.addBroker()];
    await stack.addOracle();
    front = await TcpForwarder.start([a, b].map((x) => ({ host: '127.0.0.1', port: x.mqttPort })));
    await stack.startFleet(24, `mqtt://${front.url}`);
    await stack.waitAcked(600);
    const conns = async (x: typeof a) => ((await (await fetch(`http://127.0.0.1:${x.metricsPort}/health`)).json()) as { connections: number }).connections;
    expect(await conns(a)).toBeGreaterThan(0);
    await a.process.kill();
    // Every device ends up on broker b and the fleet keeps being acknowledged.
    await waitFor('all 24 devices on the surviving broker', async () => ((await conns(b)) >= 24 ? true : undefined), 30_000);
    await stack.waitAcked(600);
    const report = await stack.drainAndAuditA1();
    expect(b.process.running).toBe(true);
    await expectA1('scenario 1', report, stack);
  });
});
