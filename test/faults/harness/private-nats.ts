// Private nats-server processes for the fault suite (issue 10 §4, §9): the machine's shared NATS on
// 4222 is never stopped. One node, or a three-node JetStream cluster on loopback. Each node keeps its
// client port, cluster port and store directory across restarts, so a SIGKILLed node comes back as
// the same server with the same JetStream data, the way a supervisor would restart it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess, freePort, httpStatus, onExitSync, waitFor } from './processes.ts';

const NATS_BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

export type NatsNode = {
  readonly name: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly process: ManagedProcess;
  readonly url: string;
};

export class PrivateNats {
  private removeHook: (() => void) | undefined;
  private constructor(
    readonly dir: string,
    readonly nodes: readonly NatsNode[],
  ) {}

  /** Client URLs of every node, comma separated (what brokers and oracles are given). */
  get servers(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  static async start(size: 1 | 3 = 1): Promise<PrivateNats> {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-faults-nats-'));
    const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), cluster: await freePort(), monitor: await freePort() })));
    const nodes: NatsNode[] = ports.map((p, i) => {
      const name = `pulse-n${i + 1}`;
      const args = ['-js', '-a', '127.0.0.1', '-p', String(p.client), '-m', String(p.monitor), '-sd', join(dir, name), '--server_name', name];
      if (size > 1) {
        const routes = ports.filter((_, j) => j !== i).map((q) => `nats://127.0.0.1:${q.cluster}`).join(',');
        args.push('--cluster_name', 'pulse-faults', '--cluster', `nats://127.0.0.1:${p.cluster}`, '--routes', routes);
      }
      return { name, port: p.client, monitorPort: p.monitor, url: `nats://127.0.0.1:${p.client}`, process: new ManagedProcess({ name, command: NATS_BIN, args }) };
    });
    const n = new PrivateNats(dir, nodes);
    n.removeHook = onExitSync(() => rmSync(dir, { recursive: true, force: true }));
    for (const node of nodes) node.process.start();
    await Promise.all(nodes.map((node) => n.waitHealthy(node)));
    return n;
  }

  /** Wait until the node answers /healthz (JetStream enabled and, in a cluster, current with the meta leader). */
  async waitHealthy(node: NatsNode, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${node.name} /healthz`, async () => ((await httpStatus(`http://127.0.0.1:${node.monitorPort}/healthz`)) === 200 ? true : undefined), timeoutMs, 200);
  }

  async kill(node: NatsNode): Promise<void> {
    await node.process.kill();
  }

  /** Start a killed node again on the same ports and store directory. */
  async restart(node: NatsNode): Promise<void> {
    node.process.start();
    await this.waitHealthy(node);
  }

  /** JSON from a monitoring endpoint, e.g. /jsz?streams=true. */
  async monitor<T>(node: NatsNode, path: string): Promise<T> {
    const r = await fetch(`http://127.0.0.1:${node.monitorPort}${path}`, { signal: AbortSignal.timeout(3_000) });
    return (await r.json()) as T;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.process.stop(3_000)));
    rmSync(this.dir, { recursive: true, force: true });
    this.removeHook?.();
  }
}
