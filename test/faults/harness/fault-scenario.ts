// The shape most fault scenarios share (issue 10): one private Pulse deployment (PulseStack: private
// PostgreSQL, private NATS, `pulse broker` and `pulse oracle` children), a simulated fleet sending to
// the broker, a warm-up until the fleet is being acknowledged, then the scenario's fault, then drain
// and audit: every process the scenario started is still running (a fault must not crash a
// service) and A1 holds. The stack is removed afterwards whatever happened, and a failed scenario
// leaves its evidence in $PULSE_FAULTS_ARTIFACTS. A scenario file then reads as its fault and the
// checks that belong to it:
//
//   faultScenario({ name: 'scenario 4', title: '…', test: '…' }, async ({ stack, broker }) => {
//     await stack.nats.kill(stack.nats.nodes[0]!);
//     …
//   });
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetHandle } from '../../../device-sim/start-fleet.ts';
import { PulseStack, type PulseBroker, type PulseOracle, type StackOptions } from './pulse-stack.ts';
import { killAll } from './processes.ts';
import { expectA1 } from './expect-audit.ts';

export type ScenarioContext = {
  readonly stack: PulseStack;
  readonly broker: PulseBroker;
  /** The oracles, in the order of `ScenarioSpec.oracles`. */
  readonly oracles: readonly PulseOracle[];
  /** The first oracle. */
  readonly oracle: PulseOracle;
  readonly fleet: FleetHandle;
};

/** Checks to run once the stack is drained and A1 holds (e.g. "the consumer has nothing pending"). */
export type AfterDrain = () => Promise<void>;

export type ScenarioSpec = {
  /** Short name for evidence files and A1 messages, e.g. "scenario 3". */
  readonly name: string;
  /** The describe block: what the fault is. */
  readonly title: string;
  /** The test: what must hold. */
  readonly test: string;
  readonly stack?: StackOptions;
  /** Extra environment for each oracle process to start (default: one oracle, no extras). */
  readonly oracles?: readonly Readonly<Record<string, string>>[];
  /** Simulated devices (default 24, honest, 4 heartbeats a second each). */
  readonly devices?: number;
  /** Acknowledged heartbeats to wait for before the fault (default 600). */
  readonly warmup?: number;
  /** How long ingest may take to store every acknowledged heartbeat after the fault (default 60 s). */
  readonly drainMs?: number;
  /** Test timeout (default: the suite's, test/faults/vitest.config.ts). */
  readonly timeoutMs?: number;
};

/**
 * Define a scenario (a describe with one test) in the calling test file. `fault` runs once the fleet
 * is being acknowledged; it may return checks to run after the drain and the A1 audit.
 */
export function faultScenario(spec: ScenarioSpec, fault: (ctx: ScenarioContext) => Promise<void | AfterDrain>): void {
  describe(spec.title, () => {
    let stack: PulseStack | undefined;
    beforeAll(async () => {
      stack = await PulseStack.create(spec.stack);
    });
    afterAll(async () => {
      await stack?.destroy();
      await killAll();
    });

    it(
      spec.test,
      async ({ onTestFailed }) => {
        const s = stack!;
        onTestFailed(async () => void (await s.evidence(`${spec.name} (failed)`).catch(() => undefined)));
        const broker = await s.addBroker();
        const oracles: PulseOracle[] = [];
        for (const env of spec.oracles ?? [{}]) oracles.push(await s.addOracle(env));
        const fleet = await s.startFleet(spec.devices ?? 24, broker.url);
        await s.waitAcked(spec.warmup ?? 600);

        const afterDrain = await fault({ stack: s, broker, oracles, oracle: oracles[0]!, fleet });

        const report = await s.drainAndAuditA1(spec.drainMs);
        for (const p of [broker, ...oracles]) expect(p.process.running, `${p.process.spec.name} survived the fault`).toBe(true);
        await expectA1(spec.name, report, s);
        if (afterDrain !== undefined) await afterDrain();
      },
      spec.timeoutMs,
    );
  });
}
