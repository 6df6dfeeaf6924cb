// Workload `broker`: accepted heartbeats/s through one Pulse broker process at QoS 1 with edge
// verification and the JetStream hand-off before each PUBACK, and PUBACK latency p50/p99 at a paced
// 5,000 heartbeats/s; each beside bare Aedes (no hooks, no verification, no bus) driven by the same
// load generator with the same frames in the same run. The broker runs in a child process; the load
// generator (broker/load-client.ts: pre-signed, pre-encoded frames, a window of unacked PUBLISHes
// per connection) runs here. The machine's own Ed25519 verify limit (`openssl speed ed25519`, one
// core and `-multi 2`) is measured in the same run: every accepted heartbeat costs one verify, so
// that limit, not Aedes, is the ceiling of this workload on a 2-core machine.
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchFigure, BenchOptions } from './result.ts';
import { RawConnection, benchConnect, benchDevice, benchHeartbeats, drive, percentile, type DriveResult } from '../broker/load-client.ts';
import type { HostStart } from '../broker/bench-host.ts';
import { opensslVerifyRate } from './openssl.ts';

export const description = 'broker: accepted heartbeats/s at QoS 1 (verify + JetStream hand-off) and PUBACK p50/p99 at 5,000/s, beside bare Aedes';

const HOST = fileURLToPath(new URL('../broker/bench-host.ts', import.meta.url));
const NETWORK = 77;

export type BrokerHost = { readonly port: number; rss(): Promise<number>; cpuMicros(): Promise<number>; stop(): Promise<void> };

/** Start broker/bench-host.ts in a child process (raising the fd limit as far as the hard limit allows). */
export async function startHost(start: Omit<HostStart, 'cmd'>): Promise<BrokerHost> {
  // PULSE_BENCH_HOST_FLAGS: extra node flags for the broker process (e.g. --cpu-prof) when profiling.
  const extra = process.env['PULSE_BENCH_HOST_FLAGS'] ?? '';
  const child: ChildProcess = spawn('/bin/sh', ['-c', `ulimit -n $(ulimit -Hn); exec "${process.execPath}" --expose-gc ${extra} --import tsx "${HOST}"`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`bench host exited with ${code}`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        const r = m as Record<string, unknown>;
        if (typeof r['error'] === 'string') reject(new Error(r['error']));
        else resolve(r);
      });
    });
  await next(); // hello
  child.send({ cmd: 'start', ...start });
  const { port } = (await next()) as { port: number };
  return {
    port,
    rss: async () => {
      child.send({ cmd: 'rss' });
      return ((await next()) as { rss: number }).rss;
    },
    cpuMicros: async () => {
      child.send({ cmd: 'cpu' });
      return ((await next()) as { cpuMicros: number }).cpuMicros;
    },
    stop: async () => {
      child.send({ cmd: 'stop' });
      await next().catch(() => undefined);
    },
  };
}

// cpuPerMessage: the broker process's CPU time (user + system, all threads) per acknowledged
// heartbeat in the bulk run. Unlike throughput it barely moves when other work shares the machine,
// so it is the figure to compare changes by on a busy 2-core box.
type Run = { readonly throughput: number; readonly cpuPerMessageMicros: number; readonly p50: number; readonly p99: number; readonly latencyRate: number };

function sorted(r: DriveResult): Float64Array {
  return r.latenciesMs.slice(0, r.acked).sort();
}

