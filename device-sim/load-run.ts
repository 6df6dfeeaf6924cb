// Load mode for benchmarks (issue 8 §1, `pulse sim --load`): many connections, pre-signed heartbeats,
// PUBACK latency. Signing is done before the clock starts, so the figure is the broker's, not the
// simulator's Ed25519 speed. Connections are spread over several local source addresses
// (127.0.0.x): a TCP connection is identified by (source ip, source port, destination ip, destination
// port), so each extra source address brings its own ~28k ephemeral ports
// (net.ipv4.ip_local_port_range) and the port range stops being the ceiling.
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import { createClient, parseBrokerUrl, type TransportOptions } from './mqtt-transport.ts';
import { inParallel, onboardAll, type OnboardOptions } from './onboard.ts';
import { SimState } from './sim-state.ts';
import { signerFor } from '../shared/protocol/signer.ts';
import { connectPassword } from '../shared/protocol/connect-token.ts';
import { signHeartbeat } from '../shared/protocol/heartbeat.ts';
import { eventsTopic, heartbeatTopic } from '../shared/protocol/topics.ts';

export type LoadOptions = {
  readonly brokerUrl: string;
  readonly networkId: number;
  readonly connections: number;
  /** Heartbeats each connection sends (default 10). */
  readonly messagesPerConnection?: number;
  /** Unpaced mode: heartbeats in flight per connection (default 1). */
  readonly window?: number;
  /** Paced mode: total heartbeats per second, spread over the connections round-robin. */
  readonly rate?: number;
  /** Source addresses; default: one 127.0.0.x per 10,000 connections for a loopback broker. */
  readonly localAddresses?: readonly string[];
  /** CONNECTs in flight at once while connecting (default 100). */
  readonly connectConcurrency?: number;
  readonly stateDir?: string;
  readonly signer?: 'native' | 'noble';
  readonly onboard?: OnboardOptions;
  readonly transport?: TransportOptions;
  /** Progress lines (connecting, signing, sending). */
  readonly log?: (line: string) => void;
};

export type LoadReport = {
  readonly connections: number;
  readonly connected: number;
  /** Failed connects by reason (CONNACK return code or socket error code). */
  readonly connectFailures: Readonly<Record<string, number>>;
  readonly connectSeconds: number;
  readonly localAddresses: readonly string[];
  readonly signSeconds: number;
  readonly messages: number;
  readonly acknowledged: number;
  /** Rejection events received (devices/<id>/events), by reason. */
  readonly rejected: Readonly<Record<string, number>>;
  readonly sendSeconds: number;
  /** Acknowledged heartbeats per second over the send phase. */
  readonly ackedPerSecond: number;
  /** PUBACK latency from publish to PUBACK, ms. */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
};

const LOOPBACK = /^(127\.|localhost$|::1$)/;

