// Workload `connections`: idle authenticated device connections held by one Pulse broker process
// and its RSS per connection, beside bare Aedes holding the same number of connections in the same
// run. Each Pulse connection is a real device session (connect token verified, directory lookup,
// token recorded). The broker runs in a child process (bench/broker.ts startHost) so its RSS is its
// own; the connections are opened from this process with raw MQTT CONNECTs (keep alive 0: idle).
// The file-descriptor hard limit on these machines is 20,000 per process, so the full run holds
// 19,000 connections rather than the 20,000 of the target.
import { randomBytes } from 'node:crypto';
import type { BenchFigure, BenchOptions } from './result.ts';
import { RawConnection, benchConnect, benchDevice } from '../broker/load-client.ts';
import { startHost } from './broker.ts';

export const description = 'connections: idle device connections held and RSS per connection, beside bare Aedes';

const NETWORK = 78;

async function hold(mode: 'pulse' | 'bare', ids: readonly string[], frames: readonly Buffer[], log: (l: string) => void): Promise<{ held: number; base: number; rss: number }> {
  const host = await startHost({ mode, bus: 'memory', deviceIds: ids, networkId: NETWORK, natsUrl: '', stream: 'unused', prefix: 'unused' });
  const conns: RawConnection[] = [];
  try {
    const base = await host.rss();
    const BATCH = 250;
    for (let i = 0; i < frames.length; i += BATCH) {
      const opened = await Promise.allSettled(frames.slice(i, i + BATCH).map((f) => RawConnection.open('127.0.0.1', host.port, f)));
      for (const o of opened) if (o.status === 'fulfilled') conns.push(o.value);
    }
    await new Promise((r) => setTimeout(r, 500));
    const held = conns.filter((c) => !c.closed).length;
    const rss = await host.rss();
    log(`${mode}: ${held} connections held, RSS ${(rss / 2 ** 20).toFixed(0)} MB (idle ${(base / 2 ** 20).toFixed(0)} MB)`);
    return { held, base, rss };
  } finally {
    for (const c of conns) c.close();
    await host.stop();
  }
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const N = opts.quick ? 2_000 : 19_000;
  opts.log(`preparing ${N.toLocaleString('en-US')} device keys and connect tokens`);
  const now = Date.now();
  const devices = Array.from({ length: N }, () => benchDevice(randomBytes(32)));
  const frames = devices.map((d, i) => benchConnect(d, NETWORK, now + i));
  const ids = devices.map((d) => d.id);
  const pulse = await hold('pulse', ids, frames, opts.log);
  const bare = await hold('bare', ids, frames, opts.log);
  const perConn = (r: { held: number; base: number; rss: number }) => (r.held > 0 ? (r.rss - r.base) / r.held / 1024 : NaN);
  const mb = pulse.rss / 2 ** 20;
  const full = pulse.held >= 19_000;
  return [
    { name: 'connections: idle device connections held', figure: pulse.held, unit: 'connections', comparison: { name: 'bare Aedes', figure: bare.held }, note: `${N.toLocaleString('en-US')} attempted${opts.quick ? ' (quick run)' : ''}` },
    { name: 'connections: RSS per idle device connection', figure: perConn(pulse), unit: 'KB', comparison: { name: 'bare Aedes', figure: perConn(bare) } },
    {
      name: `connections: broker RSS with ${pulse.held.toLocaleString('en-US')} idle devices`,
      figure: mb,
      unit: 'MB',
      comparison: { name: 'bare Aedes', figure: bare.rss / 2 ** 20 },
      target: '< 600 MB at 20,000',
      ...(full ? { targetMet: mb < 600 } : {}),
      note: full ? 'fd hard limit 20,000: measured at 19,000' : 'target judged only on a full run',
    },
  ];
}