async function measure(mode: 'pulse' | 'bare', devices: ReturnType<typeof benchDevice>[], bulk: Buffer[][], paced: Buffer[][], rate: number, log: (l: string) => void): Promise<Run> {
  const host = await startHost({
    mode,
    bus: 'jetstream',
    deviceIds: devices.map((d) => d.id),
    networkId: NETWORK,
    natsUrl: process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
    stream: `PULSE_BENCH_${randomBytes(4).toString('hex')}`,
    prefix: `bench${randomBytes(4).toString('hex')}`,
  });
  const conns: RawConnection[] = [];
  try {
    const now = Date.now();
    for (const [i, d] of devices.entries()) conns.push(await RawConnection.open('127.0.0.1', host.port, benchConnect(d, NETWORK, now + i)));
    log(`${mode}: ${conns.length} connections; ${bulk.reduce((n, f) => n + f.length, 0)} heartbeats, window 64 per connection`);
    const cpuBefore = await host.cpuMicros();
    const t = await drive(conns, bulk, 64);
    const cpuPerMessageMicros = ((await host.cpuMicros()) - cpuBefore) / t.acked;
    log(`${mode}: ${Math.round(t.acked / t.seconds)} PUBACKs/s, ${cpuPerMessageMicros.toFixed(1)} µs broker CPU per PUBACK; paced run at ${rate}/s`);
    const p = await drive(conns, paced, 64, rate);
    const s = sorted(p);
    return { throughput: t.acked / t.seconds, cpuPerMessageMicros, p50: percentile(s, 50), p99: percentile(s, 99), latencyRate: p.acked / p.seconds };
  } finally {
    for (const c of conns) c.close();
    await host.stop();
  }
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const DEVICES = 40;
  const bulkPer = opts.quick ? 150 : 4_000;
  const RATE = 5_000;
  const pacedPer = Math.ceil((RATE * (opts.quick ? 1.5 : 10)) / DEVICES);
  opts.log(`signing ${(DEVICES * (bulkPer + pacedPer)).toLocaleString('en-US')} heartbeats`);
  const devices = Array.from({ length: DEVICES }, () => benchDevice(randomBytes(32)));
  const bulk = devices.map((d) => benchHeartbeats(d, NETWORK, bulkPer, 1));
  const paced = devices.map((d) => benchHeartbeats(d, NETWORK, pacedPer, 1 + bulkPer));
  const pulse = await measure('pulse', devices, bulk, paced, RATE, opts.log);
  const bare = await measure('bare', devices, bulk, paced, RATE, opts.log);
  const opensslSeconds = opts.quick ? 1 : 3;
  const verifyOne = await opensslVerifyRate(opensslSeconds);
  const verifyAll = await opensslVerifyRate(opensslSeconds, 2);
  opts.log(`openssl speed ed25519: ${Math.round(verifyOne)} verifies/s on one core (${(1e6 / verifyOne).toFixed(0)} µs each), ${Math.round(verifyAll)}/s with -multi 2`);
  const note = `${DEVICES} devices, window 64; ${opts.quick ? 'quick run: short, noisy' : 'full run'}; p99 measured at ${Math.round(pulse.latencyRate)}/s achieved; load average ${loadavg()[0]!.toFixed(1)} at the end`;
  return [
    { name: 'broker: accepted heartbeats/s (QoS 1, verify, JetStream hand-off)', figure: pulse.throughput, unit: 'heartbeats/s', comparison: { name: 'bare Aedes QoS 1', figure: bare.throughput, unit: 'msg/s' }, target: '>= 15000', targetMet: pulse.throughput >= 15_000, note },
    { name: 'broker: accepted heartbeats/s against the machine verify limit', figure: pulse.throughput, unit: 'heartbeats/s', comparison: { name: 'openssl speed -multi 2 ed25519 verify', figure: verifyAll, unit: 'verifies/s' }, note: `same run; one core: ${Math.round(verifyOne)} verifies/s` },
    { name: 'broker: CPU per accepted heartbeat (broker process, all threads)', figure: pulse.cpuPerMessageMicros, unit: 'µs', comparison: { name: 'bare Aedes per PUBACK', figure: bare.cpuPerMessageMicros }, note: `user + system time of the broker process during the bulk run ÷ PUBACKs; steadier than throughput on a shared machine; the verify alone is ~${(1e6 / verifyOne).toFixed(0)} µs (openssl, one core, same run)` },
    { name: 'broker: PUBACK p50 at 5,000/s', figure: pulse.p50, unit: 'ms', comparison: { name: 'bare Aedes p50', figure: bare.p50 } },
    { name: 'broker: PUBACK p99 at 5,000/s', figure: pulse.p99, unit: 'ms', comparison: { name: 'bare Aedes p99', figure: bare.p99 }, target: '< 50', targetMet: pulse.p99 < 50 },
  ];
}