/** Default source addresses: one loopback address per 10,000 connections, for a loopback broker. */
export function defaultLocalAddresses(brokerHost: string, connections: number): string[] {
  if (!LOOPBACK.test(brokerHost) || brokerHost === '::1') return [];
  const n = Math.min(250, Math.max(1, Math.ceil(connections / 10_000)));
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 1}`);
}

/** The value at quantile q of an ascending array (nearest rank). */
export function quantile(sorted: Float64Array | number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

type Conn = { client: MqttClient; deviceId: string; payloads: Buffer[]; next: number };

export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const log = o.log ?? (() => undefined);
  const broker = parseBrokerUrl(o.brokerUrl);
  const perConn = o.messagesPerConnection ?? 10;
  const window = Math.max(1, o.window ?? 1);
  const addresses = o.localAddresses ?? defaultLocalAddresses(broker.host, o.connections);
  const state = await SimState.open(o.stateDir, o.networkId, o.connections);
  const records = state.devices.slice(0, o.connections);
  const signers = records.map((r) => signerFor(r.secretKey, o.signer ?? 'native'));
  if (o.onboard !== undefined) {
    let failed = 0;
    await onboardAll(o.onboard, o.networkId, state, o.connections, signers, (_i, outcome) => {
      if (!outcome.ok) failed++;
    });
    if (failed > 0) log(`onboarding: ${failed} devices failed (they will be refused at CONNECT)`);
  }

  // Connect.
  log(`connecting ${o.connections} devices${addresses.length > 0 ? ` from ${addresses.length} source addresses (${addresses[0]}…)` : ''}`);
  const connectFailures: Record<string, number> = {};
  const rejected: Record<string, number> = {};
  const conns: Conn[] = [];
  const tConnect = performance.now();
  let lastToken = 0;
  await inParallel(
    records.map((r, i) => ({ r, i })),
    o.connectConcurrency ?? 100,
    async ({ r, i }) => {
      const ts = Math.max(Date.now(), lastToken + 1);
      lastToken = ts;
      const client = createClient(
        broker,
        {
          clientId: r.deviceId,
          username: r.deviceId,
          password: connectPassword(o.networkId, r.publicKey, BigInt(ts), signers[i]!),
          protocolVersion: 4,
          clean: true,
          keepalive: 300,
          reconnectPeriod: 0,
          connectTimeout: 30_000,
        },
        { ...o.transport, ...(addresses.length > 0 ? { localAddress: addresses[i % addresses.length]! } : {}) },
      );
      let settled = false;
      const ok = await new Promise<boolean>((resolve) => {
        const settle = (v: boolean) => {
          if (!settled) resolve(v);
          settled = true;
        };
        client.once('connect', () => settle(true));
        client.on('error', (e: Error & { code?: number | string }) => {
          if (settled) return;
          const key = String(e.code ?? e.message);
          connectFailures[key] = (connectFailures[key] ?? 0) + 1;
          settle(false);
        });
        client.once('close', () => {
          if (!settled) connectFailures['closed'] = (connectFailures['closed'] ?? 0) + 1;
          settle(false);
        });
        client.connect();
      });
      if (!ok) {
        client.end(true);
        return;
      }
      client.on('message', (_t, payload) => {
        try {
          const reason = (JSON.parse(payload.toString('utf8')) as { reason?: unknown }).reason;
          const key = typeof reason === 'string' ? reason : 'UNKNOWN';
          rejected[key] = (rejected[key] ?? 0) + 1;
        } catch {
          rejected['UNPARSABLE_EVENT'] = (rejected['UNPARSABLE_EVENT'] ?? 0) + 1;
        }
      });
      client.subscribe(eventsTopic(r.deviceId), { qos: 0 });
      conns.push({ client, deviceId: r.deviceId, payloads: [], next: 0 });
    },
  );
  const connectSeconds = (performance.now() - tConnect) / 1000;
  const idIndex = new Map(records.map((r, i) => [r.deviceId, i]));

  // Pre-sign every heartbeat (timestamps are "now": keep a run shorter than the broker's skew window).
  log(`signing ${conns.length * perConn} heartbeats`);
  const tSign = performance.now();
  // One state-file write reserves every seq of the run before any is used (sim-state.ts).
  const firsts = perConn > 0 ? await state.reserveBlock(conns.map((c) => idIndex.get(c.deviceId)!), BigInt(perConn)) : [];
  for (const [ci, c] of conns.entries()) {
    const i = idIndex.get(c.deviceId)!;
    const now = BigInt(Date.now());
    for (let k = 0; k < perConn; k++) {
      const seq = firsts[ci]! + BigInt(k);
      const p = signHeartbeat({ networkId: o.networkId, publicKey: records[i]!.publicKey, seq, timestamp: now, metrics: [{ id: 1, value: 1000n }] }, signers[i]!);
      c.payloads.push(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
    }
  }
  const signSeconds = (performance.now() - tSign) / 1000;

  // Send.
  const total = conns.length * perConn;
  const latencies = new Float64Array(total);
  let acked = 0;
  let finished = 0;
  log(`sending ${total} heartbeats ${o.rate !== undefined ? `at ${o.rate}/s` : `(window ${window} per connection)`}`);
  const tSend = performance.now();
  let lastAckAt = tSend;
  await new Promise<void>((resolveAll) => {
    if (total === 0) return resolveAll();
    const send = (c: Conn, onDone?: () => void) => {
      const payload = c.payloads[c.next++]!;
      const t0 = performance.now();
      c.client.publish(heartbeatTopic(c.deviceId), payload, { qos: 1 }, (err) => {
        const t1 = performance.now();
        if (!err) {
          latencies[acked++] = t1 - t0;
          lastAckAt = t1;
        }
        finished++;
        onDone?.();
        if (finished === total) resolveAll();
      });
    };
    if (o.rate === undefined) {
      // Unpaced: each connection keeps `window` heartbeats in flight until it has sent them all.
      const pump = (c: Conn) => {
        if (c.next < c.payloads.length) send(c, () => pump(c));
      };
      for (const c of conns) for (let w = 0; w < window; w++) pump(c);
    } else {
      // Paced: every 5 ms send what the schedule says is due, round-robin over connections.
      const rate = o.rate;
      let sent = 0;
      let rr = 0;
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - tSend) / 1000) * rate));
        while (sent < due) {
          let c = conns[rr++ % conns.length]!;
          while (c.next >= c.payloads.length) c = conns[rr++ % conns.length]!;
          send(c);
          sent++;
        }
        if (sent >= total) clearInterval(timer);
      }, 5);
    }
  });
  const sendSeconds = (lastAckAt - tSend) / 1000;
  // Rejection events trail their PUBACKs slightly.
  await new Promise((r) => setTimeout(r, 200));
  await Promise.all(conns.map((c) => new Promise<void>((r) => c.client.end(true, () => r()))));
  await state.close();

  const sorted = latencies.slice(0, acked).sort();
  return {
    connections: o.connections,
    connected: conns.length,
    connectFailures,
    connectSeconds,
    localAddresses: addresses,
    signSeconds,
    messages: total,
    acknowledged: acked,
    rejected,
    sendSeconds,
    ackedPerSecond: sendSeconds > 0 ? acked / sendSeconds : 0,
    latencyMs: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: acked > 0 ? sorted[acked - 1]! : Number.NaN },
  };
}

export function formatLoadReport(r: LoadReport): string {
  const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 0) : '-');
  const lines = [
    `connections: ${r.connected}/${r.connections} in ${fmt(r.connectSeconds)} s${r.localAddresses.length > 0 ? ` from ${r.localAddresses.length} source addresses` : ''}`,
    `heartbeats:  ${r.acknowledged}/${r.messages} acknowledged in ${fmt(r.sendSeconds)} s = ${fmt(r.ackedPerSecond)}/s (pre-signed in ${fmt(r.signSeconds)} s)`,
    `PUBACK latency: p50 ${fmt(r.latencyMs.p50)} ms, p99 ${fmt(r.latencyMs.p99)} ms, max ${fmt(r.latencyMs.max)} ms`,
  ];
  const failures = Object.entries(r.connectFailures);
  if (failures.length > 0) lines.push(`connect failures: ${failures.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const rej = Object.entries(r.rejected);
  if (rej.length > 0) lines.push(`rejected: ${rej.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  return lines.join('\n');
}
